//! Guardrails against AppNetworks: which declared flows of an AppNetwork a ClusterBaseline's
//! guardrail overrides, naming the rule, and (given the rendered objects) whether the
//! simulation of those objects denies the flow as the guardrail says.
//!
//! Guardrails are evaluated as every backend writes them: the rules of every ClusterBaseline
//! with guardrails, by `priority` (then ClusterBaseline name), each ClusterBaseline's rules in
//! order, for the pods of the namespaces it covers; per direction the first rule that matches
//! decides (an `Allow` ends the guardrails for that direction, a `Deny` overrides whatever the
//! namespaces' policies say). A connection is checked on the app's representatives and the
//! declared ports (see [`super::endpoints`]); only connections some flow declares are
//! reported. CIDR peers are compared with the app's address peers (a CIDR that holds pod
//! addresses matches pods on ClusterNetworkPolicy and Calico but not on Cilium, so pods are
//! not compared with it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::endpoints::{representatives, Options, Place, Representative};
use super::intent::{checkable, expected, port_holds, probe_number, probe_ports};
use crate::core::{Cidr, Port};
use crate::engine::EngineError;
use crate::model::{
    AppModel, ClusterBaselineModel, Coverage, Guardrail, GuardrailPeer, NamespaceMatch,
};

/// Namespace labels by namespace name.
pub type Labels = BTreeMap<String, String>;

/// One declared flow of an AppNetwork that a guardrail denies.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailOverride {
    /// `namespace/name` of the AppNetwork.
    pub app_network: String,
    /// The flow, by index into `spec.flows`.
    pub flow: usize,
    /// The ClusterBaseline whose guardrail denies it.
    pub cluster_baseline: String,
    /// The guardrail rule's name.
    pub rule: String,
    /// One connection of the flow the rule denies: source representative.
    pub from: String,
    /// Its destination representative.
    pub to: String,
    /// Its destination port.
    pub port: u16,
    /// Its protocol.
    pub protocol: String,
    /// Whether the simulation of the rendered objects denies the connection (the guardrail
    /// holds); `None` when no objects were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced: Option<bool>,
}

impl GuardrailOverride {
    /// One line for people.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "spec.flows[{}] ({} -> {} on {}/{}) is denied by guardrail {:?} of ClusterBaseline {}",
            self.flow,
            self.from,
            self.to,
            self.port,
            self.protocol,
            self.rule,
            self.cluster_baseline
        );
        if self.enforced == Some(false) {
            s.push_str(", but the rendered objects allow it: the guardrail does not hold");
        }
        s
    }
}

/// A ClusterBaseline's guardrails, as this check needs them.
#[derive(Clone, Copy, Debug)]
pub struct Guarding<'a> {
    /// The ClusterBaseline's name.
    pub name: &'a str,
    /// Its model (only its guardrails and coverage are read).
    pub model: &'a ClusterBaselineModel,
}

/// What the check knows of the cluster.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    /// The namespaces known, with their labels (the app's namespace among them, ideally).
    pub namespaces: &'a BTreeMap<String, Labels>,
    /// The operator's namespace (a system namespace for coverage).
    pub operator_namespace: &'a str,
    /// The cluster's ranges (empty: made-up ones).
    pub cluster_cidrs: &'a [Cidr],
}

fn namespace_matches(m: &NamespaceMatch, ns: &str, labels: &Labels) -> bool {
    match m {
        NamespaceMatch::All => true,
        NamespaceMatch::Selector(s) => s.matches(labels),
        NamespaceMatch::Named(n) => n == ns,
        NamespaceMatch::Own => false,
    }
}

fn peer_matches(
    peer: &GuardrailPeer,
    e: &Representative,
    labels_of: &dyn Fn(&str) -> Labels,
) -> bool {
    match (peer, &e.place) {
        (
            GuardrailPeer::Pods { namespaces, pods },
            Place::Pod {
                namespace, labels, ..
            },
        ) => {
            namespace_matches(namespaces, namespace, &labels_of(namespace))
                && pods.as_ref().is_none_or(|s| s.matches(labels))
        }
        (GuardrailPeer::Cidr(c), Place::Address(ip)) => c.contains_addr(ip),
        _ => false,
    }
}

fn rule_matches(
    rule: &Guardrail,
    other: &Representative,
    to: &Representative,
    probe: Port,
    labels_of: &dyn Fn(&str) -> Labels,
) -> bool {
    rule.peers.iter().any(|p| peer_matches(p, other, labels_of))
        && (rule.ports.is_empty() || rule.ports.iter().any(|p| port_holds(p, to, probe)))
}

/// Every declared flow of `model` that a guardrail of `guarding` denies, one entry per flow
/// and rule (the first connection found). With `objects` (everything rendered: the app's
/// objects, the guardrails objects, the baselines), each entry also says whether their
/// simulation denies the connection.
pub fn overrides(
    model: &AppModel,
    guarding: &[Guarding<'_>],
    known: Known<'_>,
    objects: Option<Vec<Value>>,
) -> Result<Vec<GuardrailOverride>, EngineError> {
    let mut rules: Vec<(u8, &str, &ClusterBaselineModel, &Guardrail)> = guarding
        .iter()
        .filter_map(|g| g.model.guardrails.as_ref().map(|gr| (g, gr)))
        .flat_map(|(g, gr)| {
            gr.rules
                .iter()
                .map(move |r| (gr.priority, g.name, g.model, r))
        })
        .collect();
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    rules.sort_by_key(|(priority, name, _, _)| (*priority, *name));
    let mut reps = representatives(
        model,
        Options {
            near_misses: false,
            cluster_cidrs: known.cluster_cidrs.to_vec(),
        },
    );
    // The namespaces' labels as known (coverage depends on them), over what the
    // representatives made up for them.
    for (ns, labels) in reps.namespaces.iter_mut() {
        if let Some(k) = known.namespaces.get(ns) {
            labels.extend(k.clone());
        }
    }
    let labels_of = |ns: &str| -> Labels { reps.namespace_labels(ns) };
    let covered = |m: &ClusterBaselineModel, e: &Representative| match &e.place {
        Place::Pod { namespace, .. } => {
            m.coverage(namespace, &labels_of(namespace), known.operator_namespace)
                == Coverage::Covered
        }
        Place::Address(_) => false,
    };
    // The first rule deciding a direction: `Some((cb, rule))` when it is a Deny.
    let decide = |ingress: bool,
                  subject: &Representative,
                  other: &Representative,
                  to: &Representative,
                  probe: Port| {
        rules
            .iter()
            .filter(|(_, _, m, r)| r.ingress == ingress && covered(m, subject))
            .find(|(_, _, _, r)| rule_matches(r, other, to, probe, &labels_of))
            .filter(|(_, _, _, r)| !r.allow)
            .map(|(_, name, _, r)| (name.to_string(), r.name.clone()))
    };
    let ports = probe_ports(model, &reps, false);
    let mut found: Vec<GuardrailOverride> = Vec::new();
    let mut at: Vec<(usize, usize, Port)> = Vec::new();
    let mut seen: BTreeSet<(usize, String, String)> = BTreeSet::new();
    for (i, from) in reps.endpoints.iter().enumerate() {
        for (j, to) in reps.endpoints.iter().enumerate() {
            if !checkable(from, to, true) {
                continue;
            }
            for p in &ports {
                let want = expected(model, &reps, from, to, *p);
                if want.flows.is_empty() {
                    continue;
                }
                let Some((cb, rule)) =
                    decide(false, from, to, to, *p).or_else(|| decide(true, to, from, to, *p))
                else {
                    continue;
                };
                for flow in want.flows {
                    if seen.insert((flow, cb.clone(), rule.clone())) {
                        at.push((i, j, *p));
                        found.push(GuardrailOverride {
                            app_network: format!("{}/{}", model.namespace, model.name),
                            flow,
                            cluster_baseline: cb.clone(),
                            rule: rule.clone(),
                            from: from.name.clone(),
                            to: to.name.clone(),
                            port: probe_number(*p),
                            protocol: p.protocol.as_str().to_string(),
                            enforced: None,
                        });
                    }
                }
            }
        }
    }
    if let Some(objects) = objects.filter(|_| !found.is_empty()) {
        let sim = reps.simulation(objects)?;
        for (o, (i, j, p)) in found.iter_mut().zip(at) {
            if let Some((a, b)) = sim.pair(i, j) {
                o.enforced = Some(!sim.scenario.allows(a, b, probe_number(p), p.protocol));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backend;
    use crate::plan::{plan, AppInput, Cluster, ClusterBaselineInput, Nothing};

    const PLATFORM: &str = r#"
namespaceSelector: {matchLabels: {tenant: a}}
guardrails:
  priority: 10
  rules:
    - {name: no-metadata, action: Deny, direction: Egress, peers: [{cidr: 169.254.169.254/32}]}
    - name: monitoring-scrapes
      action: Allow
      direction: Ingress
      peers: [{namespaceSelector: {matchLabels: {team: monitoring}}}]
    - name: not-from-tenant-b
      action: Deny
      direction: Ingress
      peers: [{namespaceSelector: {matchLabels: {tenant: b}}}]
      ports: [{port: 8080}]
"#;

    const SHOP: &str = r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}, {port: 9090}]}
flows:
  - {from: {tier: api}, to: {cidr: 169.254.169.254/32}, ports: [{port: 80}]}
  - {from: {namespaceSelector: {matchLabels: {tenant: b}}}, to: {tier: api}}
  - {from: {namespaceSelector: {matchLabels: {team: monitoring, tenant: b}}}, to: {tier: api}, ports: [{port: 8080}]}
  - {from: {tier: api}, to: {cidr: 198.51.100.0/24}, ports: [{port: 443}]}
"#;

    fn namespaces(app_ns_labels: &[(&str, &str)]) -> BTreeMap<String, Labels> {
        let labels: Labels = app_ns_labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BTreeMap::from([("shop".to_string(), labels)])
    }

    fn run(backend: Backend, app_ns_labels: &[(&str, &str)]) -> Vec<GuardrailOverride> {
        let namespaces = namespaces(app_ns_labels);
        let apps = [AppInput {
            name: "shop".into(),
            namespace: "shop".into(),
            uid: None,
            generation: Some(1),
            spec: serde_yaml::from_str(SHOP).unwrap(),
        }];
        let cbs = [ClusterBaselineInput {
            name: "platform".into(),
            uid: None,
            generation: Some(1),
            spec: serde_yaml::from_str(PLATFORM).unwrap(),
        }];
        let cluster = Cluster {
            forced_backend: Some(backend),
            operator_namespace: "tierflow-system".into(),
            ..Cluster::default()
        };
        let p = plan(&apps, &cbs, &namespaces, &cluster, &Nothing);
        let cb = &p.cluster_baselines[0];
        assert!(cb.hold.is_none(), "{backend:?}: {:?}", cb.hold);
        let model = p.apps().next().unwrap().1.model.clone().unwrap();
        let cb_model = cb.model.clone().unwrap();
        overrides(
            &model,
            &[Guarding {
                name: "platform",
                model: &cb_model,
            }],
            Known {
                namespaces: &namespaces,
                operator_namespace: "tierflow-system",
                cluster_cidrs: &[],
            },
            Some(p.objects.iter().map(|o| o.to_value()).collect()),
        )
        .unwrap()
    }

    #[test]
    fn overridden_flows_name_the_rule_and_the_rendering_denies_them() {
        for backend in [Backend::ClusterNetworkPolicy, Backend::Calico] {
            let found = run(backend, &[("tenant", "a")]);
            let got: Vec<(usize, &str, Option<bool>)> = found
                .iter()
                .map(|o| (o.flow, o.rule.as_str(), o.enforced))
                .collect();
            // Flow 2 comes from a namespace the Allow rule matches first; flow 3 goes where
            // no guardrail speaks.
            assert_eq!(
                got,
                [
                    (0, "no-metadata", Some(true)),
                    (1, "not-from-tenant-b", Some(true)),
                ],
                "{backend:?}: {found:?}"
            );
            let text = found[1].describe();
            assert!(text.starts_with("spec.flows[1] ("), "{text}");
            assert!(
                text.ends_with(
                    "on 8080/TCP) is denied by guardrail \"not-from-tenant-b\" of \
                     ClusterBaseline platform"
                ),
                "{text}"
            );
            assert_eq!(found[1].port, 8080);
        }
    }

    #[test]
    fn an_uncovered_namespace_has_no_overrides() {
        assert_eq!(run(Backend::Calico, &[("tenant", "c")]), []);
    }
}
