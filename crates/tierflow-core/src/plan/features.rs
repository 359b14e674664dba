//! Cilium agent features a flow depends on, read from the `cilium-config` ConfigMap
//! (`kube-system`), whose keys are the agent's flags (cilium/cilium `pkg/option/config.go`
//! @ 8e7499ee: `EnableSCTPName = "enable-sctp"`, `EnableL7Proxy = "enable-l7-proxy"`,
//! `EnableICMPRules = "enable-icmp-rules"`), with the agent's defaults when a key is absent
//! (`pkg/defaults/defaults.go` @ c547745f: `EnableSCTP = false`, `EnableL7Proxy = true`,
//! `EnableICMPRules = true`).
//!
//! - SCTP off: the datapath is built without SCTP (`ENABLE_SCTP`) and drops SCTP packets;
//!   the policy itself is accepted. A flow on an SCTP port does not work: narrower than
//!   declared, so it is only reported.
//! - L7 proxy off: the agent refuses every rule with L7 rules (`pkg/policy/api/
//!   rule_validation.go`, "L7 policy is not supported since L7 proxy is not enabled"), so a
//!   tier policy with `http` rules, or with the DNS rule an FQDN flow needs, is **not enforced
//!   at all**. Where the AppNetwork's baseline denies both directions that is narrower
//!   (reported); where it leaves a direction open, the tier's pods would be open in it, so the
//!   AppNetwork is held ([`HoldReason::FeatureDisabled`](super::HoldReason::FeatureDisabled)).
//! - ICMP rules off: tierflow writes no ICMP rule (flows are TCP, UDP or SCTP), so nothing
//!   depends on it; it is read for completeness.
//! - `labels`: the identity-relevant label patterns (space-separated, appended to the default
//!   list; `Documentation/operations/performance/scalability/identity-relevant-labels.rst`
//!   @ 019c1234), read into a [`CiliumIdentityFilter`] for the
//!   [`HoldReason::LabelNotInIdentity`](super::HoldReason::LabelNotInIdentity) hold. A value
//!   the agent could not parse (it refuses to start) leaves the default filter and is kept in
//!   [`CiliumFeatures::identity_error`].

use std::collections::BTreeMap;

use crate::core::Protocol;
use crate::engine::CiliumIdentityFilter;
use crate::model::{AppModel, Peer};

/// The ConfigMap holding the Cilium agent's configuration, in `kube-system`.
pub const CILIUM_CONFIG: &str = "cilium-config";
/// Its namespace.
pub const CILIUM_CONFIG_NAMESPACE: &str = "kube-system";
/// The key that enables SCTP.
pub const ENABLE_SCTP: &str = "enable-sctp";
/// The key that enables the L7 proxy.
pub const ENABLE_L7_PROXY: &str = "enable-l7-proxy";
/// The key that enables ICMP rules.
pub const ENABLE_ICMP_RULES: &str = "enable-icmp-rules";
/// The key holding the identity-relevant label patterns.
pub const LABELS: &str = "labels";

/// What the Cilium agent is configured to support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiliumFeatures {
    /// `enable-sctp` (default false).
    pub sctp: bool,
    /// `enable-l7-proxy` (default true).
    pub l7_proxy: bool,
    /// `enable-icmp-rules` (default true).
    pub icmp_rules: bool,
    /// `labels`: which pod labels make up an identity (default: Cilium's default filter).
    pub identity: CiliumIdentityFilter,
    /// Why `labels` could not be read, when it could not (the default filter is used).
    pub identity_error: Option<String>,
}

impl Default for CiliumFeatures {
    fn default() -> Self {
        CiliumFeatures {
            sctp: false,
            l7_proxy: true,
            icmp_rules: true,
            identity: CiliumIdentityFilter::default(),
            identity_error: None,
        }
    }
}

/// A boolean flag value as Go's `strconv.ParseBool` reads it (what the agent's flag parsing
/// uses); anything else leaves the default.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl CiliumFeatures {
    /// Reads the `data` of `cilium-config`; absent or unreadable keys keep the agent's
    /// defaults.
    pub fn from_config(data: &BTreeMap<String, String>) -> Self {
        let d = CiliumFeatures::default();
        let flag =
            |key: &str, default: bool| data.get(key).and_then(|v| parse_bool(v)).unwrap_or(default);
        let (identity, identity_error) =
            match CiliumIdentityFilter::from_labels(data.get(LABELS).map_or("", |v| v.as_str())) {
                Ok(f) => (f, None),
                Err(e) => (CiliumIdentityFilter::default(), Some(e.to_string())),
            };
        CiliumFeatures {
            sctp: flag(ENABLE_SCTP, d.sctp),
            l7_proxy: flag(ENABLE_L7_PROXY, d.l7_proxy),
            icmp_rules: flag(ENABLE_ICMP_RULES, d.icmp_rules),
            identity,
            identity_error,
        }
    }
}

/// A flow that depends on a Cilium feature that is off.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MissingFeature {
    /// Index of the flow in `spec.flows`.
    pub flow: usize,
    /// The `cilium-config` key that is off.
    pub flag: &'static str,
    /// What the flow uses that needs it (`SCTP port 3868`, `HTTP rules`, `an FQDN peer`).
    pub needs: String,
}

/// The flows of `model` that depend on a feature `features` has off, in flow order.
pub fn missing(model: &AppModel, features: &CiliumFeatures) -> Vec<MissingFeature> {
    let mut out = Vec::new();
    for f in &model.flows {
        if !features.sctp {
            if let Some(p) = f.ports.iter().find(|p| p.protocol == Protocol::Sctp) {
                out.push(MissingFeature {
                    flow: f.index,
                    flag: ENABLE_SCTP,
                    needs: match p.bounds() {
                        Some((a, b)) if a == b => format!("SCTP port {a}"),
                        Some((a, b)) => format!("SCTP ports {a}-{b}"),
                        None => "a named SCTP port".to_string(),
                    },
                });
            }
        }
        if !features.l7_proxy {
            if !f.http.is_empty() {
                out.push(MissingFeature {
                    flow: f.index,
                    flag: ENABLE_L7_PROXY,
                    needs: "HTTP rules".to_string(),
                });
            }
            if matches!(f.to, Peer::Fqdn(_)) {
                out.push(MissingFeature {
                    flow: f.index,
                    flag: ENABLE_L7_PROXY,
                    needs: "an FQDN peer (its DNS rule)".to_string(),
                });
            }
        }
    }
    out
}

/// The message of the `FeaturesMissing` condition.
pub fn message(missing: &[MissingFeature]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|m| {
            format!(
                "spec.flows[{}] uses {}, which needs {}: true in the {CILIUM_CONFIG} ConfigMap",
                m.flow, m.needs, m.flag
            )
        })
        .collect();
    let mut flows: Vec<usize> = missing.iter().map(|m| m.flow).collect();
    flows.dedup();
    format!(
        "{} flows depend on Cilium features that are off: {}",
        flows.len(),
        parts.join("; ")
    )
}
