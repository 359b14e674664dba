//! Replaying observed flows against AppNetworks: the audit on any CNI (`tierflow suggest
//! --against`, `tierflow verify --flows`) and the check of a suggestion.
//!
//! The AppNetworks are planned by the one planner ([`plan::plan`], as `render` plans them) on
//! one backend, the objects it gives are read by the [`engine`](crate::engine) with the known
//! pods, and every observed connection (the flows that were not denied) is decided. A pod end
//! that matches no known pod is simulated as a pod with the record's namespace, labels and
//! address. A denied connection is reported with the AppNetwork and tier whose policy denies
//! it, as data ([`Refusal`]).
//!
//! The API server: on the standard backend a `kubeAPIServer` peer is its endpoints' addresses,
//! taken here from the observed flows to it; Calico (`services: default/kubernetes`) and Cilium
//! (`toEntities: [kube-apiserver]`) name it in forms the engine does not model, so flows to it
//! are not checked there ([`Unchecked`]). `fqdn` flows are not simulated (nothing resolves names
//! offline; a note says so). An AppNetwork in `mode: Audit` is replayed in its enforcing form.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::flows::{End, Outcome};
use super::suggest::{Known, Observed};
use crate::core::Cidr;
use crate::engine::{Direction, Effect, Endpoint, EngineError, Pod, Scenario};
use crate::model::Backend;
use crate::plan::{self, AppInput};
use crate::vocab::{APP_NETWORK_LABEL, ROLE_BASELINE, ROLE_LABEL, ROLE_TIER, TIER_LABEL};

/// An observed connection the AppNetworks would deny.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// The source, as `namespace/pod`, `namespace/{labels}` or an address.
    pub from: String,
    /// The destination.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// How many observed flows it stands for.
    pub count: u64,
    /// The first record (line) of the input that showed it.
    pub record: usize,
    /// The AppNetworks (`namespace/name`) whose policies deny it.
    pub app_networks: Vec<String>,
    /// Why, per deciding policy, in words.
    pub why: Vec<String>,
    /// The deciding policies (`namespace/name`).
    pub decided_by: Vec<String>,
}

/// An observed connection that could not be decided offline, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unchecked {
    /// The source.
    pub from: String,
    /// The destination.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: String,
    /// Why it was not decided.
    pub why: String,
}

/// The outcome of a replay on one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    /// The backend the AppNetworks were planned for.
    pub backend: String,
    /// Distinct connections decided.
    pub checked: usize,
    /// Observed flows (records) they stand for.
    pub flows: u64,
    /// The connections the AppNetworks would deny.
    pub denied: Vec<Refusal>,
    /// The connections not decided.
    pub unchecked: Vec<Unchecked>,
    /// AppNetworks the planner holds (nothing of them would be written), `ns/name: why`.
    pub held: Vec<String>,
    /// What the backend cannot express (from the planner).
    pub notes: Vec<String>,
}

impl Replay {
    /// Whether every decided connection is allowed and nothing is held.
    pub fn passed(&self) -> bool {
        self.denied.is_empty() && self.held.is_empty()
    }
}

/// What a rendered object is to the AppNetworks.
struct Origin {
    role: String,
    namespace: String,
    app: String,
    tier: String,
}

fn origins(objects: &[crate::render::Object]) -> BTreeMap<String, Origin> {
    let mut out = BTreeMap::new();
    for o in objects {
        let labels = o.body().pointer("/metadata/labels");
        let label = |k: &str| {
            labels
                .and_then(|l| l.get(k))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let ns = o.namespace().unwrap_or_default().to_string();
        let display = if ns.is_empty() {
            o.name().to_string()
        } else {
            format!("{ns}/{}", o.name())
        };
        out.insert(
            display,
            Origin {
                role: label(ROLE_LABEL),
                namespace: ns,
                app: label(APP_NETWORK_LABEL),
                tier: label(TIER_LABEL),
            },
        );
    }
    out
}

/// Replays the observed connections (all but the denied ones) against `apps` planned for
/// `backend` (see the module documentation).
pub fn replay(
    apps: &[AppInput],
    observed: &[Observed],
    known: &Known,
    backend: Backend,
    cluster_cidrs: &[Cidr],
) -> Result<Replay, EngineError> {
    let mut api: Vec<(IpAddr, u16)> = observed
        .iter()
        .filter_map(|o| match o.destination {
            End::ApiServer { ip: Some(ip) } => Some((ip, o.port)),
            _ => None,
        })
        .collect();
    api.sort();
    api.dedup();
    let cluster = plan::Cluster {
        forced_backend: Some(backend),
        env: crate::render::Env {
            api_server: api,
            cluster_cidrs: cluster_cidrs.to_vec(),
        },
        cluster_cidrs: cluster_cidrs.to_vec(),
        cluster_cidrs_source: "--cluster-cidr".to_string(),
        ..plan::Cluster::default()
    };
    // What they would deny once enforced: `mode: Audit` is replayed in its enforcing form.
    let enforcing: Vec<AppInput> = apps
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.spec.mode = crate::crd::ModeSpec::Enforce;
            a
        })
        .collect();
    let planned = plan::plan(&enforcing, &[], &known.namespaces, &cluster, &plan::Nothing);
    let mut out = Replay {
        backend: backend.as_str().to_string(),
        checked: 0,
        flows: 0,
        denied: Vec::new(),
        unchecked: Vec::new(),
        held: Vec::new(),
        notes: Vec::new(),
    };
    for (ns, app) in planned.apps() {
        if let Some(h) = &app.hold {
            out.held.push(format!(
                "{ns}/{}: {}: {}",
                app.name,
                h.reason.reason(),
                h.message
            ));
        }
        for l in &app.limitations {
            out.notes.push(format!(
                "{ns}/{}: {}: {}",
                app.name,
                l.kind.reason(),
                l.message
            ));
        }
    }
    if apps
        .iter()
        .flat_map(|a| &a.spec.flows)
        .any(|f| f.to.fqdn.is_some())
    {
        out.notes.push(
            "fqdn flows are not simulated (nothing resolves names offline): an observed \
             connection only an fqdn flow allows is reported as denied"
                .to_string(),
        );
    }
    let origin = origins(&planned.objects);
    let apps_in: BTreeMap<&str, Vec<String>> = apps.iter().fold(BTreeMap::new(), |mut m, a| {
        m.entry(a.namespace.as_str())
            .or_insert_with(Vec::new)
            .push(format!("{}/{}", a.namespace, a.name));
        m
    });

    let mut scenario = Scenario::from_values(planned.objects.iter().map(|o| o.to_value()))?;
    for (ns, labels) in &known.namespaces {
        scenario.add_namespace(ns, labels.clone());
    }
    for p in &known.pods {
        scenario.add_pod(p.clone());
    }
    // Pod ends that match no known pod become pods of their own.
    let mut made: BTreeMap<End, usize> = BTreeMap::new();
    for o in observed {
        for end in [&o.source, &o.destination] {
            if let End::Pod {
                namespace,
                labels,
                name,
                ip,
            } = end
            {
                if known.resolve(end).is_some() || made.contains_key(end) {
                    continue;
                }
                let n = made.len();
                scenario.add_pod(Pod {
                    namespace: namespace.clone(),
                    name: format!(
                        "observed-{n}{}",
                        name.as_ref().map(|s| format!("-{s}")).unwrap_or_default()
                    ),
                    labels: labels.clone(),
                    ips: ip.iter().copied().collect(),
                    ..Pod::default()
                });
                made.insert(end.clone(), scenario.pods().len() - 1);
            }
        }
    }
    let at: std::collections::HashMap<(&str, &str), usize> = scenario
        .pods()
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.namespace.as_str(), p.name.as_str()), i))
        .collect();
    let index_of = |p: &Pod| at.get(&(p.namespace.as_str(), p.name.as_str())).copied();
    let endpoint = |end: &End| -> Option<Endpoint> {
        match end {
            End::Pod { .. } => match known.resolve(end).and_then(|i| known.pods.get(i)) {
                Some(p) => index_of(p).map(Endpoint::Pod),
                None => made.get(end).copied().map(Endpoint::Pod),
            },
            End::ApiServer { ip } => ip.map(Endpoint::Ip),
            End::Address(ip) => Some(Endpoint::Ip(*ip)),
        }
    };
    let describe = |end: &End| match known.resolve(end).and_then(|i| known.pods.get(i)) {
        Some(p) => format!("{}/{}", p.namespace, p.name),
        None => end.to_string(),
    };
    let api_by_name = backend.capabilities().api_server_entity;

    for o in observed {
        if o.outcome == Outcome::Denied {
            continue;
        }
        let (from, to) = (describe(&o.source), describe(&o.destination));
        let unchecked = |why: String| Unchecked {
            from: from.clone(),
            to: to.clone(),
            port: o.port,
            protocol: o.protocol.as_str().to_string(),
            why,
        };
        if matches!(o.destination, End::ApiServer { .. }) && api_by_name {
            out.unchecked.push(unchecked(format!(
                "{} names the API server itself (a Service or entity), which is not simulated \
                 offline",
                backend.as_str()
            )));
            continue;
        }
        let (Some(a), Some(b)) = (endpoint(&o.source), endpoint(&o.destination)) else {
            out.unchecked.push(unchecked(
                "the record has no address for the API server".to_string(),
            ));
            continue;
        };
        out.checked += 1;
        out.flows += o.count;
        // The answer alone first; the deciding policies only for what is denied.
        if scenario.allows(a, b, o.port, o.protocol) {
            continue;
        }
        let verdict = scenario.check(a, b, o.port, o.protocol);
        let mut why = Vec::new();
        let mut app_networks: Vec<String> = Vec::new();
        let refs: Vec<_> = scenario
            .explain(a, b, o.port, o.protocol)
            .into_iter()
            .filter(|r| matches!(r.effect, Effect::Deny | Effect::DefaultDeny))
            .collect();
        // Where a tier's policy isolates the end, the baseline adds nothing to say.
        let tier_at = |d: Direction| {
            refs.iter().any(|r| {
                r.direction == d && origin.get(&r.policy).is_some_and(|g| g.role == ROLE_TIER)
            })
        };
        for r in &refs {
            let is_baseline = origin
                .get(&r.policy)
                .is_some_and(|g| g.role == ROLE_BASELINE);
            if is_baseline && tier_at(r.direction) {
                continue;
            }
            let side = match r.direction {
                Direction::Egress => "egress",
                Direction::Ingress => "ingress",
            };
            match origin.get(&r.policy) {
                Some(g) if g.role == ROLE_TIER => {
                    let app = format!("{}/{}", g.namespace, g.app);
                    why.push(format!(
                        "no flow of AppNetwork {app} allows it: {side} of tier {} ({})",
                        g.tier, r.policy
                    ));
                    app_networks.push(app);
                }
                Some(g) if g.role == ROLE_BASELINE => {
                    let owners = apps_in
                        .get(g.namespace.as_str())
                        .cloned()
                        .unwrap_or_default();
                    why.push(format!(
                        "the {side} end is in no tier, and the baseline of namespace {} denies \
                         its {side} ({})",
                        g.namespace, r.policy
                    ));
                    app_networks.extend(owners);
                }
                _ => why.push(format!("{} denies its {side}", r.policy)),
            }
        }
        app_networks.sort();
        app_networks.dedup();
        out.denied.push(Refusal {
            from,
            to,
            port: o.port,
            protocol: o.protocol.as_str().to_string(),
            count: o.count,
            record: o.first_record,
            app_networks,
            why,
            decided_by: verdict.decided_by.to_strings(),
        });
    }
    Ok(out)
}
