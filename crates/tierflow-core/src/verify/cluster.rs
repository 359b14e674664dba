//! Verification of ClusterBaselines: simulating everything the planner renders, every namespace
//! a ClusterBaseline covers must be deny-all (per its wish) with DNS egress open, and every
//! namespace it does not cover must be left alone by it.
//!
//! Each namespace of the input gets one probe pod (labels no tier selects); a probe namespace
//! that no ClusterBaseline covers holds the peer pod; DNS is the wish's DNS target (a pod with
//! its labels in its namespace, serving UDP and TCP 53); outside the cluster is 192.0.2.1
//! (TEST-NET-1). Covered: the probe's ingress from the peer pod is denied when the wish denies
//! ingress; its egress to the peer pod and to the outside address is denied, and to DNS on UDP
//! and TCP 53 allowed, when the wish denies egress.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Value};

use crate::core::Protocol;
use crate::engine::{Endpoint, Scenario};
use crate::model::Coverage;
use crate::plan::{Cluster, Labels, Plan};

/// The namespace of the peer pod (never covered: it does not exist in the input).
pub const PROBE_NAMESPACE: &str = "tierflow-verify-peer";
const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PROBE_PORT: u16 = 7;

/// One namespace a ClusterBaseline covers that does not get what it asks for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoverageProblem {
    /// The ClusterBaseline.
    pub cluster_baseline: String,
    /// The namespace.
    pub namespace: String,
    /// What is wrong, and which objects decided it.
    pub message: String,
}

fn pod(ns: &str, name: &str, labels: Value, ip: String) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"namespace": ns, "name": name, "labels": labels},
           "spec": {"containers": [{"name": "c", "ports": [
               {"containerPort": 53, "protocol": "UDP", "name": "dns"},
               {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]}]},
           "status": {"podIP": ip}})
}

/// Checks every ClusterBaseline of `plan` that is not held against every namespace of
/// `namespaces`. Empty: every covered namespace is deny-all plus DNS as asked.
pub fn cluster_baselines(
    plan: &Plan,
    namespaces: &BTreeMap<String, Labels>,
    cluster: &Cluster,
) -> Result<Vec<CoverageProblem>, crate::engine::EngineError> {
    let mut problems = Vec::new();
    for cb in plan.cluster_baselines.iter().filter(|c| c.hold.is_none()) {
        let Some(model) = &cb.model else { continue };
        let mut world: Vec<Value> = Vec::new();
        for (i, (ns, labels)) in namespaces.iter().enumerate() {
            world.push(json!({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": ns, "labels": labels}}));
            world.push(pod(
                ns,
                "probe",
                json!({"tierflow.dev/probe": "true"}),
                format!("10.250.{}.{}", i / 200, i % 200 + 1),
            ));
        }
        world.push(pod(PROBE_NAMESPACE, "peer", json!({}), "10.251.0.1".into()));
        if let Some(dns) = &model.wish.dns {
            world.push(pod(
                &dns.namespace,
                "dns",
                json!(dns.pods.example_labels()),
                "10.252.0.1".into(),
            ));
        }
        let s = Scenario::from_values(
            world
                .into_iter()
                .chain(plan.objects.iter().map(|o| o.to_value())),
        )?;
        let find = |ns: &str, name: &str| {
            s.pods()
                .iter()
                .position(|p| p.namespace == ns && p.name == name)
                .map(Endpoint::Pod)
        };
        let (Some(peer), dns) = (
            find(PROBE_NAMESPACE, "peer"),
            model
                .wish
                .dns
                .as_ref()
                .and_then(|d| find(&d.namespace, "dns")),
        ) else {
            continue;
        };
        for (ns, labels) in namespaces {
            if model.coverage(ns, labels, &cluster.operator_namespace) != Coverage::Covered {
                continue;
            }
            let Some(probe) = find(ns, "probe") else {
                continue;
            };
            let mut report = |what: &str,
                              from: Endpoint,
                              to: Endpoint,
                              port: u16,
                              proto: Protocol,
                              want: bool| {
                let v = s.check(from, to, port, proto);
                if v.allowed != want {
                    problems.push(CoverageProblem {
                        cluster_baseline: cb.name.clone(),
                        namespace: ns.clone(),
                        message: format!(
                            "{what} is {} (decided by {})",
                            if v.allowed { "allowed" } else { "denied" },
                            if v.decided_by.is_empty() {
                                "no policy".to_string()
                            } else {
                                v.decided_by.join(", ")
                            }
                        ),
                    });
                }
            };
            if model.wish.deny_ingress {
                report(
                    "ingress from another namespace's pod",
                    peer,
                    probe,
                    PROBE_PORT,
                    Protocol::Tcp,
                    false,
                );
            }
            if model.wish.deny_egress {
                report(
                    "egress to another namespace's pod",
                    probe,
                    peer,
                    PROBE_PORT,
                    Protocol::Tcp,
                    false,
                );
                report(
                    "egress outside the cluster",
                    probe,
                    Endpoint::Ip(OUTSIDE),
                    443,
                    Protocol::Tcp,
                    false,
                );
                if let Some(dns) = dns {
                    report("DNS over UDP 53", probe, dns, 53, Protocol::Udp, true);
                    report("DNS over TCP 53", probe, dns, 53, Protocol::Tcp, true);
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backend;
    use crate::plan::{plan, ClusterBaselineInput, Nothing};

    fn run(backend: Backend, yaml: &str) -> Vec<CoverageProblem> {
        let namespaces: BTreeMap<String, Labels> = ["a", "b", "legacy", "kube-system"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    BTreeMap::from([("kubernetes.io/metadata.name".to_string(), n.to_string())]),
                )
            })
            .collect();
        let cbs = [ClusterBaselineInput {
            name: "default".into(),
            uid: None,
            generation: Some(1),
            spec: serde_yaml::from_str(yaml).unwrap(),
        }];
        let cluster = Cluster {
            forced_backend: Some(backend),
            operator_namespace: "tierflow-system".into(),
            ..Cluster::default()
        };
        let p = plan(&[], &cbs, &namespaces, &cluster, &Nothing);
        cluster_baselines(&p, &namespaces, &cluster).unwrap()
    }

    #[test]
    fn every_covered_namespace_is_deny_all_plus_dns_on_every_backend() {
        for b in Backend::ALL {
            assert_eq!(run(b, "excludeNamespaces: [legacy]"), [], "{b:?}");
        }
    }

    #[test]
    fn a_broken_baseline_is_reported_per_namespace() {
        // DNS disabled: the check still passes for what the wish asks (no DNS to reach) ...
        assert_eq!(
            run(Backend::ClusterNetworkPolicy, "dns: {enabled: false}"),
            []
        );
        // ... and the probe itself is sound: with a plan whose objects are dropped, every
        // covered namespace is reported.
        let namespaces: BTreeMap<String, Labels> =
            BTreeMap::from([("a".to_string(), Labels::new())]);
        let cbs = [ClusterBaselineInput {
            name: "default".into(),
            uid: None,
            generation: Some(1),
            spec: serde_yaml::from_str("{}").unwrap(),
        }];
        let cluster = Cluster {
            forced_backend: Some(Backend::ClusterNetworkPolicy),
            ..Cluster::default()
        };
        let mut p = plan(&[], &cbs, &namespaces, &cluster, &Nothing);
        p.objects.clear();
        let problems = cluster_baselines(&p, &namespaces, &cluster).unwrap();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "ingress from another namespace's pod is allowed (decided by no policy)",
                "egress to another namespace's pod is allowed (decided by no policy)",
                "egress outside the cluster is allowed (decided by no policy)",
            ]
        );
        assert!(problems.iter().all(|p| p.namespace == "a"));
    }
}
