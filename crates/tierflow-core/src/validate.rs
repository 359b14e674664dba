//! Spec → validated model. No client: everything here is decided from the object alone.
//!
//! Every problem is reported with the field path (`spec.flows[2].from.tier`) and what is wrong,
//! so the `Ready=False` condition and the Warning event can say it plainly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::core::names::NAMESPACE_NAME_LABEL;
use crate::core::selector::is_dns1123_label;
use crate::core::{Cidr, Port, PortName, Protocol, Selector};
use crate::crd::{
    AppNetworkSpec, AppliedBaseline, BackendSpec, ClusterBaselineSpec, DnsSpec, GuardrailAction,
    GuardrailDirection, GuardrailPeerSpec, GuardrailsSpec, HttpRuleSpec, ModeSpec, PeerSpec,
    PortSpec, ProtocolSpec,
};
use crate::model::{
    AppModel, Backend, BackendRequest, BaselineWish, ClusterBaselineModel, DnsTarget, Flow,
    Guardrail, GuardrailPeer, Guardrails, HttpRule, NamespaceMatch, Peer, Tier,
};

/// One problem in a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, for example `spec.flows[2].from.tier`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a spec (never empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSpec(pub Vec<FieldError>);

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 5;
        let shown: Vec<String> = self.0.iter().take(SHOWN).map(ToString::to_string).collect();
        f.write_str(&shown.join("; "))?;
        if self.0.len() > SHOWN {
            write!(f, "; and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Validates an AppNetwork spec into the model.
pub fn app_network(
    name: &str,
    namespace: &str,
    spec: &AppNetworkSpec,
) -> Result<AppModel, InvalidSpec> {
    let mut errs = Errors::default();

    let dns = dns_target(&spec.dns, "spec.dns", &mut errs);
    let baseline = BaselineWish {
        deny_ingress: spec.baseline.deny_ingress,
        deny_egress: spec.baseline.deny_egress,
        dns: if spec.baseline.deny_egress {
            dns.clone()
        } else {
            None
        },
        kube_api_server: false,
    };

    let mut tiers = Vec::with_capacity(spec.tiers.len());
    let mut index: HashMap<&str, usize> = HashMap::new();
    if spec.tiers.is_empty() {
        errs.add("spec.tiers", "at least one tier is required");
    }
    for (i, t) in spec.tiers.iter().enumerate() {
        let f = format!("spec.tiers[{i}]");
        if !is_dns1123_label(&t.name) {
            errs.add(
                format!("{f}.name"),
                format!("{:?} is not a DNS label (lower case letters, digits and '-', at most 63 characters)", t.name),
            );
        }
        if index.insert(t.name.as_str(), i).is_some() {
            errs.add(
                format!("{f}.name"),
                format!("duplicate tier name {:?}", t.name),
            );
        }
        let selector = match selector(&t.selector, &format!("{f}.selector"), &mut errs) {
            Some(s) if s.is_empty() => {
                errs.add(
                    format!("{f}.selector"),
                    "must not be empty: an empty selector selects every pod of the namespace",
                );
                s
            }
            Some(s) => s,
            None => Selector::default(),
        };
        let ports = ports(&t.ports, &format!("{f}.ports"), &mut errs);
        tiers.push(Tier {
            name: t.name.clone(),
            selector,
            ports,
        });
    }

    let mut flows = Vec::with_capacity(spec.flows.len());
    for (i, fl) in spec.flows.iter().enumerate() {
        let f = format!("spec.flows[{i}]");
        let from = peer(&fl.from, &format!("{f}.from"), &index, namespace, &mut errs);
        let to = peer(&fl.to, &format!("{f}.to"), &index, namespace, &mut errs);
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if matches!(from, Peer::Fqdn(_) | Peer::KubeApiServer) {
            errs.add(
                format!("{f}.from"),
                "fqdn and kubeAPIServer peers can only be destinations (to)",
            );
            continue;
        }
        if !matches!(from, Peer::Tier(_)) && !matches!(to, Peer::Tier(_)) {
            errs.add(
                f.clone(),
                "at least one side of a flow must be a tier of this AppNetwork",
            );
            continue;
        }
        let ports = match (&fl.ports, &to) {
            (Some(p), _) if !p.is_empty() => ports(p, &format!("{f}.ports"), &mut errs),
            (_, Peer::KubeApiServer) => Vec::new(),
            (_, Peer::Tier(t)) => {
                let declared = &tiers[*t].ports;
                if declared.is_empty() {
                    errs.add(
                        format!("{f}.ports"),
                        format!(
                            "the flow gives no ports and tier {:?} declares none; list the ports (tierflow never opens all ports by accident)",
                            tiers[*t].name
                        ),
                    );
                }
                declared.clone()
            }
            _ => {
                errs.add(
                    format!("{f}.ports"),
                    "a flow whose destination is not a tier must list its ports (tierflow never opens all ports by accident)",
                );
                Vec::new()
            }
        };
        let http = http_rules(
            fl.http.as_deref().unwrap_or_default(),
            &ports,
            &to,
            &f,
            &mut errs,
        );
        flows.push(Flow {
            index: i,
            from,
            to,
            ports,
            http,
        });
    }

    let flows = imply_tier_flows(flows, &tiers, namespace);

    if errs.0.is_empty() {
        Ok(AppModel {
            name: name.to_string(),
            namespace: namespace.to_string(),
            baseline,
            dns,
            tiers,
            flows,
            backend: backend_request(spec.backend),
            audit: spec.mode == ModeSpec::Audit,
        })
    } else {
        Err(InvalidSpec(errs.0))
    }
}

/// A peer that spans namespaces (`allNamespaces`, or a namespace selector that matches the
/// namespace's own name label) also holds this app's tier pods that its pod selector selects.
/// Their tier policies isolate them, so the flow is also rendered from (or to) those tiers.
/// Tiers are matched on the labels their selector requires; a namespace selector on other labels
/// of the own namespace cannot be judged here (no client) and is not expanded.
fn imply_tier_flows(flows: Vec<Flow>, tiers: &[Tier], namespace: &str) -> Vec<Flow> {
    let own = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string())]);
    let held = |p: &Peer| -> Vec<usize> {
        let Peer::Pods { namespaces, pods } = p else {
            return Vec::new();
        };
        let spans_own = match namespaces {
            NamespaceMatch::All => true,
            NamespaceMatch::Selector(s) => s.matches(&own),
            NamespaceMatch::Own | NamespaceMatch::Named(_) => false,
        };
        if !spans_own {
            return Vec::new();
        }
        tiers
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                pods.as_ref()
                    .is_none_or(|p| p.matches(&t.selector.match_labels))
            })
            .map(|(i, _)| i)
            .collect()
    };
    let mut out = flows.clone();
    for f in &flows {
        let implied_from = held(&f.from).into_iter().map(|t| Flow {
            from: Peer::Tier(t),
            ..f.clone()
        });
        let implied_to = held(&f.to).into_iter().map(|t| Flow {
            to: Peer::Tier(t),
            ..f.clone()
        });
        for implied in implied_from.chain(implied_to).collect::<Vec<_>>() {
            if !out.contains(&implied) {
                out.push(implied);
            }
        }
    }
    out
}

fn backend_request(b: BackendSpec) -> BackendRequest {
    match b {
        BackendSpec::Auto => BackendRequest::Auto,
        BackendSpec::NetworkPolicy => BackendRequest::Fixed(Backend::NetworkPolicy),
        BackendSpec::Calico => BackendRequest::Fixed(Backend::Calico),
        BackendSpec::Cilium => BackendRequest::Fixed(Backend::Cilium),
        BackendSpec::ClusterNetworkPolicy => BackendRequest::Fixed(Backend::ClusterNetworkPolicy),
    }
}

fn http_rules(
    list: &[HttpRuleSpec],
    ports: &[Port],
    to: &Peer,
    field: &str,
    errs: &mut Errors,
) -> Vec<HttpRule> {
    if list.is_empty() {
        return Vec::new();
    }
    if ports.is_empty() || ports.iter().any(|p| p.protocol != Protocol::Tcp) {
        errs.add(
            format!("{field}.http"),
            "HTTP rules need TCP ports (list them in ports or on the destination tier)",
        );
    }
    if matches!(to, Peer::KubeApiServer) {
        errs.add(
            format!("{field}.http"),
            "HTTP rules towards the API server are not supported (it speaks TLS)",
        );
    }
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            if h.path.as_deref() == Some("") {
                errs.add(
                    format!("{field}.http[{i}].path"),
                    "must not be empty (omit it to allow any path)",
                );
            }
            HttpRule {
                method: h.method.clone(),
                path: h.path.clone(),
            }
        })
        .collect()
}

/// Validates a ClusterBaseline spec into the model.
pub fn cluster_baseline(spec: &ClusterBaselineSpec) -> Result<ClusterBaselineModel, InvalidSpec> {
    let mut errs = Errors::default();
    let selector = selector(
        &spec.namespace_selector,
        "spec.namespaceSelector",
        &mut errs,
    )
    .unwrap_or_default();
    let mut names = |list: &[String], field: &str| {
        let mut out = std::collections::BTreeSet::new();
        for (i, n) in list.iter().enumerate() {
            if is_dns1123_label(n) {
                out.insert(n.clone());
            } else {
                errs.add(
                    format!("{field}[{i}]"),
                    format!("{n:?} is not a namespace name"),
                );
            }
        }
        out
    };
    let exclude = names(&spec.exclude_namespaces, "spec.excludeNamespaces");
    let include_system = names(
        &spec.include_system_namespaces,
        "spec.includeSystemNamespaces",
    );
    let dns = dns_target(&spec.dns, "spec.dns", &mut errs);
    let guardrails = spec
        .guardrails
        .as_ref()
        .and_then(|g| guardrails(g, "spec.guardrails", &mut errs));
    if errs.0.is_empty() {
        Ok(ClusterBaselineModel {
            selector,
            exclude,
            include_system,
            wish: BaselineWish {
                deny_ingress: spec.deny_ingress,
                deny_egress: spec.deny_egress,
                dns: if spec.deny_egress { dns } else { None },
                kube_api_server: spec.allow_kube_api_server && spec.deny_egress,
            },
            backend: backend_request(spec.backend),
            audit: spec.mode == ModeSpec::Audit,
            guardrails,
        })
    } else {
        Err(InvalidSpec(errs.0))
    }
}

/// A ClusterBaseline's guardrails (`None` when there is no rule).
fn guardrails(g: &GuardrailsSpec, field: &str, errs: &mut Errors) -> Option<Guardrails> {
    let priority = match u8::try_from(g.priority) {
        Ok(p) if i32::from(p) <= crate::vocab::GUARDRAIL_MAX_PRIORITY => p,
        _ => {
            errs.add(
                format!("{field}.priority"),
                format!(
                    "{} is not a guardrail priority (0-{})",
                    g.priority,
                    crate::vocab::GUARDRAIL_MAX_PRIORITY
                ),
            );
            0
        }
    };
    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(g.rules.len());
    let (mut ingress, mut egress) = (0, 0);
    for (i, r) in g.rules.iter().enumerate() {
        let rf = format!("{field}.rules[{i}]");
        if !is_dns1123_label(&r.name) {
            errs.add(
                format!("{rf}.name"),
                format!("{:?} is not a DNS label", r.name),
            );
        } else if !names.insert(r.name.as_str()) {
            errs.add(
                format!("{rf}.name"),
                format!("duplicate rule name {:?}", r.name),
            );
        }
        let is_ingress = r.direction == GuardrailDirection::Ingress;
        *if is_ingress {
            &mut ingress
        } else {
            &mut egress
        } += 1;
        if r.peers.is_empty() {
            errs.add(format!("{rf}.peers"), "at least one peer is required");
        }
        let peers: Vec<GuardrailPeer> = r
            .peers
            .iter()
            .enumerate()
            .filter_map(|(j, p)| guardrail_peer(p, &format!("{rf}.peers[{j}]"), errs))
            .collect();
        let ports = ports(&r.ports, &format!("{rf}.ports"), errs);
        rules.push(Guardrail {
            name: r.name.clone(),
            allow: r.action == GuardrailAction::Allow,
            ingress: is_ingress,
            peers,
            ports,
        });
    }
    let max = crate::vocab::CNP_MAX_RULES;
    for (n, dir) in [(ingress, "Ingress"), (egress, "Egress")] {
        if n > max {
            errs.add(
                format!("{field}.rules"),
                format!("{n} {dir} rules; at most {max} per direction"),
            );
        }
    }
    (!rules.is_empty()).then_some(Guardrails { priority, rules })
}

fn guardrail_peer(p: &GuardrailPeerSpec, field: &str, errs: &mut Errors) -> Option<GuardrailPeer> {
    let pods = |errs: &mut Errors| match &p.pod_selector {
        Some(s) => selector(s, &format!("{field}.podSelector"), errs).map(Some),
        None => Some(None),
    };
    match (&p.namespace_selector, p.all_namespaces, &p.cidr) {
        (Some(ns), false, None) => {
            let ns = selector(ns, &format!("{field}.namespaceSelector"), errs)?;
            if ns.is_empty() {
                errs.add(
                    format!("{field}.namespaceSelector"),
                    "an empty selector matches every namespace: use allNamespaces: true",
                );
                return None;
            }
            Some(GuardrailPeer::Pods {
                namespaces: NamespaceMatch::Selector(ns),
                pods: pods(errs)?,
            })
        }
        (None, true, None) => Some(GuardrailPeer::Pods {
            namespaces: NamespaceMatch::All,
            pods: pods(errs)?,
        }),
        (None, false, Some(c)) => {
            if p.pod_selector.is_some() {
                errs.add(
                    format!("{field}.podSelector"),
                    "a cidr peer takes no pod selector",
                );
                return None;
            }
            match Cidr::parse(c) {
                Ok(c) => Some(GuardrailPeer::Cidr(c)),
                Err(e) => {
                    errs.add(format!("{field}.cidr"), e.to_string());
                    None
                }
            }
        }
        _ => {
            errs.add(
                field,
                "set exactly one of namespaceSelector, allNamespaces and cidr",
            );
            None
        }
    }
}

/// Reads back the baseline an AppNetwork recorded in its status (written only from a valid
/// spec, so errors here mean someone edited the status by hand).
pub fn applied_baseline(b: &AppliedBaseline) -> Result<BaselineWish, InvalidSpec> {
    let mut errs = Errors::default();
    let dns = b
        .dns
        .as_ref()
        .and_then(|d| dns_target(d, "status.baseline.dns", &mut errs));
    if errs.0.is_empty() {
        Ok(BaselineWish {
            deny_ingress: b.deny_ingress,
            deny_egress: b.deny_egress,
            dns,
            kube_api_server: b.kube_api_server,
        })
    } else {
        Err(InvalidSpec(errs.0))
    }
}

/// The status form of a baseline wish (inverse of [`applied_baseline`]).
pub fn to_applied_baseline(w: &BaselineWish) -> AppliedBaseline {
    AppliedBaseline {
        deny_ingress: w.deny_ingress,
        deny_egress: w.deny_egress,
        dns: w.dns.as_ref().map(|d| DnsSpec {
            enabled: true,
            namespace: d.namespace.clone(),
            selector: label_selector(&d.pods),
            node_local_address: d.node_local.map(|a| a.to_string()),
        }),
        kube_api_server: w.kube_api_server,
    }
}

/// The Kubernetes form of a validated selector.
pub fn label_selector(s: &Selector) -> LabelSelector {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    LabelSelector {
        match_labels: (!s.match_labels.is_empty()).then(|| s.match_labels.clone()),
        match_expressions: (!s.match_expressions.is_empty()).then(|| {
            s.match_expressions
                .iter()
                .map(|r| LabelSelectorRequirement {
                    key: r.key.clone(),
                    operator: r.op.as_str().to_string(),
                    values: (!r.values.is_empty()).then(|| r.values.iter().cloned().collect()),
                })
                .collect()
        }),
    }
}

fn dns_target(d: &DnsSpec, field: &str, errs: &mut Errors) -> Option<DnsTarget> {
    if !d.enabled {
        return None;
    }
    if !is_dns1123_label(&d.namespace) {
        errs.add(
            format!("{field}.namespace"),
            format!("{:?} is not a namespace name", d.namespace),
        );
    }
    let pods = selector(&d.selector, &format!("{field}.selector"), errs).unwrap_or_default();
    let node_local = match &d.node_local_address {
        None => None,
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errs.add(
                    format!("{field}.nodeLocalAddress"),
                    format!("{a:?} is not an IP address"),
                );
                None
            }
        },
    };
    Some(DnsTarget {
        namespace: d.namespace.clone(),
        pods,
        node_local,
    })
}

/// Validates a Kubernetes label selector into the core form.
pub fn selector(s: &LabelSelector, field: &str, errs_out: &mut impl ErrorSink) -> Option<Selector> {
    let labels: BTreeMap<String, String> = s.match_labels.clone().unwrap_or_default();
    let exprs = s.match_expressions.iter().flatten().map(|r| {
        (
            r.key.clone(),
            r.operator.clone(),
            r.values.clone().unwrap_or_default(),
        )
    });
    match Selector::new(labels, exprs) {
        Ok(sel) => Some(sel),
        Err(e) => {
            errs_out.push_error(field, e.to_string());
            None
        }
    }
}

/// Something that collects field errors (lets `selector` serve other validators too).
pub trait ErrorSink {
    /// Records one error.
    fn push_error(&mut self, field: &str, message: String);
}

impl ErrorSink for Errors {
    fn push_error(&mut self, field: &str, message: String) {
        self.add(field, message);
    }
}

impl ErrorSink for Vec<FieldError> {
    fn push_error(&mut self, field: &str, message: String) {
        self.push(FieldError {
            field: field.to_string(),
            message,
        });
    }
}

fn ports(list: &[PortSpec], field: &str, errs: &mut Errors) -> Vec<Port> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        if let Some(port) = port(p, &format!("{field}[{i}]"), errs) {
            if seen.insert(port) {
                out.push(port);
            }
        }
    }
    out
}

/// One port entry: a number, a range `port`..=`endPort`, or a container port name.
fn port(p: &PortSpec, field: &str, errs: &mut Errors) -> Option<Port> {
    let number = |n: i32, name: &str, errs: &mut Errors| -> Option<u16> {
        match u16::try_from(n) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                errs.add(
                    format!("{field}.{name}"),
                    format!("{n} is not a port (1-65535)"),
                );
                None
            }
        }
    };
    let proto = protocol(p.protocol);
    match (p.port, &p.name) {
        (Some(_), Some(_)) => {
            errs.add(
                field,
                "set port or name, not both (a name stands for the number each pod gives it)",
            );
            None
        }
        (None, None) => {
            errs.add(
                field,
                "set port (a number, with endPort for a range) or name",
            );
            None
        }
        (None, Some(name)) => {
            if p.end_port.is_some() {
                errs.add(
                    format!("{field}.endPort"),
                    "endPort cannot be used with a named port (a range needs a numeric port)",
                );
                return None;
            }
            match PortName::parse(name) {
                Ok(n) => Some(Port::named(n, proto)),
                Err(e) => {
                    errs.add(format!("{field}.name"), e);
                    None
                }
            }
        }
        (Some(first), None) => {
            let first = number(first, "port", errs)?;
            let Some(end) = p.end_port else {
                return Some(Port::new(first, proto));
            };
            let end = number(end, "endPort", errs)?;
            if end < first {
                errs.add(
                    format!("{field}.endPort"),
                    format!("endPort {end} is below port {first}"),
                );
                return None;
            }
            Some(Port::range(first, end, proto))
        }
    }
}

fn protocol(p: ProtocolSpec) -> Protocol {
    match p {
        ProtocolSpec::Tcp => Protocol::Tcp,
        ProtocolSpec::Udp => Protocol::Udp,
        ProtocolSpec::Sctp => Protocol::Sctp,
    }
}

fn peer(
    p: &PeerSpec,
    field: &str,
    tiers: &HashMap<&str, usize>,
    own_namespace: &str,
    errs: &mut Errors,
) -> Option<Peer> {
    let kinds: Vec<&str> = [
        ("tier", p.tier.is_some()),
        ("namespace", p.namespace.is_some()),
        ("namespaceSelector", p.namespace_selector.is_some()),
        ("allNamespaces", p.all_namespaces == Some(true)),
        ("cidr", p.cidr.is_some()),
        ("world", p.world == Some(true)),
        ("fqdn", p.fqdn.is_some()),
        ("kubeAPIServer", p.kube_api_server == Some(true)),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    if kinds.len() > 1 {
        errs.add(
            field,
            format!(
                "set only one of {} (they are different kinds of peer)",
                kinds.join(", ")
            ),
        );
        return None;
    }
    if p.except.is_some() && p.cidr.is_none() {
        errs.add(
            format!("{field}.except"),
            "except is only allowed together with cidr",
        );
        return None;
    }
    let pods = |errs: &mut Errors| -> Option<Option<Selector>> {
        match &p.selector {
            None => Some(None),
            Some(s) => {
                let sel = selector(s, &format!("{field}.selector"), errs)?;
                Some((!sel.is_empty()).then_some(sel))
            }
        }
    };
    match kinds.first().copied() {
        Some("tier") => {
            let name = p.tier.as_deref().unwrap_or_default();
            if p.selector.is_some() {
                errs.add(
                    format!("{field}.selector"),
                    "a tier peer takes no selector (the tier's own selector applies)",
                );
                return None;
            }
            match tiers.get(name) {
                Some(i) => Some(Peer::Tier(*i)),
                None => {
                    errs.add(format!("{field}.tier"), format!("unknown tier {name:?}"));
                    None
                }
            }
        }
        Some("namespace") => {
            let ns = p.namespace.clone().unwrap_or_default();
            if !is_dns1123_label(&ns) {
                errs.add(
                    format!("{field}.namespace"),
                    format!("{ns:?} is not a namespace name"),
                );
                return None;
            }
            if ns == own_namespace {
                errs.add(field, OWN_NAMESPACE_PODS);
                return None;
            }
            Some(Peer::Pods {
                namespaces: NamespaceMatch::Named(ns),
                pods: pods(errs)?,
            })
        }
        Some("namespaceSelector") => {
            let f = format!("{field}.namespaceSelector");
            let sel = selector(p.namespace_selector.as_ref()?, &f, errs)?;
            if sel.is_empty() {
                errs.add(
                    f,
                    "an empty namespaceSelector selects every namespace of the cluster; set allNamespaces: true if that is really meant, or name the namespaces",
                );
                return None;
            }
            Some(Peer::Pods {
                namespaces: NamespaceMatch::Selector(sel),
                pods: pods(errs)?,
            })
        }
        Some("allNamespaces") => Some(Peer::Pods {
            namespaces: NamespaceMatch::All,
            pods: pods(errs)?,
        }),
        Some("cidr") => cidr_peer(p, field, errs),
        Some("world") => {
            if p.selector.is_some() {
                errs.add(
                    format!("{field}.selector"),
                    "a world peer takes no pod selector",
                );
                return None;
            }
            Some(Peer::World)
        }
        Some("fqdn") => {
            let name = p.fqdn.clone().unwrap_or_default();
            if p.selector.is_some() {
                errs.add(
                    format!("{field}.selector"),
                    "an fqdn peer takes no pod selector",
                );
                return None;
            }
            if !is_fqdn_pattern(&name) {
                errs.add(
                    format!("{field}.fqdn"),
                    format!("{name:?} is not a DNS name or a wildcard of the form *.example.com"),
                );
                return None;
            }
            Some(Peer::Fqdn(name))
        }
        Some("kubeAPIServer") => {
            if p.selector.is_some() {
                errs.add(
                    format!("{field}.selector"),
                    "a kubeAPIServer peer takes no pod selector",
                );
                return None;
            }
            Some(Peer::KubeApiServer)
        }
        _ if p.selector.is_some() => {
            errs.add(field, OWN_NAMESPACE_PODS);
            None
        }
        _ => {
            errs.add(
                field,
                "set one of tier, namespace, namespaceSelector, allNamespaces, cidr, world, fqdn or kubeAPIServer",
            );
            None
        }
    }
}

use crate::vocab::OWN_NAMESPACE_PODS;

/// `api.example.com` or `*.example.com`: lower-case DNS labels, an optional leading `*.`.
fn is_fqdn_pattern(s: &str) -> bool {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    rest.len() <= 253 && rest.contains('.') && rest.split('.').all(is_dns1123_label)
}

fn cidr_peer(p: &PeerSpec, field: &str, errs: &mut Errors) -> Option<Peer> {
    if p.selector.is_some() {
        errs.add(
            format!("{field}.selector"),
            "a cidr peer takes no pod selector",
        );
        return None;
    }
    let cidr = match Cidr::parse(p.cidr.as_deref().unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => {
            errs.add(format!("{field}.cidr"), e.to_string());
            return None;
        }
    };
    let mut except = Vec::new();
    for (i, e) in p.except.iter().flatten().enumerate() {
        let f = format!("{field}.except[{i}]");
        match Cidr::parse(e) {
            Err(err) => errs.add(f, err.to_string()),
            Ok(x) if !cidr.contains(&x) || x == cidr => {
                errs.add(f, format!("{x} is not strictly inside {cidr}"));
            }
            Ok(x) => except.push(x),
        }
    }
    except.sort();
    except.dedup();
    Some(Peer::Cidr { cidr, except })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::AppNetworkSpec;

    fn spec(yaml: &str) -> AppNetworkSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn errors(yaml: &str) -> Vec<String> {
        app_network("shop", "prod", &spec(yaml))
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const TIERS: &str = "
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
  - {name: db, selector: {matchLabels: {app: db}}}
";

    #[test]
    fn three_tier_example_validates_with_defaults() {
        let m = app_network(
            "shop",
            "prod",
            &spec(&format!(
                "{TIERS}flows:\n  - {{from: {{tier: frontend}}, to: {{tier: api}}}}\n"
            )),
        )
        .unwrap();
        assert_eq!(m.tiers.len(), 3);
        assert_eq!(m.flows[0].ports, vec![Port::tcp(8080)]);
        assert!(m.baseline.deny_ingress && m.baseline.deny_egress);
        let dns = m.dns.unwrap();
        assert_eq!(dns.namespace, "kube-system");
        assert_eq!(dns.pods.to_string(), "k8s-app=kube-dns");
    }

    #[test]
    fn unknown_tier_is_named_with_its_field() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{tier: web}}, to: {{tier: api}}}}\n"
        ));
        assert_eq!(e, vec!["spec.flows[0].from.tier: unknown tier \"web\""]);
    }

    #[test]
    fn duplicate_tiers_and_empty_selectors_are_rejected() {
        let e = errors("tiers:\n  - {name: a, selector: {}, ports: [{port: 1}]}\n  - {name: a, selector: {matchLabels: {x: y}}}\n");
        assert!(e
            .iter()
            .any(|m| m.starts_with("spec.tiers[0].selector: must not be empty")));
        assert!(e
            .iter()
            .any(|m| m == "spec.tiers[1].name: duplicate tier name \"a\""));
    }

    #[test]
    fn empty_namespace_selector_is_rejected_with_the_reason() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{namespaceSelector: {{}}}}, to: {{tier: api}}}}\n"
        ));
        assert!(e[0].contains("selects every namespace"), "{e:?}");
        assert!(e[0].contains("allNamespaces: true"));
    }

    #[test]
    fn all_namespaces_must_be_explicit() {
        let m = app_network(
            "shop",
            "prod",
            &spec(&format!("{TIERS}flows:\n  - {{from: {{allNamespaces: true, selector: {{matchLabels: {{app: p}}}}}}, to: {{tier: api}}}}\n")),
        )
        .unwrap();
        assert!(matches!(
            &m.flows[0].from,
            Peer::Pods {
                namespaces: NamespaceMatch::All,
                pods: Some(_)
            }
        ));
    }

    #[test]
    fn except_outside_its_cidr_is_rejected() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}, to: {{tier: api}}}}\n"
        ));
        assert_eq!(
            e,
            vec!["spec.flows[0].from.except[0]: 192.168.0.0/16 is not strictly inside 10.0.0.0/8"]
        );
    }

    #[test]
    fn cidr_with_host_bits_suggests_the_network() {
        let e = errors(&format!("{TIERS}flows:\n  - {{from: {{tier: api}}, to: {{cidr: 10.1.2.3/8}}, ports: [{{port: 443}}]}}\n"));
        assert!(e[0].contains("did you mean 10.0.0.0/8"), "{e:?}");
    }

    #[test]
    fn flow_into_a_tier_without_ports_is_rejected() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{tier: api}}, to: {{tier: db}}}}\n"
        ));
        assert!(e[0].starts_with(
            "spec.flows[0].ports: the flow gives no ports and tier \"db\" declares none"
        ));
    }

    #[test]
    fn flow_to_a_cidr_must_list_ports() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{tier: api}}, to: {{cidr: 203.0.113.0/24}}}}\n"
        ));
        assert!(e[0].contains("must list its ports"));
    }

    #[test]
    fn flow_between_two_outsiders_is_rejected() {
        let e = errors(&format!("{TIERS}flows:\n  - {{from: {{namespace: a}}, to: {{cidr: 10.0.0.0/8}}, ports: [{{port: 1}}]}}\n"));
        assert!(e[0].contains("at least one side of a flow must be a tier"));
    }

    #[test]
    fn mixed_peer_kinds_are_rejected() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{tier: api, cidr: 10.0.0.0/8}}, to: {{tier: api}}}}\n"
        ));
        assert!(e[0].contains("set only one of tier, cidr"));
    }

    #[test]
    fn cluster_baseline_defaults_to_every_namespace_with_dns() {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str("{}").unwrap();
        let m = cluster_baseline(&spec).unwrap();
        assert!(m.selector.is_empty());
        assert!(m.wish.deny_ingress && m.wish.deny_egress && m.wish.dns.is_some());
    }

    #[test]
    fn cluster_baseline_rejects_bad_names_and_selectors() {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str(
            "{excludeNamespaces: [Bad_Name], namespaceSelector: {matchExpressions: [{key: env, operator: In}]}}",
        )
        .unwrap();
        let e = cluster_baseline(&spec).unwrap_err().to_string();
        assert!(
            e.contains(
                "spec.namespaceSelector: operator In for key \"env\" needs at least one value"
            ),
            "{e}"
        );
        assert!(
            e.contains("spec.excludeNamespaces[0]: \"Bad_Name\" is not a namespace name"),
            "{e}"
        );
    }

    #[test]
    fn fqdn_and_api_server_peers_are_destinations_only() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{fqdn: api.example.com}}, to: {{tier: api}}}}\n"
        ));
        assert!(e[0].contains("can only be destinations"), "{e:?}");
        let m = app_network(
            "shop",
            "prod",
            &spec(&format!(
                "{TIERS}flows:\n  - {{from: {{tier: api}}, to: {{fqdn: \"*.example.com\"}}, ports: [{{port: 443}}]}}\n  - {{from: {{tier: api}}, to: {{kubeAPIServer: true}}}}\n"
            )),
        )
        .unwrap();
        assert_eq!(m.flows[0].to, Peer::Fqdn("*.example.com".into()));
        assert_eq!(m.flows[1].to, Peer::KubeApiServer);
        assert!(m.flows[1].ports.is_empty());
    }

    #[test]
    fn bad_fqdns_are_rejected() {
        for bad in [
            "example",
            "a..b.com",
            "*.*.com",
            "API.example.com",
            "*example.com",
        ] {
            let e = errors(&format!("{TIERS}flows:\n  - {{from: {{tier: api}}, to: {{fqdn: \"{bad}\"}}, ports: [{{port: 443}}]}}\n"));
            assert!(e[0].contains("is not a DNS name"), "{bad}: {e:?}");
        }
    }

    /// Port entries and the error each gives (empty: valid). The CEL rules of the CRD are
    /// tested against the same table.
    pub(crate) const PORT_CASES: &[(&str, &str)] = &[
        ("{port: 80}", ""),
        ("{port: 30000, endPort: 32767, protocol: UDP}", ""),
        ("{port: 80, endPort: 80}", ""),
        ("{name: http}", ""),
        ("{name: metrics-9090, protocol: UDP}", ""),
        ("{port: 8080, endPort: 80}", "spec.flows[0].ports[0].endPort: endPort 80 is below port 8080"),
        ("{name: http, endPort: 90}", "spec.flows[0].ports[0].endPort: endPort cannot be used with a named port (a range needs a numeric port)"),
        ("{port: 80, name: http}", "spec.flows[0].ports[0]: set port or name, not both (a name stands for the number each pod gives it)"),
        ("{protocol: TCP}", "spec.flows[0].ports[0]: set port (a number, with endPort for a range) or name"),
        ("{endPort: 90}", "spec.flows[0].ports[0]: set port (a number, with endPort for a range) or name"),
        ("{name: HTTP}", "spec.flows[0].ports[0].name: \"HTTP\" is not a port name (lower-case letters, digits and single '-' inside, at least one letter; IANA service name)"),
        ("{name: \"8080\"}", "spec.flows[0].ports[0].name: \"8080\" is not a port name (lower-case letters, digits and single '-' inside, at least one letter; IANA service name)"),
        ("{name: a--b}", "spec.flows[0].ports[0].name: \"a--b\" is not a port name (lower-case letters, digits and single '-' inside, at least one letter; IANA service name)"),
        ("{port: 0}", "spec.flows[0].ports[0].port: 0 is not a port (1-65535)"),
        ("{port: 80, endPort: 70000}", "spec.flows[0].ports[0].endPort: 70000 is not a port (1-65535)"),
    ];

    /// A spec whose only flow has the port entry `port`.
    pub(crate) fn with_port(port: &str) -> String {
        format!(
            "{TIERS}flows:\n  - {{from: {{tier: frontend}}, to: {{tier: api}}, ports: [{port}]}}\n"
        )
    }

    #[test]
    fn ports_are_a_number_a_range_or_a_name_with_precise_errors() {
        for (port, want) in PORT_CASES {
            let got = app_network("shop", "prod", &spec(&with_port(port)));
            match (got, *want) {
                (Ok(m), "") => {
                    let p = m.flows[0].ports[0];
                    if port.contains("endPort: 32767") {
                        assert_eq!(p, Port::range(30000, 32767, Protocol::Udp));
                    }
                    if port.contains("name: http") {
                        assert_eq!(p.name().map(|n| n.to_string()).as_deref(), Some("http"));
                    }
                }
                (Ok(_), want) => panic!("{port}: valid, expected {want}"),
                (Err(e), want) => assert_eq!(e.to_string(), want, "{port}"),
            }
        }
    }

    /// AppNetwork specs and the errors `validate` gives (empty: valid), as `InvalidSpec`
    /// prints them. A spec that does not start with `tiers:` gets [`TIERS`] in front. The CEL
    /// rules of the CRD are tested against the same table.
    pub(crate) const SPEC_CASES: &[(&str, &str)] = &[
        ("flows: [{from: {tier: frontend}, to: {tier: api}}]", ""),
        ("flows: [{from: {tier: web}, to: {tier: api}}]", "spec.flows[0].from.tier: unknown tier \"web\""),
        ("flows: [{from: {tier: api}, to: {tier: nope}, ports: [{port: 1}]}]", "spec.flows[0].to.tier: unknown tier \"nope\""),
        ("tiers: [{name: a, selector: {}, ports: [{port: 1}]}, {name: a, selector: {matchLabels: {x: y}}}]", "spec.tiers[0].selector: must not be empty: an empty selector selects every pod of the namespace; spec.tiers[1].name: duplicate tier name \"a\""),
        ("tiers: [{name: a, selector: {matchExpressions: [{key: app, operator: Exists}]}}]", ""),
        ("flows: [{from: {namespaceSelector: {}}, to: {tier: api}}]", "spec.flows[0].from.namespaceSelector: an empty namespaceSelector selects every namespace of the cluster; set allNamespaces: true if that is really meant, or name the namespaces"),
        ("flows: [{from: {namespaceSelector: {matchLabels: {team: a}}}, to: {tier: api}}]", ""),
        ("flows: [{from: {allNamespaces: true, selector: {matchLabels: {app: p}}}, to: {tier: api}}]", ""),
        ("flows: [{from: {tier: api, cidr: 10.0.0.0/8}, to: {tier: api}}]", "spec.flows[0].from: set only one of tier, cidr (they are different kinds of peer)"),
        ("flows: [{from: {namespace: a, allNamespaces: true, world: true}, to: {tier: api}}]", "spec.flows[0].from: set only one of namespace, allNamespaces, world (they are different kinds of peer)"),
        ("flows: [{from: {tier: frontend, allNamespaces: false, world: false}, to: {tier: api}}]", ""),
        ("flows: [{from: {}, to: {tier: api}}]", "spec.flows[0].from: set one of tier, namespace, namespaceSelector, allNamespaces, cidr, world, fqdn or kubeAPIServer"),
        ("flows: [{from: {world: false}, to: {tier: api}}]", "spec.flows[0].from: set one of tier, namespace, namespaceSelector, allNamespaces, cidr, world, fqdn or kubeAPIServer"),
        ("flows: [{from: {selector: {matchLabels: {app: batch}}}, to: {tier: api}}]", "spec.flows[0].from: pods of this AppNetwork's own namespace take part in flows only as tiers: tierflow isolates every pod of the namespace it manages (the baseline, or their tier's policy), so a flow with them as a plain peer could never be used; declare them as a tier and name it ({tier: NAME})"),
        ("flows: [{from: {namespace: other, except: [10.1.0.0/16]}, to: {tier: api}}]", "spec.flows[0].from.except: except is only allowed together with cidr"),
        ("flows: [{from: {tier: frontend, selector: {matchLabels: {a: b}}}, to: {tier: api}}]", "spec.flows[0].from.selector: a tier peer takes no selector (the tier's own selector applies)"),
        ("flows: [{from: {cidr: 10.0.0.0/8, selector: {matchLabels: {a: b}}}, to: {tier: api}}]", "spec.flows[0].from.selector: a cidr peer takes no pod selector"),
        ("flows: [{from: {world: true, selector: {matchLabels: {a: b}}}, to: {tier: api}}]", "spec.flows[0].from.selector: a world peer takes no pod selector"),
        ("flows: [{from: {tier: api}, to: {kubeAPIServer: true, selector: {matchLabels: {a: b}}}}]", "spec.flows[0].to.selector: a kubeAPIServer peer takes no pod selector"),
        ("flows: [{from: {namespace: Bad_NS}, to: {tier: api}}]", "spec.flows[0].from.namespace: \"Bad_NS\" is not a namespace name"),
        ("flows: [{from: {namespace: monitoring, selector: {matchLabels: {app: prom}}}, to: {tier: api}}]", ""),
        ("flows: [{from: {tier: api}, to: {fqdn: example}, ports: [{port: 443}]}]", "spec.flows[0].to.fqdn: \"example\" is not a DNS name or a wildcard of the form *.example.com"),
        ("flows: [{from: {tier: api}, to: {fqdn: \"*.*.com\"}, ports: [{port: 443}]}]", "spec.flows[0].to.fqdn: \"*.*.com\" is not a DNS name or a wildcard of the form *.example.com"),
        ("flows: [{from: {tier: api}, to: {fqdn: API.example.com}, ports: [{port: 443}]}]", "spec.flows[0].to.fqdn: \"API.example.com\" is not a DNS name or a wildcard of the form *.example.com"),
        ("flows: [{from: {tier: api}, to: {fqdn: \"*.example.com\"}, ports: [{port: 443}]}]", ""),
        ("flows: [{from: {fqdn: api.example.com}, to: {tier: api}}]", "spec.flows[0].from: fqdn and kubeAPIServer peers can only be destinations (to)"),
        ("flows: [{from: {kubeAPIServer: true}, to: {tier: api}}]", "spec.flows[0].from: fqdn and kubeAPIServer peers can only be destinations (to)"),
        ("flows: [{from: {tier: api}, to: {kubeAPIServer: true}}]", ""),
        ("flows: [{from: {namespace: a}, to: {cidr: 10.0.0.0/8}, ports: [{port: 1}]}]", "spec.flows[0]: at least one side of a flow must be a tier of this AppNetwork"),
        ("flows: [{from: {tier: api}, to: {cidr: 203.0.113.0/24}}]", "spec.flows[0].ports: a flow whose destination is not a tier must list its ports (tierflow never opens all ports by accident)"),
        ("flows: [{from: {tier: api}, to: {world: true}, ports: []}]", "spec.flows[0].ports: a flow whose destination is not a tier must list its ports (tierflow never opens all ports by accident)"),
        ("flows: [{from: {tier: api}, to: {tier: db}}]", "spec.flows[0].ports: the flow gives no ports and tier \"db\" declares none; list the ports (tierflow never opens all ports by accident)"),
        ("flows: [{from: {tier: api}, to: {tier: db}, ports: [{port: 5432}]}]", ""),
        ("flows: [{from: {tier: api}, to: {cidr: 10.1.2.3/8}, ports: [{port: 443}]}]", "spec.flows[0].to.cidr: \"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?"),
        ("flows: [{from: {tier: api}, to: {cidr: \"2001:db8::1/32\"}, ports: [{port: 443}]}]", "spec.flows[0].to.cidr: \"2001:db8::1/32\" has host bits set; did you mean 2001:db8::/32?"),
        ("flows: [{from: {tier: api}, to: {cidr: 10.0.0.0}, ports: [{port: 443}]}]", "spec.flows[0].to.cidr: \"10.0.0.0\" is not a CIDR (expected address/prefix, for example 10.0.0.0/8)"),
        ("flows: [{from: {tier: api}, to: {cidr: 10.0.0.0/33}, ports: [{port: 443}]}]", "spec.flows[0].to.cidr: \"10.0.0.0/33\" is not a CIDR (expected address/prefix, for example 10.0.0.0/8)"),
        ("flows: [{from: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}, to: {tier: api}}]", "spec.flows[0].from.except[0]: 192.168.0.0/16 is not strictly inside 10.0.0.0/8"),
        ("flows: [{from: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}, to: {tier: api}}]", "spec.flows[0].from.except[0]: 10.0.0.0/8 is not strictly inside 10.0.0.0/8"),
        ("flows: [{from: {cidr: 10.0.0.0/8, except: [10.1.2.3/16]}, to: {tier: api}}]", "spec.flows[0].from.except[0]: \"10.1.2.3/16\" has host bits set; did you mean 10.1.0.0/16?"),
        ("flows: [{from: {cidr: 10.0.0.0/8, except: [bogus]}, to: {tier: api}}]", "spec.flows[0].from.except[0]: \"bogus\" is not a CIDR (expected address/prefix, for example 10.0.0.0/8)"),
        ("flows: [{from: {cidr: 10.0.0.0/8, except: [\"fd00::/8\"]}, to: {tier: api}}]", "spec.flows[0].from.except[0]: fd00::/8 is not strictly inside 10.0.0.0/8"),
        ("flows: [{from: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.0.0/16]}, to: {tier: api}}]", ""),
        ("flows: [{from: {cidr: \"2001:db8::/32\", except: [\"2001:db8:1::/48\"]}, to: {tier: api}}]", ""),
        ("flows: [{from: {world: true}, to: {tier: api}}, {from: {tier: api}, to: {world: true}, ports: [{port: 443}]}]", ""),
        ("flows: [{from: {tier: frontend}, to: {tier: api}, http: [{method: GET, path: \"\"}]}]", "spec.flows[0].http[0].path: must not be empty (omit it to allow any path)"),
        ("flows: [{from: {tier: frontend}, to: {tier: api}, http: [{method: GET, path: /api/.*}]}]", ""),
        ("dns: {nodeLocalAddress: 169.254.20.10}", ""),
        ("dns: {nodeLocalAddress: \"fd00::a\"}", ""),
        ("dns: {nodeLocalAddress: 169.254.20.300}", "spec.dns.nodeLocalAddress: \"169.254.20.300\" is not an IP address"),
        ("dns: {enabled: false, nodeLocalAddress: nope}", ""),
        ("dns: {namespace: Kube_System}", "spec.dns.namespace: \"Kube_System\" is not a namespace name"),
        // Left to validate (see `crd::cel`): the own namespace, selector syntax, HTTP ports.
        ("flows: [{from: {tier: api}, to: {namespace: prod}, ports: [{port: 1}]}]", "spec.flows[0].to: pods of this AppNetwork's own namespace take part in flows only as tiers: tierflow isolates every pod of the namespace it manages (the baseline, or their tier's policy), so a flow with them as a plain peer could never be used; declare them as a tier and name it ({tier: NAME})"),
        ("flows: [{from: {namespaceSelector: {matchExpressions: [{key: env, operator: In}]}}, to: {tier: api}}]", "spec.flows[0].from.namespaceSelector: operator In for key \"env\" needs at least one value"),
        ("flows: [{from: {tier: frontend}, to: {tier: api}, ports: [{port: 53, protocol: UDP}], http: [{method: GET}]}]", "spec.flows[0].http: HTTP rules need TCP ports (list them in ports or on the destination tier)"),
    ];

    /// A [`SPEC_CASES`] entry as a whole spec.
    pub(crate) fn case_spec(case: &str) -> String {
        if case.starts_with("tiers:") {
            case.to_string()
        } else {
            format!("{TIERS}{case}\n")
        }
    }

    #[test]
    fn spec_cases_give_their_errors() {
        for (case, want) in SPEC_CASES {
            match app_network("shop", "prod", &spec(&case_spec(case))) {
                Ok(_) => assert_eq!(*want, "", "{case}: valid"),
                Err(e) => assert_eq!(e.to_string(), *want, "{case}"),
            }
        }
    }

    /// ClusterBaseline specs and their errors, as [`SPEC_CASES`].
    pub(crate) const BASELINE_CASES: &[(&str, &str)] = &[
        ("{}", ""),
        ("{excludeNamespaces: [Bad_Name], includeSystemNamespaces: [kube-system]}", "spec.excludeNamespaces[0]: \"Bad_Name\" is not a namespace name"),
        ("{includeSystemNamespaces: [-x]}", "spec.includeSystemNamespaces[0]: \"-x\" is not a namespace name"),
        ("{dns: {nodeLocalAddress: 169.254.20.10}}", ""),
        ("{dns: {nodeLocalAddress: nope}}", "spec.dns.nodeLocalAddress: \"nope\" is not an IP address"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{cidr: 169.254.169.254/32}], ports: [{port: 30000, endPort: 32767}, {name: http}]}, {name: b, action: Allow, direction: Ingress, peers: [{namespaceSelector: {matchLabels: {team: x}}, podSelector: {matchLabels: {app: p}}}, {allNamespaces: true}]}]}}", ""),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{allNamespaces: true}]}, {name: a, action: Deny, direction: Ingress, peers: [{allNamespaces: true}]}]}}", "spec.guardrails.rules[1].name: duplicate rule name \"a\""),
        ("{guardrails: {rules: [{name: Bad, action: Deny, direction: Egress, peers: [{allNamespaces: true}]}]}}", "spec.guardrails.rules[0].name: \"Bad\" is not a DNS label"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: []}]}}", "spec.guardrails.rules[0].peers: at least one peer is required"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{allNamespaces: true, cidr: 10.0.0.0/8}]}]}}", "spec.guardrails.rules[0].peers[0]: set exactly one of namespaceSelector, allNamespaces and cidr"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{}]}]}}", "spec.guardrails.rules[0].peers[0]: set exactly one of namespaceSelector, allNamespaces and cidr"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{namespaceSelector: {}}]}]}}", "spec.guardrails.rules[0].peers[0].namespaceSelector: an empty selector matches every namespace: use allNamespaces: true"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{cidr: 10.0.0.0/8, podSelector: {matchLabels: {a: b}}}]}]}}", "spec.guardrails.rules[0].peers[0].podSelector: a cidr peer takes no pod selector"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{cidr: 169.254.169.254/16}]}]}}", "spec.guardrails.rules[0].peers[0].cidr: \"169.254.169.254/16\" has host bits set; did you mean 169.254.0.0/16?"),
        ("{guardrails: {rules: [{name: a, action: Deny, direction: Egress, peers: [{allNamespaces: true}], ports: [{port: 90, endPort: 80}]}]}}", "spec.guardrails.rules[0].ports[0].endPort: endPort 80 is below port 90"),
        // Left to the OpenAPI schema (maximum).
        ("{guardrails: {priority: 100, rules: [{name: a, action: Deny, direction: Egress, peers: [{allNamespaces: true}]}]}}", "spec.guardrails.priority: 100 is not a guardrail priority (0-99)"),
    ];

    #[test]
    fn baseline_cases_give_their_errors() {
        for (case, want) in BASELINE_CASES {
            let spec: ClusterBaselineSpec = serde_yaml::from_str(case).unwrap();
            match cluster_baseline(&spec) {
                Ok(_) => assert_eq!(*want, "", "{case}: valid"),
                Err(e) => assert_eq!(e.to_string(), *want, "{case}"),
            }
        }
    }

    #[test]
    fn http_rules_need_tcp_ports() {
        let e = errors(&format!(
            "{TIERS}flows:\n  - {{from: {{tier: frontend}}, to: {{tier: api}}, ports: [{{port: 53, protocol: UDP}}], http: [{{method: GET}}]}}\n"
        ));
        assert!(e[0].contains("HTTP rules need TCP ports"), "{e:?}");
    }

    #[test]
    fn pods_of_the_own_namespace_outside_tiers_are_refused_with_the_fix() {
        let e = errors(&format!("{TIERS}flows:\n  - {{from: {{selector: {{matchLabels: {{app: batch}}}}}}, to: {{tier: api}}}}\n"));
        assert!(
            e[0].starts_with("spec.flows[0].from: pods of this AppNetwork's own namespace"),
            "{e:?}"
        );
        assert!(e[0].contains("declare them as a tier"));
        let e = errors(&format!("{TIERS}flows:\n  - {{from: {{tier: api}}, to: {{namespace: prod}}, ports: [{{port: 1}}]}}\n"));
        assert!(
            e[0].starts_with("spec.flows[0].to: pods of this AppNetwork's own namespace"),
            "{e:?}"
        );
    }

    #[test]
    fn a_peer_spanning_namespaces_also_brings_the_tiers_it_selects() {
        let m = app_network(
            "shop",
            "prod",
            &spec(&format!("{TIERS}flows:\n  - {{from: {{allNamespaces: true, selector: {{matchLabels: {{app: frontend}}}}}}, to: {{tier: api}}}}\n")),
        )
        .unwrap();
        assert_eq!(m.flows.len(), 2);
        assert_eq!(
            (m.flows[1].from.clone(), m.flows[1].to.clone()),
            (Peer::Tier(0), Peer::Tier(1))
        );
        // a namespace selector on another namespace's name brings nothing
        let m = app_network(
            "shop",
            "prod",
            &spec(&format!("{TIERS}flows:\n  - {{from: {{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: other}}}}}}, to: {{tier: api}}}}\n")),
        )
        .unwrap();
        assert_eq!(m.flows.len(), 1);
    }

    #[test]
    fn applied_baseline_round_trips() {
        let m = app_network("shop", "prod", &spec(TIERS)).unwrap();
        let back = applied_baseline(&to_applied_baseline(&m.baseline)).unwrap();
        assert_eq!(back, m.baseline);
    }
}
