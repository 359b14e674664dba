//! Reading input objects: dispatch on apiVersion/kind, Namespaces, Pods, Kubernetes
//! NetworkPolicies; the Calico and Cilium readers live in `calico` and `cilium`, the helpers
//! all three share in `read`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::core::Selector;
use crate::vocab::{MANAGED_BY, MANAGER};

use super::error::EngineError;
use super::json::{at, get, join, Ctx};
use super::model::{
    Action, Alt, ContainerPort, Flavor, K8sNs, Pod, Policy, PolicyRef, PortSpec, PortVal, Rule,
    Section, Subject,
};
use super::read::{k8s_selector, parse_cidr, port_number, protocol_field, Sink};

/// One object read from the input.
pub(crate) enum Parsed {
    /// A Namespace.
    Namespace(String, BTreeMap<String, String>),
    /// A Pod.
    Pod(Pod),
    /// One or more compiled policies (a Cilium policy with `specs` gives several).
    Policies(Vec<Policy>),
    /// A staged (not enforced) Calico policy, by display name.
    Staged(String),
    /// Items of a `List`.
    List(Vec<Parsed>),
    /// A ClusterNetworkPolicy.
    Cnp(Box<super::cnp::Cnp>),
    /// A Calico `Tier`, by name.
    Tier(String, super::model::TierDef),
}

/// Reads one top-level object (1-based `document`).
pub(crate) fn parse_object(
    document: usize,
    v: &Value,
    path: &str,
    sink: &mut Sink<'_>,
) -> Result<Parsed, EngineError> {
    let pre = Ctx {
        document,
        object: "?".to_string(),
    };
    let m = pre.obj(v, if path.is_empty() { "(root)" } else { path })?;
    let api_version = pre
        .opt_str(m, "apiVersion", path)?
        .ok_or_else(|| pre.err(&join(path, "apiVersion"), "missing"))?;
    let kind = pre
        .opt_str(m, "kind", path)?
        .ok_or_else(|| pre.err(&join(path, "kind"), "missing"))?;
    let meta = pre.opt_obj(m, "metadata", path)?;
    let name = match meta {
        Some(meta) => pre.opt_str(meta, "name", &join(path, "metadata"))?,
        None => None,
    };
    let namespace = match meta {
        Some(meta) => pre.opt_str(meta, "namespace", &join(path, "metadata"))?,
        None => None,
    };
    let describe = |ns: Option<&str>| match (ns, name) {
        (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
        (None, Some(n)) => format!("{kind} {n}"),
        (_, None) => kind.to_string(),
    };
    let namespaced_kind = !matches!(
        (api_version, kind),
        ("v1", "Namespace")
            | (
                _,
                "GlobalNetworkPolicy"
                    | "StagedGlobalNetworkPolicy"
                    | "CiliumClusterwideNetworkPolicy"
                    | "ClusterNetworkPolicy"
            )
    );
    let ns = namespace.unwrap_or("default");
    let ctx = Ctx {
        document,
        object: describe(namespaced_kind.then_some(ns)),
    };
    let require_name = || {
        name.map(str::to_string)
            .ok_or_else(|| ctx.err(&join(path, "metadata.name"), "missing"))
    };
    // Who the policies read from this object are: lenient about labels, as the readers are
    // about every field they do not evaluate.
    let managed = meta
        .and_then(|m| get(m, "labels"))
        .and_then(Value::as_object)
        .and_then(|l| l.get(MANAGED_BY))
        .and_then(Value::as_str)
        == Some(MANAGER);
    let identify = |mut policies: Vec<Policy>, name: &str| {
        let kind = if api_version == "networking.k8s.io/v1" {
            kind.to_string()
        } else {
            format!("{api_version} {kind}")
        };
        for p in &mut policies {
            p.origin = PolicyRef {
                kind: kind.clone(),
                namespace: p.namespace.clone(),
                name: name.to_string(),
                managed,
            };
        }
        Parsed::Policies(policies)
    };
    let unknown = || EngineError::UnknownKind {
        document,
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    };
    match (api_version, kind) {
        ("v1", "Namespace") => {
            let name = require_name()?;
            let labels = labels_of(&ctx, meta, &join(path, "metadata"))?;
            Ok(Parsed::Namespace(name, labels))
        }
        ("v1", "Pod") => {
            let name = require_name()?;
            parse_pod(&ctx, m, path, ns, name, meta).map(Parsed::Pod)
        }
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            let name = require_name()?;
            let spec = spec_of(&ctx, m, path)?;
            let policy = k8s_policy(&ctx, spec, &join(path, "spec"), ns, &name, sink)?;
            Ok(identify(vec![policy], &name))
        }
        ("projectcalico.org/v3" | "crd.projectcalico.org/v1", _) => match kind {
            "NetworkPolicy" | "GlobalNetworkPolicy" => {
                let name = require_name()?;
                let spec = spec_of(&ctx, m, path)?;
                let global = kind == "GlobalNetworkPolicy";
                let policy = super::calico::calico_policy(
                    &ctx,
                    spec,
                    &join(path, "spec"),
                    (!global).then_some(ns),
                    &name,
                    if global {
                        "GlobalNetworkPolicy"
                    } else {
                        "NetworkPolicy"
                    },
                    sink,
                )?;
                Ok(identify(vec![policy], &name))
            }
            "StagedNetworkPolicy" | "StagedKubernetesNetworkPolicy" => {
                Ok(Parsed::Staged(format!("{ns}/{}", require_name()?)))
            }
            "StagedGlobalNetworkPolicy" => Ok(Parsed::Staged(require_name()?)),
            "Tier" => {
                let name = require_name()?;
                let spec = ctx.opt_obj(m, "spec", path)?;
                let tier = super::calico::tier(&ctx, spec, &join(path, "spec"))?;
                Ok(Parsed::Tier(name, tier))
            }
            _ => Err(unknown()),
        },
        ("cilium.io/v2", "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy") => {
            let name = require_name()?;
            let clusterwide = kind == "CiliumClusterwideNetworkPolicy";
            super::cilium::cilium_policy(
                &ctx,
                m,
                path,
                (!clusterwide).then_some(ns),
                &name,
                kind_static(kind),
                sink,
            )
            .map(|policies| identify(policies, &name))
        }
        ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy") => {
            let name = require_name()?;
            let spec = spec_of(&ctx, m, path)?;
            let mut cnp = super::cnp::read(&ctx, spec, &join(path, "spec"), &name)?;
            if let Parsed::Policies(mut ps) = identify(vec![cnp.policy.clone()], &name) {
                if let Some(p) = ps.pop() {
                    cnp.policy = p;
                }
            }
            Ok(Parsed::Cnp(Box::new(cnp)))
        }
        _ if kind.ends_with("List") && get(m, "items").is_some() => {
            let items_path = join(path, "items");
            let items = ctx.opt_list(m, "items", path)?.unwrap_or_default();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(parse_object(document, item, &at(&items_path, i), sink)?);
            }
            Ok(Parsed::List(out))
        }
        _ => Err(unknown()),
    }
}

fn kind_static(kind: &str) -> &'static str {
    if kind == "CiliumClusterwideNetworkPolicy" {
        "CiliumClusterwideNetworkPolicy"
    } else {
        "CiliumNetworkPolicy"
    }
}

fn spec_of<'v>(
    ctx: &Ctx,
    m: &'v Map<String, Value>,
    path: &str,
) -> Result<&'v Map<String, Value>, EngineError> {
    ctx.opt_obj(m, "spec", path)?
        .ok_or_else(|| ctx.err(&join(path, "spec"), "missing"))
}

fn labels_of(
    ctx: &Ctx,
    meta: Option<&Map<String, Value>>,
    path: &str,
) -> Result<BTreeMap<String, String>, EngineError> {
    match meta.and_then(|m| get(m, "labels")) {
        Some(v) => ctx.string_map(v, &join(path, "labels")),
        None => Ok(BTreeMap::new()),
    }
}

fn parse_pod(
    ctx: &Ctx,
    m: &Map<String, Value>,
    path: &str,
    namespace: &str,
    name: String,
    meta: Option<&Map<String, Value>>,
) -> Result<Pod, EngineError> {
    let labels = labels_of(ctx, meta, &join(path, "metadata"))?;
    // `status.podIP` is the primary address, `status.podIPs` every address (one per family
    // on a dual-stack cluster, the primary first): the pod keeps them all.
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Some(status) = ctx.opt_obj(m, "status", path)? {
        let spath = join(path, "status");
        let mut given = Vec::new();
        if let Some(s) = ctx.opt_str(status, "podIP", &spath)? {
            given.push((s, join(&spath, "podIP")));
        }
        let list_path = join(&spath, "podIPs");
        for (i, entry) in ctx
            .opt_list(status, "podIPs", &spath)?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let p = at(&list_path, i);
            let o = ctx.obj(entry, &p)?;
            if let Some(s) = ctx.opt_str(o, "ip", &p)? {
                given.push((s, join(&p, "ip")));
            }
        }
        for (s, p) in given {
            let ip = s
                .parse::<IpAddr>()
                .map_err(|_| ctx.err(&p, format!("{s:?} is not an IP address")))?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    let mut ports = Vec::new();
    let mut service_account = None;
    if let Some(spec) = ctx.opt_obj(m, "spec", path)? {
        let spec_path = join(path, "spec");
        // `serviceAccount` is the deprecated alias the API server still fills in.
        service_account = match ctx.opt_str(spec, "serviceAccountName", &spec_path)? {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ => ctx
                .opt_str(spec, "serviceAccount", &spec_path)?
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        };
        for field in ["initContainers", "containers"] {
            let cpath = join(&spec_path, field);
            for (i, c) in ctx
                .opt_list(spec, field, &spec_path)?
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let cp = at(&cpath, i);
                let c = ctx.obj(c, &cp)?;
                let ppath = join(&cp, "ports");
                for (j, p) in ctx
                    .opt_list(c, "ports", &cp)?
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let pp = at(&ppath, j);
                    let p = ctx.obj(p, &pp)?;
                    let number = get(p, "containerPort")
                        .ok_or_else(|| ctx.err(&join(&pp, "containerPort"), "missing"))?;
                    let number = port_number(ctx, number, &join(&pp, "containerPort"))?;
                    let protocol = protocol_field(ctx, p, &pp)?.unwrap_or_default();
                    let name = ctx.opt_str(p, "name", &pp)?.map(str::to_string);
                    ports.push(ContainerPort {
                        name,
                        port: number,
                        protocol,
                    });
                }
            }
        }
    }
    Ok(Pod {
        namespace: namespace.to_string(),
        name,
        labels,
        ips,
        ports,
        service_account,
    })
}

fn k8s_port(ctx: &Ctx, p: &Value, path: &str) -> Result<PortSpec, EngineError> {
    let m = ctx.obj(p, path)?;
    let proto = protocol_field(ctx, m, path)?.unwrap_or_default();
    let end = get(m, "endPort")
        .map(|v| port_number(ctx, v, &join(path, "endPort")))
        .transpose()?;
    let val = match get(m, "port") {
        None => {
            if end.is_some() {
                return Err(ctx.err(&join(path, "endPort"), "endPort needs a numeric port"));
            }
            PortVal::Any
        }
        Some(Value::String(s)) if !s.is_empty() && !s.bytes().all(|b| b.is_ascii_digit()) => {
            if end.is_some() {
                return Err(ctx.err(
                    &join(path, "endPort"),
                    "endPort cannot be used with a named port",
                ));
            }
            PortVal::Named(s.clone())
        }
        Some(Value::String(s)) => {
            let n: u64 = s
                .parse()
                .map_err(|_| ctx.err(&join(path, "port"), format!("{s:?} is not a port")))?;
            numeric_range(ctx, n, end, path)?
        }
        Some(v) => {
            let n = ctx.uint(v, &join(path, "port"), 65535)?;
            numeric_range(ctx, n, end, path)?
        }
    };
    Ok(PortSpec {
        proto: Some(proto),
        val,
    })
}

fn numeric_range(ctx: &Ctx, n: u64, end: Option<u16>, path: &str) -> Result<PortVal, EngineError> {
    let lo = u16::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ctx.err(&join(path, "port"), format!("{n} is not a port (1-65535)")))?;
    let hi = end.unwrap_or(lo);
    if hi < lo {
        return Err(ctx.err(
            &join(path, "endPort"),
            format!("endPort {hi} is below port {lo}"),
        ));
    }
    Ok(PortVal::Range(lo, hi))
}

fn k8s_peer(ctx: &Ctx, v: &Value, path: &str, namespace: &str) -> Result<Alt, EngineError> {
    let m = ctx.obj(v, path)?;
    let pods = get(m, "podSelector")
        .map(|v| k8s_selector(ctx, v, &join(path, "podSelector")))
        .transpose()?;
    let nss = get(m, "namespaceSelector")
        .map(|v| k8s_selector(ctx, v, &join(path, "namespaceSelector")))
        .transpose()?;
    if let Some(block) = ctx.opt_obj(m, "ipBlock", path)? {
        if pods.is_some() || nss.is_some() {
            return Err(ctx.err(
                path,
                "ipBlock cannot be combined with podSelector or namespaceSelector in one peer",
            ));
        }
        let bpath = join(path, "ipBlock");
        let cidr_s = ctx
            .opt_str(block, "cidr", &bpath)?
            .ok_or_else(|| ctx.err(&join(&bpath, "cidr"), "missing"))?;
        let cidr = parse_cidr(ctx, cidr_s, &join(&bpath, "cidr"))?;
        let xpath = join(&bpath, "except");
        let except = ctx
            .opt_strings(block, "except", &bpath)?
            .iter()
            .enumerate()
            .map(|(i, s)| parse_cidr(ctx, s, &at(&xpath, i)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Alt::K8sBlock { cidr, except });
    }
    match (pods, nss) {
        (None, None) => Err(ctx.err(
            path,
            "a peer must set podSelector, namespaceSelector or ipBlock",
        )),
        (pods, None) => Ok(Alt::K8sPods {
            namespaces: K8sNs::Own(namespace.to_string()),
            pods,
        }),
        (pods, Some(ns)) => Ok(Alt::K8sPods {
            namespaces: K8sNs::Selector(ns),
            pods,
        }),
    }
}

/// Compiles a `networking.k8s.io/v1` NetworkPolicy spec.
pub(crate) fn k8s_policy(
    ctx: &Ctx,
    spec: &Map<String, Value>,
    path: &str,
    namespace: &str,
    name: &str,
    sink: &mut Sink<'_>,
) -> Result<Policy, EngineError> {
    let pods = match get(spec, "podSelector") {
        Some(v) => k8s_selector(ctx, v, &join(path, "podSelector"))?,
        None => Selector::default(),
    };
    let ingress = ctx.opt_list(spec, "ingress", path)?;
    let egress = ctx.opt_list(spec, "egress", path)?;
    let types = ctx.opt_strings(spec, "policyTypes", path)?;
    let (mut has_in, mut has_eg) = (false, false);
    for (i, t) in types.iter().enumerate() {
        match t.as_str() {
            "Ingress" => has_in = true,
            "Egress" => has_eg = true,
            other => {
                return Err(ctx.err(
                    &at(&join(path, "policyTypes"), i),
                    format!("unknown policy type {other:?} (expected Ingress or Egress)"),
                ))
            }
        }
    }
    if types.is_empty() {
        // The API server's defaulting: Ingress always, Egress when there are egress rules.
        has_in = true;
        has_eg = egress.is_some_and(|e| !e.is_empty());
    }
    let mut section = |rules: Option<&[Value]>,
                       key: &str,
                       peer_key: &str,
                       ingress: bool|
     -> Result<Section, EngineError> {
        let lpath = join(path, key);
        let mut out = Vec::new();
        for (i, r) in rules.unwrap_or_default().iter().enumerate() {
            let rp = at(&lpath, i);
            let rm = ctx.obj(r, &rp)?;
            let ppath = join(&rp, peer_key);
            let peers = ctx.opt_list(rm, peer_key, &rp)?.unwrap_or_default();
            let peer = if peers.is_empty() {
                None
            } else {
                let alts = peers
                    .iter()
                    .enumerate()
                    .map(|(j, p)| k8s_peer(ctx, p, &at(&ppath, j), namespace))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(sink.peer(alts))
            };
            let portpath = join(&rp, "ports");
            let ports = ctx.opt_list(rm, "ports", &rp)?.unwrap_or_default();
            let ports = if ports.is_empty() {
                None
            } else {
                Some(
                    ports
                        .iter()
                        .enumerate()
                        .map(|(j, p)| k8s_port(ctx, p, &at(&portpath, j)))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            let (src, dst) = if ingress { (peer, None) } else { (None, peer) };
            out.push(Rule {
                path: rp,
                index: i,
                action: Action::Allow,
                src,
                dst,
                protocol: None,
                not_protocol: None,
                ip_version: None,
                ports,
                not_ports: Vec::new(),
                never: false,
            });
        }
        Ok(Section {
            rules: out,
            deny: Vec::new(),
            isolates: true,
        })
    };
    let ingress = if has_in {
        Some(section(ingress, "ingress", "from", true)?)
    } else {
        None
    };
    let egress = if has_eg {
        Some(section(egress, "egress", "to", false)?)
    } else {
        None
    };
    Ok(Policy {
        // Set by `parse_object`, which reads the metadata.
        origin: PolicyRef::default(),
        kind: "NetworkPolicy",
        flavor: Flavor::Kubernetes,
        display: format!("{namespace}/{name}").into(),
        namespace: Some(namespace.to_string()),
        order: Some(1000.0),
        tier: None,
        subject: Subject::K8s {
            namespace: namespace.to_string(),
            pods,
        },
        selector_path: join(path, "podSelector"),
        ingress,
        egress,
    })
}
