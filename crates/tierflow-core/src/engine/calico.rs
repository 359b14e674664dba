//! Reading `projectcalico.org/v3` NetworkPolicy and GlobalNetworkPolicy.
//!
//! Choices (each documented where the engine evaluates it):
//! - `types` defaults as Calico does: `[Ingress]` when there are no egress rules, `[Egress]`
//!   when there are egress rules but no ingress rules, both when there are both.
//! - Service accounts: a pod's `spec.serviceAccountName` (`default` when absent) is its
//!   endpoint's `projectcalico.org/serviceaccount` label (when shorter than 63 characters, as
//!   `workload_endpoint_default.go` lines 164-167 @ 87c15906 sets it). The policy's
//!   `serviceAccountSelector` and a rule's `serviceAccounts.selector` are evaluated on the
//!   service account's labels, of which the engine knows `projectcalico.org/name` (the name;
//!   it reads no ServiceAccount objects); `serviceAccounts.names` on the endpoint label. A
//!   policy selects a pod when its `selector` and its `serviceAccountSelector` both hold
//!   (`networkpolicyprocessor.go` line 73); a rule's `serviceAccounts` is AND'ed with its
//!   `selector` and, like it, scoped to the policy's namespace (`rules.go` lines 50-130).
//!   `doNotTrack` / `preDNAT` policies apply to host endpoints only and select no pod.
//! - `source.ports` / `source.notPorts` (the client's ephemeral port is unknown) and
//!   `services` cannot be evaluated offline: a rule using them never matches. `http` and `icmp` match conditions are ignored (the rule counts as the L4 it opens).
//! - `tier` (Calico v3.29+): the policy's tier, `default` when absent; `Tier` objects give
//!   each tier its `order` and `defaultAction` (see the engine's module documentation for
//!   how tiers are evaluated). A policy naming a tier the input has no `Tier` object for is
//!   evaluated in that tier, after every tier that has one (as felix sorts a tier it has no
//!   object for: `felix/calc/policy_sorter.go` `TierLess` @ 87c15906), ending in Deny.
//! - Named ports without `protocol`: felix builds the named port's IP set for TCP on Calico
//!   v3.28-v3.31 (`felix/calc/rule_scanner.go` `namedPortProto := ProtocolTCP`, v3.31.0
//!   line 380) and for any protocol from v3.32 (`ProtocolAny`, v3.32.0 eb1cf578 line 383,
//!   commit e43e5771 "ClusterNetworkPolicy named ports"). Over the supported range
//!   (v3.28+) the engine takes the narrower answer for what opens and the wider one for what
//!   denies: in an Allow, Pass or Log rule such a named port matches TCP only, in a Deny rule
//!   any protocol.

use serde_json::{Map, Value};

use crate::core::Protocol;

use super::calico_selector::CalicoSelector;
use super::error::EngineError;
use super::json::{at, get, join, Ctx};
use super::model::{
    Action, Alt, CalicoEntity, Flavor, PeerId, Policy, PolicyRef, PortSpec, PortVal, Rule, SaMatch,
    Section, Subject, TierDef,
};
use super::read::{parse_cidr, port_number, Sink};

/// The tier every policy without `spec.tier` is in, and the Kubernetes NetworkPolicies
/// (`libcalico-go/lib/names/policy.go` `DefaultTierName` @ 87c15906).
pub(crate) const DEFAULT_TIER: &str = "default";

/// The `default` tier's order when the input has no `Tier` object for it
/// (`api/pkg/apis/projectcalico/v3/tier.go` `DefaultTierOrder` @ 87c15906, since v3.29.0).
pub(crate) const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;

/// Reads a `Tier` spec: `order` (a number, optional) and `defaultAction` (`Deny`, the default,
/// or `Pass`: `tier.go` @ 87c15906, `+kubebuilder:validation:Enum=Pass;Deny`).
pub(crate) fn tier(
    ctx: &Ctx,
    spec: Option<&Map<String, Value>>,
    path: &str,
) -> Result<TierDef, EngineError> {
    let Some(spec) = spec else {
        return Ok(TierDef {
            order: None,
            pass: false,
        });
    };
    let order = match get(spec, "order") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .ok_or_else(|| ctx.err(&join(path, "order"), "expected a number"))?,
        ),
    };
    let pass = match ctx.opt_str(spec, "defaultAction", path)? {
        None | Some("Deny") => false,
        Some("Pass") => true,
        Some(other) => {
            return Err(ctx.err(
                &join(path, "defaultAction"),
                format!("unknown default action {other:?} (expected Deny or Pass)"),
            ))
        }
    };
    Ok(TierDef { order, pass })
}

/// Parses a Calico selector string at `path`.
pub(crate) fn selector(ctx: &Ctx, s: &str, path: &str) -> Result<CalicoSelector, EngineError> {
    CalicoSelector::parse(s).map_err(|e| ctx.err(path, format!("selector {s:?}: {e}")))
}

/// Where `global()` may appear in a selector field (projectcalico/calico @ 87c15906
/// `api/pkg/apis/projectcalico/v3/policy_common.go` line 144, `networkpolicy.go` lines 50-51,
/// `libcalico-go/lib/validator/v3/validator.go` lines 1104-1126): only as the whole of an
/// entity rule's `namespaceSelector`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GlobalOk {
    No,
    Alone,
}

fn opt_selector(
    ctx: &Ctx,
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    global: GlobalOk,
) -> Result<Option<CalicoSelector>, EngineError> {
    let Some(s) = ctx.opt_str(m, key, path)? else {
        return Ok(None);
    };
    let p = join(path, key);
    let sel = selector(ctx, s, &p)?;
    if sel.mentions_global() && !(global == GlobalOk::Alone && sel == CalicoSelector::Global) {
        let why = match global {
            GlobalOk::Alone => "global() cannot be combined with other selectors",
            GlobalOk::No => "global() can only be used in an entity rule's namespaceSelector",
        };
        return Err(ctx.err(&p, format!("selector {s:?}: {why}")));
    }
    Ok(Some(sel))
}

/// IANA number of a Calico protocol (name or number).
fn protocol(ctx: &Ctx, v: &Value, path: &str) -> Result<u8, EngineError> {
    match v {
        Value::String(s) => match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(6),
            "UDP" => Ok(17),
            "ICMP" => Ok(1),
            "ICMPV6" => Ok(58),
            "SCTP" => Ok(132),
            "UDPLITE" => Ok(136),
            _ => s.parse::<u8>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ctx.err(
                    path,
                    format!(
                        "unknown protocol {s:?} (expected TCP, UDP, ICMP, ICMPv6, SCTP, \
                         UDPLite or a number 1-255)"
                    ),
                )
            }),
        },
        v => {
            let n = ctx.uint(v, path, 255)?;
            u8::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ctx.err(path, "protocol numbers are 1-255"))
        }
    }
}

fn transport(num: u8) -> Option<Protocol> {
    match num {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}

fn port_entry(
    ctx: &Ctx,
    v: &Value,
    path: &str,
    proto: Option<Protocol>,
) -> Result<PortSpec, EngineError> {
    let num = |s: &str| -> Result<u16, EngineError> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ctx.err(path, format!("{s:?} is not a port (1-65535)")))
    };
    let val = match v {
        Value::String(s) => {
            if let Some((a, b)) = s.split_once(':') {
                let (lo, hi) = (num(a)?, num(b)?);
                if hi < lo {
                    return Err(ctx.err(path, format!("port range {s:?} is reversed")));
                }
                PortVal::Range(lo, hi)
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                let n = num(s)?;
                PortVal::Range(n, n)
            } else if s.is_empty() {
                return Err(ctx.err(path, "empty port"));
            } else {
                PortVal::Named(s.clone())
            }
        }
        v => {
            let n = port_number(ctx, v, path)?;
            PortVal::Range(n, n)
        }
    };
    Ok(PortSpec { proto, val })
}

struct EntityOut {
    peer: Option<PeerId>,
    never: bool,
    ports: Option<Vec<PortSpec>>,
    not_ports: Vec<PortSpec>,
}

fn entity(
    ctx: &Ctx,
    m: Option<&Map<String, Value>>,
    path: &str,
    namespace: Option<&str>,
    rule_protocol: Option<u8>,
    action: Action,
    sink: &mut Sink<'_>,
) -> Result<EntityOut, EngineError> {
    let mut out = EntityOut {
        peer: None,
        never: false,
        ports: None,
        not_ports: Vec::new(),
    };
    let Some(m) = m else { return Ok(out) };
    let sel = opt_selector(ctx, m, "selector", path, GlobalOk::No)?;
    let not_sel = opt_selector(ctx, m, "notSelector", path, GlobalOk::No)?;
    let ns_sel = opt_selector(ctx, m, "namespaceSelector", path, GlobalOk::Alone)?;
    let cidrs = |key: &str| -> Result<Vec<crate::core::Cidr>, EngineError> {
        let p = join(path, key);
        ctx.opt_strings(m, key, path)?
            .iter()
            .enumerate()
            .map(|(i, s)| parse_cidr(ctx, s, &at(&p, i)))
            .collect()
    };
    let nets = cidrs("nets")?;
    let not_nets = cidrs("notNets")?;
    if get(m, "services").is_some() {
        out.never = true;
    }
    let service_accounts = match ctx.opt_obj(m, "serviceAccounts", path)? {
        None => None,
        Some(sa) => {
            let sa_path = join(path, "serviceAccounts");
            let names = ctx.opt_strings(sa, "names", &sa_path)?;
            let selector = opt_selector(ctx, sa, "selector", &sa_path, GlobalOk::No)?
                .filter(|_| ctx.opt_str(sa, "selector", &sa_path).ok().flatten() != Some(""));
            (!names.is_empty() || selector.is_some()).then(|| Box::new(SaMatch { names, selector }))
        }
    };
    let port_list = |key: &str| -> Result<Option<Vec<PortSpec>>, EngineError> {
        let Some(list) = ctx.opt_list(m, key, path)? else {
            return Ok(None);
        };
        if list.is_empty() {
            return Ok(None);
        }
        let p = join(path, key);
        let named_only = list.iter().all(|v| {
            v.as_str().is_some_and(|s| {
                !s.is_empty() && !s.contains(':') && !s.bytes().all(|b| b.is_ascii_digit())
            })
        });
        let proto = match rule_protocol {
            Some(n @ (6 | 17 | 132 | 136)) => transport(n),
            // Named ports need no protocol (validator.go `validateRule` @ 87c15906 asks for
            // one only for numeric ports); which protocols they match: module documentation.
            None if named_only => match action {
                Action::Deny => None,
                _ => Some(Protocol::Tcp),
            },
            _ => {
                return Err(ctx.err(
                    &p,
                    "ports need the rule's protocol to be TCP, UDP, SCTP or UDPLite",
                ))
            }
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| port_entry(ctx, v, &at(&p, i), proto))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    out.ports = port_list("ports")?;
    out.not_ports = port_list("notPorts")?.unwrap_or_default();
    let any = sel.is_some()
        || service_accounts.is_some()
        || not_sel.is_some()
        || ns_sel.is_some()
        || !nets.is_empty()
        || !not_nets.is_empty();
    if any {
        let scope = if ns_sel.is_none() {
            namespace.map(str::to_string)
        } else {
            None
        };
        out.peer = Some(sink.peer(vec![Alt::Calico(CalicoEntity {
            scope,
            selector: sel,
            not_selector: not_sel,
            namespace_selector: ns_sel,
            nets,
            not_nets,
            service_accounts,
        })]));
    }
    Ok(out)
}

fn rule(
    ctx: &Ctx,
    v: &Value,
    path: &str,
    index: usize,
    namespace: Option<&str>,
    sink: &mut Sink<'_>,
) -> Result<Rule, EngineError> {
    let m = ctx.obj(v, path)?;
    let action = match ctx.opt_str(m, "action", path)? {
        None => return Err(ctx.err(&join(path, "action"), "missing")),
        Some(a) => match a.to_ascii_lowercase().as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            "pass" => Action::Pass,
            "log" => Action::Log,
            _ => {
                return Err(ctx.err(
                    &join(path, "action"),
                    format!("unknown action {a:?} (expected Allow, Deny, Pass or Log)"),
                ))
            }
        },
    };
    let proto = get(m, "protocol")
        .map(|v| protocol(ctx, v, &join(path, "protocol")))
        .transpose()?;
    let not_proto = get(m, "notProtocol")
        .map(|v| protocol(ctx, v, &join(path, "notProtocol")))
        .transpose()?;
    let ip_version = match get(m, "ipVersion") {
        None => None,
        Some(v) => match ctx.uint(v, &join(path, "ipVersion"), 6)? {
            4 => Some(4),
            6 => Some(6),
            n => {
                return Err(ctx.err(
                    &join(path, "ipVersion"),
                    format!("ipVersion {n} (expected 4 or 6)"),
                ))
            }
        },
    };
    let src = entity(
        ctx,
        ctx.opt_obj(m, "source", path)?,
        &join(path, "source"),
        namespace,
        proto,
        action,
        sink,
    )?;
    let dst = entity(
        ctx,
        ctx.opt_obj(m, "destination", path)?,
        &join(path, "destination"),
        namespace,
        proto,
        action,
        sink,
    )?;
    // The client's (ephemeral) source port is unknown offline.
    let source_ports = src.ports.is_some() || !src.not_ports.is_empty();
    Ok(Rule {
        path: path.to_string(),
        index,
        action,
        src: src.peer,
        dst: dst.peer,
        protocol: proto,
        not_protocol: not_proto,
        ip_version,
        ports: dst.ports,
        not_ports: dst.not_ports,
        never: src.never || dst.never || source_ports,
    })
}

/// Compiles a Calico NetworkPolicy (`namespace` set) or GlobalNetworkPolicy spec.
#[allow(clippy::too_many_arguments)]
pub(crate) fn calico_policy(
    ctx: &Ctx,
    spec: &Map<String, Value>,
    path: &str,
    namespace: Option<&str>,
    name: &str,
    kind: &'static str,
    sink: &mut Sink<'_>,
) -> Result<Policy, EngineError> {
    let order = match get(spec, "order") {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .ok_or_else(|| ctx.err(&join(path, "order"), "expected a number"))?,
        ),
    };
    let tier = ctx
        .opt_str(spec, "tier", path)?
        .filter(|t| !t.is_empty() && *t != DEFAULT_TIER)
        .map(str::to_string);
    let sel =
        opt_selector(ctx, spec, "selector", path, GlobalOk::No)?.unwrap_or(CalicoSelector::All);
    let ns_sel = if namespace.is_none() {
        opt_selector(ctx, spec, "namespaceSelector", path, GlobalOk::No)?
    } else {
        None
    };
    let sa = opt_selector(ctx, spec, "serviceAccountSelector", path, GlobalOk::No)?.filter(|_| {
        ctx.opt_str(spec, "serviceAccountSelector", path)
            .ok()
            .flatten()
            != Some("")
    });
    let host_only = ctx.opt_bool(spec, "doNotTrack", path)?.unwrap_or(false)
        || ctx.opt_bool(spec, "preDNAT", path)?.unwrap_or(false);
    let subject = if host_only {
        Subject::Nothing
    } else {
        Subject::Calico {
            namespace: namespace.map(str::to_string),
            selector: sel,
            namespaces: ns_sel,
            service_accounts: sa,
        }
    };
    let ingress = ctx.opt_list(spec, "ingress", path)?.unwrap_or_default();
    let egress = ctx.opt_list(spec, "egress", path)?.unwrap_or_default();
    let types = ctx.opt_strings(spec, "types", path)?;
    let (mut has_in, mut has_eg) = (false, false);
    for (i, t) in types.iter().enumerate() {
        match t.as_str() {
            "Ingress" => has_in = true,
            "Egress" => has_eg = true,
            other => {
                return Err(ctx.err(
                    &at(&join(path, "types"), i),
                    format!("unknown type {other:?} (expected Ingress or Egress)"),
                ))
            }
        }
    }
    if types.is_empty() {
        has_eg = !egress.is_empty();
        has_in = egress.is_empty() || !ingress.is_empty();
    }
    let mut section = |rules: &[Value], key: &str| -> Result<Section, EngineError> {
        let lpath = join(path, key);
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| rule(ctx, r, &at(&lpath, i), i, namespace, sink))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Section {
            rules,
            deny: Vec::new(),
            isolates: true,
        })
    };
    let ingress = if has_in {
        Some(section(ingress, "ingress")?)
    } else {
        None
    };
    let egress = if has_eg {
        Some(section(egress, "egress")?)
    } else {
        None
    };
    Ok(Policy {
        // Set by `parse_object`, which reads the metadata.
        origin: PolicyRef::default(),
        kind,
        flavor: Flavor::Calico,
        display: match namespace {
            Some(ns) => format!("{ns}/{name}").into(),
            None => name.into(),
        },
        namespace: namespace.map(str::to_string),
        order,
        tier,
        subject,
        selector_path: join(path, "selector"),
        ingress,
        egress,
    })
}
