//! Reading `cilium.io/v2` CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy.
//!
//! What Cilium's documentation and code say, and what the engine does with it:
//! - Default deny ("Policy Enforcement Modes", docs.cilium.io/en/stable/security/policy/intro/):
//!   "If any rule selects an endpoint and the rule has an ingress section, the endpoint goes into
//!   default deny-mode for ingress" (likewise egress). The `Rule` type documents `ingress` as
//!   "If omitted or empty, this rule does not apply at ingress", and `enableDefaultDeny` as
//!   "If not specified, the default is true for each traffic direction that has rules"
//!   (`ingress` or `ingressDeny`). So: `ingress: []` (or absent) neither isolates nor allows;
//!   `ingress: [{}]` isolates and allows nothing (the documented "Ingress/Egress Default Deny"
//!   example, an empty rule having no peer); `enableDefaultDeny: {ingress: false}` makes the
//!   policy's rules count without isolating the endpoint.
//! - Deny policies ("Deny Policies"): deny rules take precedence over allow rules of every
//!   kind, Kubernetes NetworkPolicies included.
//! - A rule with ports but no L3 peer (`toPorts` only) applies to every peer; an empty rule
//!   matches nothing; an explicitly empty peer list (`fromEndpoints: []`) selects nothing
//!   (Cilium's `mergeEndpointSelectors`: "empty non-nil slices ... should not result in any
//!   identity being selected").
//! - Endpoint selectors: `k8s:` and `any:` key prefixes are removed; a namespaced policy's
//!   `endpointSelector` only selects pods of its namespace, and its `fromEndpoints` /
//!   `toEndpoints` are scoped to its namespace unless they use `io.kubernetes.pod.namespace`
//!   or an `io.cilium.k8s.namespace.labels.*` key. Pods carry those two label families, so
//!   selecting on a namespace name or namespace labels works. Clusterwide selectors cover all
//!   namespaces.
//! - CIDR rules (`toCIDR`, `toCIDRSet`) do not match pods ("CIDR rules do not apply to traffic
//!   where both sides of the connection are ... managed by Cilium"), and neither does a
//!   Kubernetes `ipBlock` in a Cilium cluster, which Cilium translates to the same CIDR rules.
//! - Entities: `all` (pods and outside addresses), `world` / `world-ipv4` / `world-ipv6`
//!   (addresses that belong to no pod), `cluster` (every pod). `host`, `remote-node`,
//!   `kube-apiserver`, `health`, `init`, `ingress`, `unmanaged` and `none` match nothing: the
//!   engine models no nodes or control plane.
//! - `toFQDNs`, `toServices`, `fromNodes` / `toNodes`, `fromGroups` / `toGroups` and CIDR group
//!   references cannot be evaluated offline and match no address. `fromRequires` /
//!   `toRequires` are ignored. L7 `rules` (http, dns, kafka) count as the L4 ports they open.
//!   A policy with a `nodeSelector` (host policy) selects no pod.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::core::{Protocol, Requirement, Selector, SelectorOp};

use super::error::EngineError;
use super::json::{at, get, join, Ctx};
use super::model::{
    Action, Alt, Entity, Flavor, Policy, PolicyRef, PortSpec, PortVal, Rule, Section, Subject,
};
use super::read::{parse_cidr, port_number, raw_selector, Sink};

use crate::vocab::{
    CILIUM_NAMESPACE_LABELS_PREFIX as NAMESPACE_LABELS_PREFIX,
    CILIUM_POD_NAMESPACE_LABEL as POD_NAMESPACE_LABEL,
};

fn strip(key: &str) -> String {
    key.strip_prefix("k8s:")
        .or_else(|| key.strip_prefix("any:"))
        .unwrap_or(key)
        .to_string()
}

/// An endpoint selector with `k8s:` / `any:` prefixes removed (keys are not validated: Cilium
/// keys such as `reserved:host` simply match no pod).
pub(crate) fn endpoint_selector(ctx: &Ctx, v: &Value, path: &str) -> Result<Selector, EngineError> {
    let (match_labels, exprs) = raw_selector(ctx, v, path, |k| Some(strip(k)))?;
    let mut match_expressions = Vec::new();
    for (i, (key, op, values)) in exprs.into_iter().enumerate() {
        let epath = at(&join(path, "matchExpressions"), i);
        let op = SelectorOp::parse(&op).ok_or_else(|| {
            ctx.err(
                &join(&epath, "operator"),
                format!("unknown operator {op:?} (expected In, NotIn, Exists or DoesNotExist)"),
            )
        })?;
        let values: BTreeSet<String> = values.into_iter().collect();
        match op {
            SelectorOp::In | SelectorOp::NotIn if values.is_empty() => {
                return Err(ctx.err(&join(&epath, "values"), "needs at least one value"))
            }
            _ => {}
        }
        match_expressions.push(Requirement { key, op, values });
    }
    Ok(Selector {
        match_labels,
        match_expressions,
    })
}

fn keys(sel: &Selector) -> impl Iterator<Item = &str> {
    sel.match_labels
        .keys()
        .map(String::as_str)
        .chain(sel.match_expressions.iter().map(|r| r.key.as_str()))
}

/// Whether a peer selector escapes the policy's namespace.
fn names_namespace(sel: &Selector) -> bool {
    keys(sel).any(|k| {
        k == POD_NAMESPACE_LABEL || k.starts_with(NAMESPACE_LABELS_PREFIX) || k.contains(':')
    })
}

fn entity(ctx: &Ctx, s: &str, path: &str) -> Result<Entity, EngineError> {
    Ok(match s {
        "all" => Entity::All,
        "world" => Entity::World,
        "world-ipv4" => Entity::WorldV4,
        "world-ipv6" => Entity::WorldV6,
        "cluster" => Entity::Cluster,
        "host" | "remote-node" | "kube-apiserver" | "health" | "init" | "ingress" | "unmanaged"
        | "none" => Entity::Nothing,
        other => {
            return Err(ctx.err(
                path,
                format!(
                    "unknown entity {other:?} (expected all, world, world-ipv4, world-ipv6, \
                     cluster, host, remote-node, kube-apiserver, health, init, ingress, \
                     unmanaged or none)"
                ),
            ))
        }
    })
}

/// Port entries of `toPorts[].ports[]`; `None` for protocols that are not TCP/UDP/SCTP/ANY.
fn port(ctx: &Ctx, v: &Value, path: &str) -> Result<Option<PortSpec>, EngineError> {
    let m = ctx.obj(v, path)?;
    let proto = match ctx.opt_str(m, "protocol", path)? {
        None => None,
        Some(s) => match s.to_ascii_uppercase().as_str() {
            "ANY" => None,
            "ICMP" | "ICMPV6" | "VRRP" | "IGMP" => return Ok(None),
            other => Some(Protocol::parse(other).ok_or_else(|| {
                ctx.err(
                    &join(path, "protocol"),
                    format!("unknown protocol {s:?} (expected TCP, UDP, SCTP or ANY)"),
                )
            })?),
        },
    };
    let end = get(m, "endPort")
        .map(|v| port_number(ctx, v, &join(path, "endPort")))
        .transpose()?;
    let ppath = join(path, "port");
    let text = match get(m, "port") {
        None => "0".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => ctx.uint(v, &ppath, 65535)?.to_string(),
    };
    let val = if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        let n: u16 = text
            .parse()
            .map_err(|_| ctx.err(&ppath, format!("{text:?} is not a port")))?;
        if n == 0 {
            PortVal::Any
        } else {
            let hi = end.unwrap_or(n);
            if hi < n {
                return Err(ctx.err(
                    &join(path, "endPort"),
                    format!("endPort {hi} is below port {n}"),
                ));
            }
            PortVal::Range(n, hi)
        }
    } else if text.is_empty() {
        PortVal::Any
    } else {
        PortVal::Named(text)
    };
    Ok(Some(PortSpec { proto, val }))
}

#[allow(clippy::too_many_arguments)]
fn rule(
    ctx: &Ctx,
    v: &Value,
    path: &str,
    index: usize,
    ingress: bool,
    deny: bool,
    namespace: Option<&str>,
    sink: &mut Sink<'_>,
) -> Result<Rule, EngineError> {
    let m = ctx.obj(v, path)?;
    let dir = if ingress { "from" } else { "to" };
    let mut alts = Vec::new();
    let mut any_l3 = false;
    let mut empty_list = false;
    let mut field = |suffix: &str| -> Result<Option<(String, &[Value])>, EngineError> {
        let key = format!("{dir}{suffix}");
        match ctx.opt_list(m, &key, path)? {
            None => Ok(None),
            Some([]) => {
                empty_list = true;
                Ok(None)
            }
            Some(list) => {
                any_l3 = true;
                Ok(Some((join(path, &key), list)))
            }
        }
    };
    if let Some((p, list)) = field("Endpoints")? {
        for (i, s) in list.iter().enumerate() {
            let selector = endpoint_selector(ctx, s, &at(&p, i))?;
            let scope = match namespace {
                Some(ns) if !names_namespace(&selector) => Some(ns.to_string()),
                _ => None,
            };
            alts.push(Alt::CiliumEndpoints {
                namespace: scope,
                selector,
            });
        }
    }
    if let Some((p, list)) = field("CIDR")? {
        for (i, s) in list.iter().enumerate() {
            let ip = at(&p, i);
            let cidr = parse_cidr(ctx, ctx.str(s, &ip)?, &ip)?;
            alts.push(Alt::CiliumCidr {
                cidr,
                except: Vec::new(),
            });
        }
    }
    if let Some((p, list)) = field("CIDRSet")? {
        for (i, s) in list.iter().enumerate() {
            let sp = at(&p, i);
            let sm = ctx.obj(s, &sp)?;
            let Some(c) = ctx.opt_str(sm, "cidr", &sp)? else {
                // cidrGroupRef / cidrGroupSelector: not evaluable offline.
                continue;
            };
            let cidr = parse_cidr(ctx, c, &join(&sp, "cidr"))?;
            let xp = join(&sp, "except");
            let except = ctx
                .opt_strings(sm, "except", &sp)?
                .iter()
                .enumerate()
                .map(|(j, x)| parse_cidr(ctx, x, &at(&xp, j)))
                .collect::<Result<Vec<_>, _>>()?;
            alts.push(Alt::CiliumCidr { cidr, except });
        }
    }
    if let Some((p, list)) = field("Entities")? {
        for (i, s) in list.iter().enumerate() {
            let ep = at(&p, i);
            alts.push(Alt::CiliumEntity(entity(ctx, ctx.str(s, &ep)?, &ep)?));
        }
    }
    for suffix in ["Nodes", "Groups", "FQDNs", "Services"] {
        if !ingress || matches!(suffix, "Nodes" | "Groups") {
            let _ = field(suffix)?;
        }
    }
    let tp = join(path, "toPorts");
    let to_ports = ctx.opt_list(m, "toPorts", path)?.unwrap_or_default();
    let icmps = ctx.opt_list(m, "icmps", path)?.unwrap_or_default();
    let mut ports = Vec::new();
    for (i, pr) in to_ports.iter().enumerate() {
        let prp = at(&tp, i);
        let prm = ctx.obj(pr, &prp)?;
        let list = ctx.opt_list(prm, "ports", &prp)?.unwrap_or_default();
        if list.is_empty() {
            ports.push(PortSpec {
                proto: None,
                val: PortVal::Any,
            });
        }
        let pp = join(&prp, "ports");
        for (j, p) in list.iter().enumerate() {
            if let Some(spec) = port(ctx, p, &at(&pp, j))? {
                ports.push(spec);
            }
        }
    }
    let has_l4 = !to_ports.is_empty() || !icmps.is_empty();
    // ICMP-only rules never match TCP/UDP/SCTP connections.
    let icmp_only = to_ports.is_empty() && !icmps.is_empty();
    let peer = if any_l3 { Some(sink.peer(alts)) } else { None };
    let never = empty_list || icmp_only || (!any_l3 && !has_l4);
    let (src, dst) = if ingress { (peer, None) } else { (None, peer) };
    Ok(Rule {
        path: path.to_string(),
        index,
        action: if deny { Action::Deny } else { Action::Allow },
        src,
        dst,
        protocol: None,
        not_protocol: None,
        ip_version: None,
        ports: if to_ports.is_empty() {
            None
        } else {
            Some(ports)
        },
        not_ports: Vec::new(),
        never,
    })
}

#[allow(clippy::too_many_arguments)]
fn one_rule(
    ctx: &Ctx,
    m: &Map<String, Value>,
    path: &str,
    namespace: Option<&str>,
    display: &str,
    kind: &'static str,
    sink: &mut Sink<'_>,
) -> Result<Policy, EngineError> {
    let subject = if let Some(es) = get(m, "endpointSelector") {
        Subject::Cilium {
            namespace: namespace.map(str::to_string),
            selector: endpoint_selector(ctx, es, &join(path, "endpointSelector"))?,
        }
    } else if get(m, "nodeSelector").is_some() {
        Subject::Nothing
    } else {
        return Err(ctx.err(
            &join(path, "endpointSelector"),
            "missing (a rule needs an endpointSelector or a nodeSelector)",
        ));
    };
    let dd = ctx.opt_obj(m, "enableDefaultDeny", path)?;
    let dd_path = join(path, "enableDefaultDeny");
    let flag = |key: &str| -> Result<Option<bool>, EngineError> {
        match dd {
            Some(d) => ctx.opt_bool(d, key, &dd_path),
            None => Ok(None),
        }
    };
    let (dd_in, dd_eg) = (flag("ingress")?, flag("egress")?);
    let mut section = |allow_key: &str,
                       deny_key: &str,
                       ingress: bool,
                       default_deny: Option<bool>|
     -> Result<Option<Section>, EngineError> {
        let allow = ctx.opt_list(m, allow_key, path)?.unwrap_or_default();
        let deny = ctx.opt_list(m, deny_key, path)?.unwrap_or_default();
        if allow.is_empty() && deny.is_empty() {
            return Ok(None);
        }
        let ap = join(path, allow_key);
        let dp = join(path, deny_key);
        let rules = allow
            .iter()
            .enumerate()
            .map(|(i, r)| rule(ctx, r, &at(&ap, i), i, ingress, false, namespace, sink))
            .collect::<Result<Vec<_>, _>>()?;
        let deny = deny
            .iter()
            .enumerate()
            .map(|(i, r)| rule(ctx, r, &at(&dp, i), i, ingress, true, namespace, sink))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Section {
            rules,
            deny,
            isolates: default_deny.unwrap_or(true),
        }))
    };
    let ingress = section("ingress", "ingressDeny", true, dd_in)?;
    let egress = section("egress", "egressDeny", false, dd_eg)?;
    Ok(Policy {
        // Set by `parse_object`, which reads the metadata.
        origin: PolicyRef::default(),
        kind,
        flavor: Flavor::Cilium,
        display: display.into(),
        namespace: namespace.map(str::to_string),
        order: None,
        tier: None,
        subject,
        selector_path: join(path, "endpointSelector"),
        ingress,
        egress,
    })
}

/// Compiles a CiliumNetworkPolicy (`namespace` set) or CiliumClusterwideNetworkPolicy: one
/// compiled policy per rule in `spec` and `specs`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cilium_policy(
    ctx: &Ctx,
    root: &Map<String, Value>,
    path: &str,
    namespace: Option<&str>,
    name: &str,
    kind: &'static str,
    sink: &mut Sink<'_>,
) -> Result<Vec<Policy>, EngineError> {
    let display = match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let mut out = Vec::new();
    if let Some(spec) = ctx.opt_obj(root, "spec", path)? {
        out.push(one_rule(
            ctx,
            spec,
            &join(path, "spec"),
            namespace,
            &display,
            kind,
            sink,
        )?);
    }
    let sp = join(path, "specs");
    for (i, s) in ctx
        .opt_list(root, "specs", path)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let p = at(&sp, i);
        let m = ctx.obj(s, &p)?;
        out.push(one_rule(ctx, m, &p, namespace, &display, kind, sink)?);
    }
    if out.is_empty() {
        return Err(ctx.err(&join(path, "spec"), "missing (set spec or specs)"));
    }
    Ok(out)
}

/// Cilium's `k8s:` label prefix owned by Cilium (`io.cilium.k8s.`).
const CILIUM_OWNED_PREFIX: &str = "io.cilium.k8s.";
/// `PolicyLabelServiceAccount` (cilium/cilium `pkg/k8s/apis/cilium.io/const.go`).
pub(crate) const SERVICE_ACCOUNT_LABEL: &str = "io.cilium.k8s.policy.serviceaccount";
/// `PolicyLabelCluster`; the engine models one cluster, named `default` (Cilium's default
/// `cluster-name`).
const CLUSTER_LABEL: &str = "io.cilium.k8s.policy.cluster";

/// A pod's labels as Cilium's identity sees them: cilium/cilium `pkg/k8s/utils/utils.go`
/// `SanitizePodLabels` (@ 944f7bae): pod-supplied labels under `io.cilium.k8s.` are dropped
/// (`filterPodLabels`), so a pod cannot claim another namespace's labels, service account or
/// cluster; then the namespace's labels (`io.cilium.k8s.namespace.labels.*`), the namespace
/// name (`io.kubernetes.pod.namespace`, overriding any pod label), the service account
/// (`io.cilium.k8s.policy.serviceaccount`) and the cluster are set.
pub(crate) fn pod_labels(
    labels: &BTreeMap<String, String>,
    namespace: &str,
    service_account: &str,
    namespace_labels: &BTreeMap<String, String>,
    filter: &super::CiliumIdentityFilter,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .filter(|(k, _)| !k.starts_with(CILIUM_OWNED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in namespace_labels {
        out.insert(format!("{NAMESPACE_LABELS_PREFIX}{k}"), v.clone());
    }
    out.insert(POD_NAMESPACE_LABEL.to_string(), namespace.to_string());
    if !service_account.is_empty() {
        out.insert(
            SERVICE_ACCOUNT_LABEL.to_string(),
            service_account.to_string(),
        );
    }
    out.insert(CLUSTER_LABEL.to_string(), "default".to_string());
    out.retain(|k, _| filter.relevant(k));
    out
}

/// Whether a label key is part of a pod's Cilium identity under Cilium's default identity
/// label filter ([`super::CiliumIdentityFilter`]): a label outside the identity cannot be
/// selected by any policy.
pub fn identity_relevant(key: &str) -> bool {
    super::CiliumIdentityFilter::default().relevant(key)
}

/// Why Cilium's default identity label filter leaves `key` out of a pod's identity (`None`
/// when the key is part of it), e.g. `drops keys matching "!pod-template-hash"`.
pub fn identity_filter_pattern(key: &str) -> Option<String> {
    super::CiliumIdentityFilter::default().dropped_by(key)
}
