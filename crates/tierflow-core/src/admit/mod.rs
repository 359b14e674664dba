//! Admission as the CNI does it: the semantic checks Calico's API server and the Cilium agent
//! run on a policy after the CRD schema, for any object (rendered by tierflow, or the user's
//! own read with `-f` / `--from-cluster`).
//!
//! - Calico ([`calico`]): `libcalico-go/lib/validator/v3/validator.go`, the name rules of each
//!   release, and the limits of the `projectcalico.org/v3` types. A violating object is refused
//!   by the API server.
//! - Cilium ([`cilium`]): `Rule.Sanitize()` (`pkg/policy/api/rule_validation.go`, `selector.go`,
//!   `http.go`). A violating object is accepted by the API server, and then **not enforced at
//!   all** by the agent ("Unable to add CiliumNetworkPolicy").
//!
//! The supported releases are Calico v3.28 onwards and Cilium 1.15 onwards: a check whose rule
//! differs between releases says which releases refuse ([`Violation::releases`]), and
//! renderers produce what every supported release accepts.

pub mod calico;
pub mod cilium;
mod common;
pub mod re2;

use serde_json::Value;

pub use common::Violation;

/// The CNI whose rules apply to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cni {
    /// `projectcalico.org/v3` policies.
    Calico,
    /// `cilium.io/v2` policies.
    Cilium,
}

impl Cni {
    /// What happens to an object that breaks its rules, as a sentence head.
    pub fn consequence(self) -> &'static str {
        match self {
            Cni::Calico => "Calico refuses this policy",
            Cni::Cilium => "Cilium will not enforce this policy",
        }
    }
}

/// The checks of the CNI that owns `obj`'s kind (`None` for kinds no CNI checks here).
pub fn check(obj: &Value) -> Option<(Cni, Vec<Violation>)> {
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let cni = cni_of(api, kind)?;
    let violations = match cni {
        Cni::Calico => calico::check(obj),
        Cni::Cilium => cilium::check(obj),
    };
    Some((cni, violations))
}

/// The CNI whose admission rules objects of `api_version` + `kind` must follow (`None`: no
/// rules here, so nothing needs parsing).
pub fn cni_of(api_version: &str, kind: &str) -> Option<Cni> {
    match (api_version, kind) {
        (
            "projectcalico.org/v3",
            "NetworkPolicy"
            | "GlobalNetworkPolicy"
            | "StagedNetworkPolicy"
            | "StagedGlobalNetworkPolicy",
        ) => Some(Cni::Calico),
        ("cilium.io/v2", "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy") => {
            Some(Cni::Cilium)
        }
        _ => None,
    }
}

/// Why the CNI refuses or ignores `obj` on every supported release, as one sentence
/// (`Cilium will not enforce this policy: spec.…: …`); `None` when it does not.
pub fn refusal(obj: &Value) -> Option<String> {
    let (cni, violations) = check(obj)?;
    let all: Vec<&Violation> = violations.iter().filter(|v| v.releases.is_none()).collect();
    (!all.is_empty()).then(|| sentence(cni, all))
}

/// Every violation of `obj`, release-specific ones included, as one sentence.
pub fn report(obj: &Value) -> Option<String> {
    let (cni, violations) = check(obj)?;
    (!violations.is_empty()).then(|| sentence(cni, violations.iter().collect()))
}

fn sentence(cni: Cni, violations: Vec<&Violation>) -> String {
    let parts: Vec<String> = violations.iter().map(ToString::to_string).collect();
    format!("{}: {}", cni.consequence(), parts.join("; "))
}

/// `kind ns/name` or `kind name` of an object, for messages.
pub fn display(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}
