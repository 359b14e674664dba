//! Precomputation: which pods every peer matches (a bit set per peer) and which policies
//! select every pod (per direction, in evaluation order). Built once per scenario, lazily,
//! so that `Scenario::check` only tests bits and walks short rule lists.
//!
//! The index is built from the scenario's tables, passed in as [`Tables`], so that it needs
//! nothing from the engine's root module (which uses it).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::calico::{DEFAULT_TIER, DEFAULT_TIER_ORDER};
use super::calico_selector::CalicoSelector;
use super::cilium;
use super::model::{
    Alt, Entity, Flavor, K8sNs, Mode, Namespace, Peer, Pod, Policy, Subject, TierDef,
};

/// A fixed-size set of pod indices.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn with_len(n: usize) -> Self {
        BitSet {
            words: vec![0; n.div_ceil(64)],
        }
    }

    fn insert(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Everything `check` needs besides the scenario itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    /// Evaluation mode.
    pub mode: Mode,
    /// Per peer: the pods it matches.
    pub peer_pods: Vec<BitSet>,
    /// Per pod: policies applying to its ingress, in evaluation order.
    pub ingress: Vec<Vec<u32>>,
    /// Per pod: policies applying to its egress, in evaluation order.
    pub egress: Vec<Vec<u32>>,
    /// Per pod: (ingress isolated, egress isolated).
    pub isolated: Vec<(bool, bool)>,
    /// Per policy: how many pods it selects.
    pub selected: Vec<usize>,
    /// Pod by IP address (the first pod with that address).
    pub by_ip: HashMap<IpAddr, usize>,
    /// Per policy: whether its (ingress, egress) section has a deny rule (most have none, and
    /// then `check` does not look for one).
    pub denies: Vec<(bool, bool)>,
    /// Per pod: whether a policy applying to its (ingress, egress) has a deny rule.
    pub pod_denies: Vec<(bool, bool)>,
    /// Per policy: a number for its display name, equal for policies that display alike (a
    /// Cilium policy with several specs), so that verdicts name each once without comparing
    /// strings.
    pub display_ids: Vec<u32>,
    /// Whether every policy has a display name of its own (then a policy's index tells it
    /// apart as well as `display_ids`).
    pub names_unique: bool,
    /// Calico: per policy, the rank of its tier (index into `tier_pass`); empty in other
    /// modes.
    pub tier_of: Vec<u32>,
    /// Calico: per tier rank, whether the tier's `defaultAction` is `Pass`.
    pub tier_pass: Vec<bool>,
}

/// What the index is built from: the scenario's tables, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct Tables<'a> {
    /// Evaluation mode.
    pub mode: Mode,
    /// The namespaces, in the order they were added.
    pub namespaces: &'a [Namespace],
    /// Index into `namespaces` by name.
    pub ns_by_name: &'a HashMap<String, usize>,
    /// The pods, in the order they were added.
    pub pods: &'a [Pod],
    /// The compiled policies.
    pub policies: &'a [Policy],
    /// The peer table (rules refer to it by `PeerId`).
    pub peers: &'a [Peer],
    /// Which pod labels make up a Cilium identity.
    pub cilium_identity: &'a super::CiliumIdentityFilter,
    /// Calico `Tier` objects by name.
    pub tiers: &'a BTreeMap<String, TierDef>,
}

/// The Calico releases whose tie-breaking of policies with equal `order` in one tier differs
/// (projectcalico/calico `felix/calc/policy_sorter.go` `PolKVLess`: by the policy key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TieBreak {
    /// v3.28.0 (413e6f55): `namespace/name`, Kubernetes policies `namespace/knp.default.name`
    /// (`updateprocessors/networkpolicyprocessor.go` `convertNetworkPolicyV2ToV1Key`).
    V3_28,
    /// v3.29.0 to v3.31: the same, with the backend name: a default-tier name without a dot
    /// gains `default.` (`libcalico-go/lib/names/policy.go` `TieredPolicyName`, v3.31.0
    /// b1f3c43f; `convertNetworkPolicyV3ToV1Key`).
    V3_29To3_31,
    /// v3.32.0 (eb1cf578) onwards: `name/namespace/kind`, the name as written (Kubernetes
    /// policies: their own name, kind `KubernetesNetworkPolicy`; `PolKVLess` lines 388-400,
    /// after commit 790c866c "Remove tier prefix naming requirement for policies" split the
    /// key into name, namespace and kind).
    Current,
}

impl TieBreak {
    /// Every supported release range.
    pub const ALL: [TieBreak; 3] = [TieBreak::V3_28, TieBreak::V3_29To3_31, TieBreak::Current];

    /// Its name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            TieBreak::V3_28 => "Calico v3.28",
            TieBreak::V3_29To3_31 => "Calico v3.29-v3.31",
            TieBreak::Current => "Calico v3.32+",
        }
    }

    /// The key felix compares for `p` when orders are equal.
    pub fn key(self, p: &Policy) -> String {
        let name = p.origin.name.as_str();
        let ns = p.namespace.as_deref();
        let knp = p.flavor == Flavor::Kubernetes;
        let v1 = |n: String| match ns {
            Some(ns) => format!("{ns}/{n}"),
            None => n,
        };
        match self {
            TieBreak::V3_28 if knp => v1(format!("knp.default.{name}")),
            TieBreak::V3_28 => v1(name.to_string()),
            TieBreak::V3_29To3_31 if knp => v1(format!("knp.default.{name}")),
            TieBreak::V3_29To3_31 if name.contains('.') => v1(name.to_string()),
            TieBreak::V3_29To3_31 => v1(format!("default.{name}")),
            TieBreak::Current => {
                let kind = if knp {
                    "KubernetesNetworkPolicy"
                } else {
                    p.kind
                };
                format!("{name}/{}/{kind}", ns.unwrap_or(""))
            }
        }
    }
}

/// The tier a policy is evaluated in, in Calico mode.
pub(crate) fn tier_name(p: &Policy) -> &str {
    p.tier.as_deref().unwrap_or(DEFAULT_TIER)
}

/// A tier as felix sorts it: whether it has a `Tier` object (`valid`), its order, its name.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TierKey<'a> {
    /// The name.
    pub name: &'a str,
    /// Whether a `Tier` object exists for it.
    pub valid: bool,
    /// `spec.order`.
    pub order: Option<f64>,
}

/// Sorts tiers as felix does (`felix/calc/policy_sorter.go` `TierLess` @ 87c15906): tiers with
/// an object first, then those with an order (by order), then by name.
pub(crate) fn sort_tiers(tiers: &mut [TierKey<'_>]) {
    tiers.sort_by(|a, b| {
        (!a.valid)
            .cmp(&!b.valid)
            .then(a.order.is_none().cmp(&b.order.is_none()))
            .then(a.order.unwrap_or(0.0).total_cmp(&b.order.unwrap_or(0.0)))
            .then_with(|| a.name.cmp(b.name))
    });
}

/// Calico tiers in evaluation order ([`sort_tiers`]; the `default` tier is order 1,000,000
/// without its object, a tier only named by policies has none), each with whether it ends in
/// `Pass`; and per policy, the rank of its tier.
fn rank_tiers(s: &Tables<'_>) -> (Vec<u32>, Vec<bool>) {
    let mut names: Vec<&str> = s.tiers.keys().map(String::as_str).collect();
    names.push(DEFAULT_TIER);
    names.extend(s.policies.iter().map(tier_name));
    names.sort_unstable();
    names.dedup();
    let mut ranked: Vec<TierKey<'_>> = names
        .into_iter()
        .map(|name| match s.tiers.get(name) {
            Some(t) => TierKey {
                name,
                valid: true,
                order: t.order,
            },
            None if name == DEFAULT_TIER => TierKey {
                name,
                valid: true,
                order: Some(DEFAULT_TIER_ORDER),
            },
            None => TierKey {
                name,
                valid: false,
                order: None,
            },
        })
        .collect();
    sort_tiers(&mut ranked);
    let rank: HashMap<&str, u32> = ranked
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((t.name, u32::try_from(i).ok()?)))
        .collect();
    let tier_of = s
        .policies
        .iter()
        .map(|p| rank.get(tier_name(p)).copied().unwrap_or(0))
        .collect();
    let pass = ranked
        .iter()
        .map(|t| s.tiers.get(t.name).is_some_and(|t| t.pass))
        .collect();
    (tier_of, pass)
}

struct World<'a> {
    s: Tables<'a>,
    mode: Mode,
    calico_pod: Vec<BTreeMap<String, String>>,
    calico_ns: Vec<BTreeMap<String, String>>,
    /// Per pod: its service account's labels as Calico's `serviceAccountSelector` sees them.
    calico_sa: Vec<BTreeMap<String, String>>,
    cilium_pod: Vec<BTreeMap<String, String>>,
}

const CALICO_NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
const CALICO_NAME_LABEL: &str = "projectcalico.org/name";
const CALICO_ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";
/// projectcalico/calico @ 87c15906 `api/pkg/apis/projectcalico/v3/constants.go` line 37.
pub(crate) const CALICO_SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";

/// Whether a Calico `serviceAccounts` match holds for a pod (endpoint labels, service account
/// labels).
fn sa_matches(
    sa: &super::model::SaMatch,
    pod: &BTreeMap<String, String>,
    account: &BTreeMap<String, String>,
) -> bool {
    (sa.names.is_empty()
        || pod
            .get(CALICO_SERVICE_ACCOUNT_LABEL)
            .is_some_and(|n| sa.names.contains(n)))
        && sa.selector.as_ref().is_none_or(|s| s.matches(account))
}

impl World<'_> {
    fn ns_name(&self, ns: usize) -> &str {
        self.s.namespaces.get(ns).map_or("", |n| n.name.as_str())
    }

    fn ns_labels(&self, ns: usize) -> Option<&BTreeMap<String, String>> {
        self.s.namespaces.get(ns).map(|n| &n.labels)
    }

    fn calico_ns_matches(&self, sel: &CalicoSelector, ns: usize) -> bool {
        self.calico_ns.get(ns).is_some_and(|l| sel.matches(l))
    }

    /// The namespace part of an alternative (a necessary condition).
    fn alt_ns(&self, alt: &Alt, ns: usize) -> bool {
        match alt {
            Alt::K8sPods { namespaces, .. } => match namespaces {
                K8sNs::Own(own) => self.ns_name(ns) == own,
                K8sNs::Selector(sel) => self.ns_labels(ns).is_some_and(|l| sel.matches(l)),
            },
            Alt::K8sBlock { .. } => self.mode != Mode::Cilium,
            Alt::Calico(e) => match (&e.namespace_selector, &e.scope) {
                (Some(sel), _) => self.calico_ns_matches(sel, ns),
                (None, Some(own))
                    if e.selector.is_some()
                        || e.not_selector.is_some()
                        || e.service_accounts.is_some() =>
                {
                    self.ns_name(ns) == own
                }
                _ => true,
            },
            Alt::CiliumEndpoints { namespace, .. } => namespace
                .as_deref()
                .is_none_or(|own| self.ns_name(ns) == own),
            Alt::CiliumCidr { .. } => false,
            Alt::CiliumEntity(e) => matches!(e, Entity::All | Entity::Cluster),
        }
    }

    /// The pod part of an alternative, given its namespace part holds.
    fn alt_pod(&self, alt: &Alt, pod: usize) -> bool {
        let Some(p) = self.s.pods.get(pod) else {
            return false;
        };
        match alt {
            Alt::K8sPods { pods, .. } => pods.as_ref().is_none_or(|s| s.matches(&p.labels)),
            // A dual-stack pod matches on either of its addresses.
            Alt::K8sBlock { cidr, except } => {
                p.any_ip(|ip| cidr.contains_addr(ip) && !except.iter().any(|e| e.contains_addr(ip)))
            }
            Alt::Calico(e) => {
                let labels = match self.calico_pod.get(pod) {
                    Some(l) => l,
                    None => return false,
                };
                if let Some(sel) = &e.selector {
                    if !sel.matches(labels) {
                        return false;
                    }
                }
                if let Some(sa) = &e.service_accounts {
                    let account = self.calico_sa.get(pod).unwrap_or(labels);
                    if !sa_matches(sa, labels, account) {
                        return false;
                    }
                }
                if e.not_selector
                    .as_ref()
                    .is_some_and(|not| not.matches(labels))
                {
                    return false;
                }
                // nets and notNets judge one address at a time: a dual-stack pod matches
                // when one of its addresses is in nets (if given) and not in notNets.
                let fits = |ip: &IpAddr| {
                    (e.nets.is_empty() || e.nets.iter().any(|n| n.contains_addr(ip)))
                        && !e.not_nets.iter().any(|n| n.contains_addr(ip))
                };
                if p.ips.is_empty() {
                    e.nets.is_empty()
                } else {
                    p.any_ip(fits)
                }
            }
            Alt::CiliumEndpoints { selector, .. } => self
                .cilium_pod
                .get(pod)
                .is_some_and(|l| selector.matches(l)),
            Alt::CiliumCidr { .. } => false,
            Alt::CiliumEntity(e) => matches!(e, Entity::All | Entity::Cluster),
        }
    }

    fn subject_ns(&self, subject: &Subject, ns: usize) -> bool {
        match subject {
            Subject::K8s { namespace, .. } => self.ns_name(ns) == namespace,
            Subject::Calico {
                namespace,
                namespaces,
                ..
            } => {
                namespace
                    .as_deref()
                    .is_none_or(|own| self.ns_name(ns) == own)
                    && namespaces
                        .as_ref()
                        .is_none_or(|sel| self.calico_ns_matches(sel, ns))
            }
            Subject::Cilium { namespace, .. } => namespace
                .as_deref()
                .is_none_or(|own| self.ns_name(ns) == own),
            Subject::Nothing => false,
        }
    }

    fn subject_pod(&self, subject: &Subject, pod: usize) -> bool {
        match subject {
            Subject::K8s { pods, .. } => self
                .s
                .pods
                .get(pod)
                .is_some_and(|p| pods.matches(&p.labels)),
            Subject::Calico {
                selector,
                service_accounts,
                ..
            } => {
                self.calico_pod
                    .get(pod)
                    .is_some_and(|l| selector.matches(l))
                    && service_accounts
                        .as_ref()
                        .is_none_or(|sa| self.calico_sa.get(pod).is_some_and(|l| sa.matches(l)))
            }
            Subject::Cilium { selector, .. } => self
                .cilium_pod
                .get(pod)
                .is_some_and(|l| selector.matches(l)),
            Subject::Nothing => false,
        }
    }
}

/// Builds the index of a scenario's tables.
pub(crate) fn build(s: Tables<'_>) -> Index {
    let mode = s.mode;
    let n_pods = s.pods.len();
    let ns_of_pod: Vec<usize> = s
        .pods
        .iter()
        .map(|p| {
            s.ns_by_name
                .get(&p.namespace)
                .copied()
                .unwrap_or(usize::MAX)
        })
        .collect();
    let mut pods_by_ns: Vec<Vec<usize>> = vec![Vec::new(); s.namespaces.len()];
    for (pod, ns) in ns_of_pod.iter().enumerate() {
        if let Some(v) = pods_by_ns.get_mut(*ns) {
            v.push(pod);
        }
    }
    let need_calico = s.policies.iter().any(|p| p.flavor == Flavor::Calico);
    let need_cilium = s.policies.iter().any(|p| p.flavor == Flavor::Cilium);
    let empty = BTreeMap::new();
    let ns_labels = |i: usize| s.namespaces.get(i).map_or(&empty, |n| &n.labels);
    let calico_pod = if need_calico {
        s.pods
            .iter()
            .map(|p| {
                let mut l = p.labels.clone();
                l.insert(CALICO_NAMESPACE_LABEL.into(), p.namespace.clone());
                l.insert(CALICO_ORCHESTRATOR_LABEL.into(), "k8s".into());
                // workload_endpoint_default.go lines 164-167 @ 87c15906: only names shorter
                // than 63 characters become the label.
                let sa = p.service_account();
                if sa.len() < 63 {
                    l.insert(CALICO_SERVICE_ACCOUNT_LABEL.into(), sa.to_string());
                } else {
                    l.remove(CALICO_SERVICE_ACCOUNT_LABEL);
                }
                l
            })
            .collect()
    } else {
        Vec::new()
    };
    let calico_ns = if need_calico {
        s.namespaces
            .iter()
            .map(|n| {
                let mut l = n.labels.clone();
                l.insert(CALICO_NAME_LABEL.into(), n.name.clone());
                l
            })
            .collect()
    } else {
        Vec::new()
    };
    // The service account's labels: its name as `projectcalico.org/name` (conversion.go
    // lines 739-750 @ 87c15906; the engine reads no ServiceAccount objects).
    let calico_sa = if need_calico {
        s.pods
            .iter()
            .map(|p| {
                [(
                    CALICO_NAME_LABEL.to_string(),
                    p.service_account().to_string(),
                )]
                .into()
            })
            .collect()
    } else {
        Vec::new()
    };
    let cilium_pod = if need_cilium {
        s.pods
            .iter()
            .zip(&ns_of_pod)
            .map(|(p, ns)| {
                cilium::pod_labels(
                    &p.labels,
                    &p.namespace,
                    p.service_account(),
                    ns_labels(*ns),
                    s.cilium_identity,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let w = World {
        s,
        mode,
        calico_pod,
        calico_ns,
        calico_sa,
        cilium_pod,
    };

    let peer_pods = s
        .peers
        .iter()
        .map(|peer| {
            let mut set = BitSet::with_len(n_pods);
            for alt in &peer.alts {
                for (ns, pods) in pods_by_ns.iter().enumerate() {
                    if pods.is_empty() || !w.alt_ns(alt, ns) {
                        continue;
                    }
                    for &pod in pods {
                        if w.alt_pod(alt, pod) {
                            set.insert(pod);
                        }
                    }
                }
            }
            set
        })
        .collect();

    let mut order: Vec<u32> = (0..s.policies.len())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    let (tier_of, tier_pass) = if mode == Mode::Calico {
        rank_tiers(&s)
    } else {
        (Vec::new(), Vec::new())
    };
    if mode == Mode::Calico {
        // Tier by tier; in a tier by `order` (none: last), ties as the current release breaks
        // them (`TieBreak::Current`; `lint` reports ties the releases break differently).
        let keys: Vec<String> = s
            .policies
            .iter()
            .map(|p| TieBreak::Current.key(p))
            .collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (&s.policies[a as usize], &s.policies[b as usize]);
            let ta = tier_of.get(a as usize).copied().unwrap_or(0);
            let tb = tier_of.get(b as usize).copied().unwrap_or(0);
            let oa = pa.order.unwrap_or(f64::INFINITY);
            let ob = pb.order.unwrap_or(f64::INFINITY);
            ta.cmp(&tb)
                .then(oa.total_cmp(&ob))
                .then_with(|| keys[a as usize].cmp(&keys[b as usize]))
        });
    }
    let mut ingress = vec![Vec::new(); n_pods];
    let mut egress = vec![Vec::new(); n_pods];
    let mut isolated = vec![(false, false); n_pods];
    let mut selected = vec![0; s.policies.len()];
    for pid in order {
        let Some(policy) = s.policies.get(pid as usize) else {
            continue;
        };
        for (ns, pods) in pods_by_ns.iter().enumerate() {
            if pods.is_empty() || !w.subject_ns(&policy.subject, ns) {
                continue;
            }
            for &pod in pods {
                if !w.subject_pod(&policy.subject, pod) {
                    continue;
                }
                selected[pid as usize] += 1;
                // A Calico tier ending in Pass denies nothing by itself.
                let ends_in_pass = tier_of
                    .get(pid as usize)
                    .and_then(|&t| tier_pass.get(t as usize))
                    .copied()
                    .unwrap_or(false);
                if let Some(sec) = &policy.ingress {
                    ingress[pod].push(pid);
                    isolated[pod].0 |= sec.isolates && !ends_in_pass;
                }
                if let Some(sec) = &policy.egress {
                    egress[pod].push(pid);
                    isolated[pod].1 |= sec.isolates && !ends_in_pass;
                }
            }
        }
    }
    let mut by_ip = HashMap::new();
    for (i, p) in s.pods.iter().enumerate() {
        for ip in &p.ips {
            by_ip.entry(*ip).or_insert(i);
        }
    }
    let display_ids: Vec<u32> = {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        s.policies
            .iter()
            .map(|p| {
                let next = ids.len() as u32;
                *ids.entry(p.display.as_str()).or_insert(next)
            })
            .collect()
    };
    let denies: Vec<(bool, bool)> = s
        .policies
        .iter()
        .map(|p| {
            let denies = |sec: &Option<super::model::Section>| {
                sec.as_ref().is_some_and(|s| {
                    !s.deny.is_empty()
                        || s.rules
                            .iter()
                            .any(|r| r.action == super::model::Action::Deny)
                })
            };
            (denies(&p.ingress), denies(&p.egress))
        })
        .collect();
    // Per pod and direction: whether any policy applying there has a deny rule.
    let any_deny = |list: &Vec<u32>, dir: fn(&(bool, bool)) -> bool| {
        list.iter()
            .any(|&pid| denies.get(pid as usize).is_none_or(dir))
    };
    let pod_denies = ingress
        .iter()
        .zip(&egress)
        .map(|(i, e)| (any_deny(i, |d| d.0), any_deny(e, |d| d.1)))
        .collect();
    let names_unique = display_ids
        .iter()
        .enumerate()
        .all(|(i, &d)| d as usize == i);
    Index {
        mode,
        peer_pods,
        ingress,
        egress,
        isolated,
        selected,
        by_ip,
        display_ids,
        names_unique,
        denies,
        pod_denies,
        tier_of,
        tier_pass,
    }
}
