//! `tierflow suggest`: the smallest AppNetworks that allow every observed flow and nothing
//! else.
//!
//! - **Ends.** A flow's pod end is matched to a known pod (by address, then namespace and
//!   name, then labels) whose labels win over the record's; else the record's labels are used.
//! - **Workloads**: a known pod's is its controlling owner ([`owner_of`]: a ReplicaSet is its
//!   Deployment, a scheduled Job its CronJob); a pod without one, or an end with no known pod,
//!   is grouped by its stable labels: its labels without those a controller sets per pod or
//!   per revision ([`VOLATILE_LABELS`]).
//! - **Tiers** select exactly their workload's pods among every known pod of the namespace,
//!   seen in a flow or not (else a pod never observed would get the tier's access): the first
//!   of [`PREFERRED_KEYS`] the workload carries if no other workload's pod has it, else all
//!   the stable labels its pods share, narrowed by `DoesNotExist` / `NotIn` on the other pods'
//!   labels; a workload no selector can tell apart is left out ([`LeftOut::Unselectable`]).
//! - **Flows** are grouped per (source, destination) pair of an AppNetwork with the observed
//!   ports, each with how many observed flows it covers. A flow between two namespaces is
//!   written in both (egress on one side, ingress on the other), since each is isolated by
//!   its baseline.
//! - DNS flows (UDP or TCP 53 to `k8s-app=kube-dns` in `kube-system`) become the AppNetwork's
//!   DNS allowance (`dns.enabled` is false where no pod of the namespace was seen resolving);
//!   flows to the API server become `kubeAPIServer` flows; addresses are `/32` (`/128`)
//!   CIDRs, grouped to wider networks only when asked ([`Options::aggregate_v4`]).
//! - Denied flows (Hubble `DROPPED`, Calico `deny`) are never allowed: they are listed apart.
//!
//! Whether the suggestion allows every observed flow is not assumed: the CLI replays the
//! observations against it with [`super::replay`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::flows::{End, Flow, Outcome, SeenAt};
use crate::core::{Cidr, Protocol};
use crate::crd::{AppNetworkSpec, DnsSpec, FlowSpec, PeerSpec, PortSpec, TierSpec};
use crate::engine::{EngineError, Pod, Scenario};
use crate::vocab::{DNS_LABEL_KEY, DNS_LABEL_VALUE, DNS_NAMESPACE, SYSTEM_NAMESPACES};
use serde_json::Value;

/// Labels a controller sets per pod or per revision: never part of a tier's selector.
pub const VOLATILE_LABELS: [&str; 9] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "pod-template-generation",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "security.istio.io/tlsMode",
    "service.istio.io/canonical-revision",
];

/// The label keys that name a workload, in order of preference.
pub const PREFERRED_KEYS: [&str; 6] = [
    "app.kubernetes.io/name",
    "app",
    "k8s-app",
    "name",
    "app.kubernetes.io/component",
    "component",
];

/// Labels of a pod or namespace.
pub type Labels = BTreeMap<String, String>;

/// The pods and namespaces known besides the flows (from files or the cluster).
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The pods.
    pub pods: Vec<Pod>,
    /// Namespaces and their labels.
    pub namespaces: BTreeMap<String, Labels>,
    /// The workload of each pod that has a controlling owner, by (namespace, name): see
    /// [`owner_of`].
    pub owners: HashMap<(String, String), Workload>,
    /// Lookups by address, name and namespace, built on first use.
    index: OnceLock<Lookup>,
}

/// The workload a pod belongs to: its owner (a ReplicaSet stands for its Deployment, a
/// CronJob's Job for the CronJob), else, for a pod without an owner or an observed end
/// without a known pod, its stable labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// A controller: its kind and name.
    Owner {
        /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicaSet`, ...
        kind: String,
        /// Its name.
        name: String,
    },
    /// No owner: the stable labels.
    Labels(Labels),
}

/// The workload of a pod object from its `metadata.ownerReferences` (the controller, else
/// the first): a ReplicaSet whose name ends in `-<pod-template-hash>` is that Deployment, a
/// Job whose name ends in `-<8 or more digits>` (the minutes of its schedule) that CronJob.
pub fn owner_of(pod: &Value) -> Option<Workload> {
    let refs = pod.pointer("/metadata/ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    let kind = r.get("kind")?.as_str()?;
    let name = r.get("name")?.as_str()?;
    let label = |k: &str| pod.pointer(&format!("/metadata/labels/{}", k.replace('/', "~1")));
    let (kind, name) = match kind {
        "ReplicaSet" => match label("pod-template-hash")
            .and_then(Value::as_str)
            .and_then(|h| name.strip_suffix(&format!("-{h}")))
        {
            Some(d) if !d.is_empty() => ("Deployment", d),
            _ => (kind, name),
        },
        "Job" => match name.rsplit_once('-') {
            Some((c, n))
                if !c.is_empty() && n.len() >= 8 && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                ("CronJob", c)
            }
            _ => (kind, name),
        },
        _ => (kind, name),
    };
    Some(Workload::Owner {
        kind: kind.to_string(),
        name: name.to_string(),
    })
}

#[derive(Clone, Debug, Default)]
struct Lookup {
    by_ip: HashMap<IpAddr, usize>,
    by_name: HashMap<(String, String), usize>,
    by_namespace: HashMap<String, Vec<usize>>,
}

impl Known {
    /// The given pods and namespaces.
    pub fn new(pods: Vec<Pod>, namespaces: BTreeMap<String, Labels>) -> Known {
        Known {
            pods,
            namespaces,
            owners: HashMap::new(),
            index: OnceLock::new(),
        }
    }

    /// The workload of a known pod: its owner, else its stable labels.
    pub fn workload(&self, i: usize) -> Option<Workload> {
        let p = self.pods.get(i)?;
        Some(
            self.owners
                .get(&(p.namespace.clone(), p.name.clone()))
                .cloned()
                .unwrap_or_else(|| Workload::Labels(stable(&p.labels))),
        )
    }

    /// The workload of an observed end: the known pod's, else the record's stable labels.
    pub fn workload_of(&self, end: &End) -> Option<Workload> {
        match (self.resolve(end), end) {
            (Some(i), _) => self.workload(i),
            (None, End::Pod { labels, .. }) => Some(Workload::Labels(stable(labels))),
            _ => None,
        }
    }

    fn lookup(&self) -> &Lookup {
        self.index.get_or_init(|| {
            let mut l = Lookup::default();
            for (i, p) in self.pods.iter().enumerate() {
                for ip in &p.ips {
                    l.by_ip.entry(*ip).or_insert(i);
                }
                l.by_name
                    .entry((p.namespace.clone(), p.name.clone()))
                    .or_insert(i);
                l.by_namespace
                    .entry(p.namespace.clone())
                    .or_default()
                    .push(i);
            }
            l
        })
    }

    /// The pods and namespaces among objects (`v1` Pod, Namespace, and Lists of them); every
    /// other object is passed over. Read by the engine, so pods are read exactly as
    /// `simulate` reads them (labels, `status.podIPs`, container ports).
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Result<Known, EngineError> {
        fn keep(v: &Value) -> Option<Value> {
            match (
                v.get("apiVersion").and_then(Value::as_str),
                v.get("kind").and_then(Value::as_str),
            ) {
                (Some("v1"), Some("Pod" | "Namespace")) => Some(v.clone()),
                (_, Some(k)) if k.ends_with("List") => {
                    let items: Vec<Value> = v
                        .get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(keep)
                        .collect();
                    Some(serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
                }
                _ => None,
            }
        }
        // Documents keep their positions (null for the others), so errors name the right one.
        let kept: Vec<Value> = values
            .into_iter()
            .map(|v| keep(&v).unwrap_or(Value::Null))
            .collect();
        fn owners(v: &Value, out: &mut HashMap<(String, String), Workload>) {
            if let Some(items) = v.get("items").and_then(Value::as_array) {
                items.iter().for_each(|i| owners(i, out));
            } else if v.get("kind").and_then(Value::as_str) == Some("Pod") {
                let meta = |k: &str| {
                    v.pointer(&format!("/metadata/{k}"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                if let (Some(name), Some(w)) = (meta("name"), owner_of(v)) {
                    let ns = meta("namespace").unwrap_or_else(|| "default".to_string());
                    out.insert((ns, name), w);
                }
            }
        }
        let mut owned = HashMap::new();
        kept.iter().for_each(|v| owners(v, &mut owned));
        let scenario = Scenario::from_values(kept)?;
        let namespaces = scenario
            .namespaces()
            .map(|ns| {
                (
                    ns.to_string(),
                    scenario.namespace_labels(ns).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let mut known = Known::new(scenario.pods().to_vec(), namespaces);
        known.owners = owned;
        Ok(known)
    }

    /// The known pod an end is, if any: by address, then by namespace and name, then a pod of
    /// its namespace with the record's stable labels (exactly, else among more).
    pub fn resolve(&self, end: &End) -> Option<usize> {
        let End::Pod {
            namespace,
            labels,
            name,
            ip,
        } = end
        else {
            return None;
        };
        let lookup = self.lookup();
        if let Some(i) = ip.and_then(|ip| lookup.by_ip.get(&ip)) {
            return Some(*i);
        }
        if let Some(i) = name
            .as_ref()
            .and_then(|n| lookup.by_name.get(&(namespace.clone(), n.clone())))
        {
            return Some(*i);
        }
        let wanted = stable(labels);
        if wanted.is_empty() {
            return None;
        }
        // A pod with exactly these stable labels first, else one with more.
        let candidates = lookup.by_namespace.get(namespace)?;
        let holds = |i: &&usize| {
            self.pods
                .get(**i)
                .is_some_and(|p| wanted.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        };
        candidates
            .iter()
            .filter(holds)
            .find(|i| {
                self.pods
                    .get(**i)
                    .is_some_and(|p| stable(&p.labels) == wanted)
            })
            .or_else(|| candidates.iter().find(holds))
            .copied()
    }

    /// The labels of a pod end: the known pod's, else the record's.
    pub fn labels_of(&self, end: &End) -> Labels {
        match (self.resolve(end), end) {
            (Some(i), _) => self
                .pods
                .get(i)
                .map(|p| p.labels.clone())
                .unwrap_or_default(),
            (None, End::Pod { labels, .. }) => labels.clone(),
            _ => Labels::new(),
        }
    }
}

/// A pod's labels without the volatile ones.
pub fn stable(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a destination is the cluster DNS on port 53.
pub fn is_dns(known: &Known, destination: &End, port: u16) -> bool {
    port == 53
        && destination.namespace() == Some(DNS_NAMESPACE)
        && known
            .labels_of(destination)
            .get(DNS_LABEL_KEY)
            .map(String::as_str)
            == Some(DNS_LABEL_VALUE)
}

/// How to suggest.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The name of every suggested AppNetwork.
    pub name: String,
    /// The namespaces to write AppNetworks for (default: every namespace of an observed pod
    /// but the system namespaces).
    pub namespaces: BTreeSet<String>,
    /// Group IPv4 addresses into networks of this prefix length (`--aggregate /24`).
    pub aggregate_v4: Option<u8>,
    /// Group IPv6 addresses into networks of this prefix length.
    pub aggregate_v6: Option<u8>,
}

/// Identical observed flows, counted: one connection to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Who opened it.
    pub source: End,
    /// Who accepted it.
    pub destination: End,
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// The outcome observed.
    pub outcome: Outcome,
    /// How many flow records (weighted by their own counts).
    pub count: u64,
    /// The first record that showed it (1-based line or record).
    pub first_record: usize,
}

/// Groups identical flows (same ends, port, protocol and outcome), in order of first sight. A
/// connection reported at both ends counts once: its count is the larger of the two ends'
/// sums, plus the records that say no end.
pub fn group(flows: &[Flow]) -> Vec<Observed> {
    let mut out: Vec<Observed> = Vec::new();
    let mut sums: Vec<[u64; 3]> = Vec::new();
    let mut at: HashMap<(End, End, u16, Protocol, Outcome), usize> = HashMap::new();
    for f in flows {
        let key = (
            f.source.clone(),
            f.destination.clone(),
            f.port,
            f.protocol,
            f.outcome,
        );
        let i = *at.entry(key).or_insert_with(|| {
            out.push(Observed {
                source: f.source.clone(),
                destination: f.destination.clone(),
                port: f.port,
                protocol: f.protocol,
                outcome: f.outcome,
                count: 0,
                first_record: f.record,
            });
            sums.push([0; 3]);
            out.len() - 1
        });
        let end = match f.seen_at {
            SeenAt::Source => 0,
            SeenAt::Destination => 1,
            SeenAt::Unknown => 2,
        };
        if let Some(s) = sums.get_mut(i) {
            s[end] += f.count;
        }
    }
    for (o, s) in out.iter_mut().zip(&sums) {
        o.count = s[0].max(s[1]) + s[2];
    }
    out
}

/// Why an observed flow is not in the suggestion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeftOut {
    /// It was denied when observed.
    Denied,
    /// A pod end has no stable label to select it by.
    NoStableLabels(String),
    /// Neither end is in a namespace an AppNetwork is written for.
    OutsideNamespaces,
    /// No selector selects this end's workload without another pod (named) that was not
    /// seen in this flow: allowing it would allow that pod too.
    Unselectable {
        /// The end.
        end: String,
        /// The other pod.
        other: String,
    },
}

impl LeftOut {
    /// Words for the report.
    pub fn describe(&self) -> String {
        match self {
            LeftOut::Denied => "denied when observed; not allowed by the suggestion".to_string(),
            LeftOut::NoStableLabels(end) => format!(
                "{end} has no stable label to select it by (only per-pod ones, or the record \
                 aggregated them away); label its workload, or give its pods, and observe again"
            ),
            LeftOut::OutsideNamespaces => {
                "neither end is in a namespace an AppNetwork is written for".to_string()
            }
            LeftOut::Unselectable { end, other } => format!(
                "no label selector selects {end}'s workload without also selecting {other}, \
                 which belongs to another workload; give them different labels and observe again"
            ),
        }
    }
}

/// One suggested AppNetwork.
#[derive(Clone, Debug, PartialEq)]
pub struct Suggested {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The spec.
    pub spec: AppNetworkSpec,
    /// Per entry of `spec.flows`: how many observed flows it covers.
    pub flow_counts: Vec<u64>,
    /// Per entry of `spec.tiers`: the pods it selects (`namespace/name`): the known pods its
    /// selector selects, else the observed ends it stands for.
    pub tier_pods: Vec<BTreeSet<String>>,
    /// How many observed DNS flows the DNS allowance covers.
    pub dns_count: u64,
}

/// The suggestion and what it leaves out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suggestion {
    /// One AppNetwork per namespace.
    pub app_networks: Vec<Suggested>,
    /// Observed flows left out, each with why.
    pub left_out: Vec<(Observed, LeftOut)>,
}

/// A tier's selector, orderable: labels the pods carry, keys they lack, and values they do
/// not have.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sel {
    /// `matchLabels`.
    pub labels: Labels,
    /// `DoesNotExist` keys.
    pub absent: BTreeSet<String>,
    /// `NotIn` keys and values.
    pub not_in: BTreeMap<String, BTreeSet<String>>,
}

impl Sel {
    fn of(labels: Labels) -> Sel {
        Sel {
            labels,
            ..Sel::default()
        }
    }

    /// Whether it selects a pod with these labels.
    pub fn matches(&self, l: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| l.get(k) == Some(v))
            && self.absent.iter().all(|k| !l.contains_key(k))
            && self
                .not_in
                .iter()
                .all(|(k, vs)| l.get(k).is_none_or(|v| !vs.contains(v)))
    }

    fn spec(&self) -> LabelSelector {
        let mut exprs: Vec<LabelSelectorRequirement> = self
            .absent
            .iter()
            .map(|k| LabelSelectorRequirement {
                key: k.clone(),
                operator: "DoesNotExist".to_string(),
                values: None,
            })
            .collect();
        exprs.extend(self.not_in.iter().map(|(k, vs)| LabelSelectorRequirement {
            key: k.clone(),
            operator: "NotIn".to_string(),
            values: Some(vs.iter().cloned().collect()),
        }));
        LabelSelector {
            match_labels: Some(self.labels.clone()),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }
}

/// A peer, orderable (for grouping) before it becomes a [`PeerSpec`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PeerKey {
    Tier(String),
    Pods(String, Sel),
    Cidr(Cidr),
    ApiServer,
}

impl PeerKey {
    fn spec(&self) -> PeerSpec {
        match self {
            PeerKey::Tier(t) => PeerSpec {
                tier: Some(t.clone()),
                ..PeerSpec::default()
            },
            PeerKey::Pods(ns, sel) => PeerSpec {
                namespace: Some(ns.clone()),
                selector: Some(sel.spec()),
                ..PeerSpec::default()
            },
            PeerKey::Cidr(c) => PeerSpec {
                cidr: Some(c.to_string()),
                ..PeerSpec::default()
            },
            PeerKey::ApiServer => PeerSpec {
                kube_api_server: Some(true),
                ..PeerSpec::default()
            },
        }
    }
}

/// A DNS label made of a label value: lower case, `-` for anything else, at most 63.
fn dns_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "tier".to_string()
    } else {
        out
    }
}

/// The selector of a workload: its first preferred key, or all its stable labels.
fn preferred(stable: &Labels) -> Labels {
    PREFERRED_KEYS
        .iter()
        .find_map(|k| stable.get(*k).map(|v| [(k.to_string(), v.clone())].into()))
        .unwrap_or_else(|| stable.clone())
}

/// The pods of one namespace a tier must tell apart: per pod (known, or an observed end with
/// no known pod) its workload and stable labels.
pub type Members = Vec<(Workload, Labels)>;

/// The tiers of one namespace.
#[derive(Default)]
struct Tiers {
    /// workload → (selector, name)
    by_workload: BTreeMap<Workload, (Sel, String)>,
    /// Workloads no selector can select without another workload's pod: that pod.
    unselectable: BTreeMap<Workload, String>,
}

/// The tiers of the observed workloads of one namespace. A tier selects exactly its
/// workload's pods among every member (every known pod of the namespace, seen in a flow or
/// not): its preferred label if that selects no other workload's pod, else all its stable
/// labels (those every one of its pods carries), else those narrowed by `DoesNotExist` /
/// `NotIn` on a label of each other pod they would select. A workload whose pods cannot be
/// told from another's by stable labels gets no tier (`unselectable`). The name is the
/// preferred label's value when no other observed workload shares it, else the owner's name,
/// else the stable labels' values.
fn tiers_of(observed: &BTreeSet<Workload>, members: &[(Workload, Labels, String)]) -> Tiers {
    let mut out = Tiers::default();
    let mut chosen: Vec<(Workload, Sel, String)> = Vec::new();
    // Each observed workload's stable labels (common to all its pods) and pods' label sets.
    let mut common: BTreeMap<&Workload, Labels> = BTreeMap::new();
    for w in observed {
        let own: Vec<&Labels> = members
            .iter()
            .filter(|(mw, _, _)| mw == w)
            .map(|(_, l, _)| l)
            .collect();
        let c = match (w, own.split_first()) {
            (_, Some((first, rest))) => (*first)
                .iter()
                .filter(|(k, v)| rest.iter().all(|l| l.get(*k) == Some(*v)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            (Workload::Labels(l), None) => l.clone(),
            (Workload::Owner { .. }, None) => Labels::new(),
        };
        common.insert(w, c);
    }
    let mut preferred_count: BTreeMap<Labels, usize> = BTreeMap::new();
    for c in common.values() {
        *preferred_count.entry(preferred(c)).or_default() += 1;
    }
    for (w, c) in &common {
        let others: Vec<&(Workload, Labels, String)> =
            members.iter().filter(|(mw, _, _)| mw != *w).collect();
        let own: Vec<&Labels> = members
            .iter()
            .filter(|(mw, _, _)| mw == *w)
            .map(|(_, l, _)| l)
            .collect();
        let alone = |sel: &Sel| !others.iter().any(|(_, l, _)| sel.matches(l));
        let sel = if c.is_empty() {
            None
        } else if alone(&Sel::of(preferred(c))) {
            Some(Sel::of(preferred(c)))
        } else {
            // All stable labels, narrowed by a label of each other pod they would select.
            let mut sel = Sel::of(c.clone());
            let mut stuck = None;
            for (_, l, name) in &others {
                if !sel.matches(l) {
                    continue;
                }
                let key = l.iter().find(|(k, v)| {
                    !c.contains_key(*k) && !own.iter().any(|o| o.get(*k) == Some(*v))
                });
                match key {
                    Some((k, _)) if !own.iter().any(|o| o.contains_key(k)) => {
                        sel.absent.insert(k.clone());
                    }
                    Some((k, v)) => {
                        sel.not_in.entry(k.clone()).or_default().insert(v.clone());
                    }
                    None => {
                        stuck = Some(name.clone());
                        break;
                    }
                }
            }
            match stuck {
                Some(other) => {
                    out.unselectable.insert((*w).clone(), other);
                    None
                }
                None => Some(sel),
            }
        };
        let Some(sel) = sel else {
            if !out.unselectable.contains_key(*w) {
                out.unselectable
                    .insert((*w).clone(), "(its pods share no stable label)".to_string());
            }
            continue;
        };
        let label = preferred(c);
        let base = match w {
            _ if preferred_count.get(&label) == Some(&1) => {
                label.values().cloned().collect::<Vec<_>>().join("-")
            }
            Workload::Owner { name, .. } => name.clone(),
            Workload::Labels(_) => c.values().cloned().collect::<Vec<_>>().join("-"),
        };
        chosen.push(((*w).clone(), sel, dns_label(&base)));
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (workload, sel, base) in chosen {
        let mut name = base.clone();
        let mut n = 2;
        while used.contains(&name) {
            let suffix = format!("-{n}");
            name = format!(
                "{}{suffix}",
                &base[..base.len().min(63 - suffix.len())].trim_end_matches('-')
            );
            n += 1;
        }
        used.insert(name.clone());
        out.by_workload.insert(workload, (sel, name));
    }
    out
}

fn aggregate(ip: IpAddr, options: &Options) -> Cidr {
    let prefix = match ip {
        IpAddr::V4(_) => options.aggregate_v4,
        IpAddr::V6(_) => options.aggregate_v6,
    };
    let host = Cidr::host(ip);
    match prefix {
        Some(p) => ipnet::IpNet::new(ip, p)
            .ok()
            .and_then(|n| Cidr::parse(&n.trunc().to_string()).ok())
            .unwrap_or(host),
        None => host,
    }
}

fn describe_end(known: &Known, end: &End) -> String {
    match known.resolve(end).and_then(|i| known.pods.get(i)) {
        Some(p) => format!("{}/{}", p.namespace, p.name),
        None => end.to_string(),
    }
}

/// Suggests AppNetworks for the observed flows (see the module documentation).
pub fn suggest(flows: &[Flow], known: &Known, options: &Options) -> Suggestion {
    let observed = group(flows);
    let mut out = Suggestion::default();

    // Which namespaces get an AppNetwork.
    let namespaces: BTreeSet<String> = if options.namespaces.is_empty() {
        observed
            .iter()
            .filter(|o| o.outcome != Outcome::Denied)
            .filter(|o| !is_dns(known, &o.destination, o.port))
            .flat_map(|o| [o.source.namespace(), o.destination.namespace()])
            .flatten()
            .filter(|ns| !SYSTEM_NAMESPACES.contains(ns))
            .map(str::to_string)
            .collect()
    } else {
        options.namespaces.clone()
    };

    // The workloads of every pod end, per namespace.
    let mut workloads: BTreeMap<String, BTreeSet<Workload>> = BTreeMap::new();
    let mut kept: Vec<&Observed> = Vec::new();
    for o in &observed {
        if o.outcome == Outcome::Denied {
            out.left_out.push((o.clone(), LeftOut::Denied));
            continue;
        }
        let dns = is_dns(known, &o.destination, o.port);
        let ends: Vec<&End> = if dns {
            vec![&o.source]
        } else {
            vec![&o.source, &o.destination]
        };
        if !ends
            .iter()
            .any(|e| e.namespace().is_some_and(|ns| namespaces.contains(ns)))
        {
            out.left_out.push((o.clone(), LeftOut::OutsideNamespaces));
            continue;
        }
        let mut bad = None;
        for e in &ends {
            if let End::Pod { namespace, .. } = e {
                match known.workload_of(e) {
                    Some(w) if !stable(&known.labels_of(e)).is_empty() => {
                        workloads.entry(namespace.clone()).or_default().insert(w);
                    }
                    _ => bad = Some(describe_end(known, e)),
                }
            }
        }
        if let Some(end) = bad {
            out.left_out.push((o.clone(), LeftOut::NoStableLabels(end)));
            continue;
        }
        kept.push(o);
    }
    // Every pod a tier must tell apart: the known pods of the namespace, seen or not, and the
    // observed ends with no known pod.
    let tiers: BTreeMap<String, Tiers> = workloads
        .iter()
        .map(|(ns, ws)| {
            let mut members: Vec<(Workload, Labels, String)> = known
                .pods
                .iter()
                .enumerate()
                .filter(|(_, p)| &p.namespace == ns)
                .filter_map(|(i, p)| {
                    Some((
                        known.workload(i)?,
                        stable(&p.labels),
                        format!("{}/{}", p.namespace, p.name),
                    ))
                })
                .collect();
            for o in &kept {
                for e in [&o.source, &o.destination] {
                    if e.namespace() == Some(ns.as_str()) && known.resolve(e).is_none() {
                        if let End::Pod { labels, .. } = e {
                            let l = stable(labels);
                            members.push((Workload::Labels(l), stable(labels), e.to_string()));
                        }
                    }
                }
            }
            (ns.clone(), tiers_of(ws, &members))
        })
        .collect();
    let tier_of = |end: &End| -> Option<(String, Sel, String)> {
        let ns = end.namespace()?;
        let w = known.workload_of(end)?;
        let (sel, name) = tiers.get(ns)?.by_workload.get(&w)?;
        Some((ns.to_string(), sel.clone(), name.clone()))
    };
    // A flow with an end no tier can select alone is left out: allowing it would allow
    // another workload's pods.
    let mut selectable: Vec<&Observed> = Vec::new();
    for o in kept {
        let dns = is_dns(known, &o.destination, o.port);
        let ends: Vec<&End> = if dns {
            vec![&o.source]
        } else {
            vec![&o.source, &o.destination]
        };
        let stuck = ends.iter().find_map(|e| {
            let ns = e.namespace()?;
            let w = known.workload_of(e)?;
            let other = tiers.get(ns)?.unselectable.get(&w)?;
            Some((describe_end(known, e), other.clone()))
        });
        match stuck {
            Some((end, other)) => out
                .left_out
                .push((o.clone(), LeftOut::Unselectable { end, other })),
            None => selectable.push(o),
        }
    }
    let kept = selectable;

    // Flow entries per namespace: (from, to) → ports and count.
    type Entries = BTreeMap<(PeerKey, PeerKey), (BTreeSet<(u16, Protocol)>, u64)>;
    let mut entries: BTreeMap<String, Entries> = BTreeMap::new();
    let mut dns: BTreeMap<String, u64> = BTreeMap::new();
    let mut tier_pods: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut tier_ports: BTreeMap<(String, String), BTreeSet<(u16, Protocol)>> = BTreeMap::new();
    for o in kept {
        let src = tier_of(&o.source);
        for (end, t) in [
            (&o.source, &src),
            (&o.destination, &tier_of(&o.destination)),
        ] {
            if let Some((ns, _, name)) = t {
                tier_pods
                    .entry((ns.clone(), name.clone()))
                    .or_default()
                    .insert(describe_end(known, end));
            }
        }
        if is_dns(known, &o.destination, o.port) {
            if let Some((ns, _, _)) = &src {
                *dns.entry(ns.clone()).or_default() += o.count;
            }
            continue;
        }
        let dst = tier_of(&o.destination);
        // The peer of each end as the AppNetwork of `ns` names it.
        // The API server is a peer only as a destination; as a source (webhooks) it is its
        // address.
        let peer = |end: &End, t: &Option<(String, Sel, String)>, ns: &str, to: bool| match (end, t)
        {
            (_, Some((tns, _, name))) if tns == ns => Some(PeerKey::Tier(name.clone())),
            (_, Some((tns, sel, _))) => Some(PeerKey::Pods(tns.clone(), sel.clone())),
            (End::ApiServer { .. }, _) if to => Some(PeerKey::ApiServer),
            (End::ApiServer { ip: Some(ip) }, _) | (End::Address(ip), _) => {
                Some(PeerKey::Cidr(aggregate(*ip, options)))
            }
            _ => None,
        };
        let mut sides: Vec<&str> = Vec::new();
        for t in [&src, &dst].into_iter().flatten() {
            if namespaces.contains(&t.0) && !sides.contains(&t.0.as_str()) {
                sides.push(&t.0);
            }
        }
        for ns in sides {
            let (Some(from), Some(to)) = (
                peer(&o.source, &src, ns, false),
                peer(&o.destination, &dst, ns, true),
            ) else {
                continue;
            };
            let e = entries
                .entry(ns.to_string())
                .or_default()
                .entry((from, to.clone()))
                .or_default();
            e.0.insert((o.port, o.protocol));
            e.1 += o.count;
            if let PeerKey::Tier(t) = to {
                tier_ports
                    .entry((ns.to_string(), t))
                    .or_default()
                    .insert((o.port, o.protocol));
            }
        }
    }

    for ns in namespaces {
        let Some(t) = tiers.get(&ns) else { continue };
        let mut tier_list: Vec<(String, Sel)> = t
            .by_workload
            .values()
            .map(|(sel, name)| (name.clone(), sel.clone()))
            .collect();
        tier_list.sort();
        tier_list.dedup();
        let spec_tiers: Vec<TierSpec> = tier_list
            .iter()
            .map(|(name, sel)| TierSpec {
                name: name.clone(),
                selector: sel.spec(),
                ports: tier_ports
                    .get(&(ns.clone(), name.clone()))
                    .into_iter()
                    .flatten()
                    .map(|(p, proto)| PortSpec::of(*p, *proto))
                    .collect(),
            })
            .collect();
        let mut flows = Vec::new();
        let mut counts = Vec::new();
        for ((from, to), (ports, count)) in entries.remove(&ns).unwrap_or_default() {
            let ports: Vec<PortSpec> = if to == PeerKey::ApiServer {
                Vec::new()
            } else {
                ports
                    .iter()
                    .map(|(p, proto)| PortSpec::of(*p, *proto))
                    .collect()
            };
            flows.push(FlowSpec {
                from: from.spec(),
                to: to.spec(),
                ports: (!ports.is_empty()).then_some(ports),
                http: None,
            });
            counts.push(count);
        }
        let dns_count = dns.get(&ns).copied().unwrap_or(0);
        let spec = AppNetworkSpec {
            backend: Default::default(),
            mode: Default::default(),
            baseline: Default::default(),
            dns: DnsSpec {
                enabled: dns_count > 0,
                ..DnsSpec::default()
            },
            tiers: spec_tiers,
            flows,
        };
        // The pods each tier selects: the known ones, else the observed ends.
        let pods = tier_list
            .iter()
            .map(|(name, sel)| {
                let selected: BTreeSet<String> = known
                    .pods
                    .iter()
                    .filter(|p| p.namespace == ns && sel.matches(&p.labels))
                    .map(|p| format!("{}/{}", p.namespace, p.name))
                    .collect();
                if selected.is_empty() {
                    tier_pods
                        .get(&(ns.clone(), name.clone()))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    selected
                }
            })
            .collect();
        out.app_networks.push(Suggested {
            name: options.name.clone(),
            namespace: ns,
            spec,
            flow_counts: counts,
            tier_pods: pods,
            dns_count,
        });
    }
    out
}

#[cfg(test)]
mod tests;
