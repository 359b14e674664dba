//! The upstream ClusterNetworkPolicy conformance tests, transcribed to the engine.
//!
//! Source: kubernetes-sigs/network-policy-api at commit
//! 0eec1b0e5fa92715b4c0f4c48d3c8d2913ed2159 (bundle v0.2.0), Apache-2.0:
//! - `conformance/base/manifests.yaml`: the namespaces and pods ([`world`]);
//! - `conformance/base/{admin_tier,baseline_tier,api_integration}/*.yaml`: the policies, copied
//!   verbatim beside this file (`conformance-*.yaml`);
//! - `conformance/tests/*.go`: the cases, one Rust test per Go `ConformanceTest`, one block per
//!   `t.Run`, in the same order. Upstream subtests run one after the other against the same live
//!   objects, so a mutation (a swap of two rules, a new action, a new priority, a deleted
//!   NetworkPolicy) stays for the subtests after it; so it does here.
//!
//! Transcribed: `admin-network-policy-standard-egress-tcp-rules.go`,
//! `admin-network-policy-standard-ingress-tcp-rules.go`, `admin-network-policy-standard-priority.go`,
//! `admin-network-policy-standard-integration.go`,
//! `baseline-admin-network-policy-standard-egress-tcp-rules.go`. Not yet: the UDP and SCTP
//! variants, the baseline ingress rules, the combined gress rules, the inline CIDR rules, and the
//! experimental (nodes, domainNames) tests, which the engine does not simulate.
//!
//! Pods: two per house, as the StatefulSets make them (`harry-potter-0`, `-1` in gryffindor,
//! `draco-malfoy-*` in slytherin, `cedric-diggory-*` in hufflepuff, `luna-lovegood-*` in
//! ravenclaw), labelled `conformance-house: <house>`, with the named ports of the manifest
//! (`web` TCP 80, `dns` UDP 53) and made-up addresses.

use serde_json::Value;

use crate::core::Protocol;
use crate::engine::{Endpoint, Scenario};

const EGRESS_TCP: &str = include_str!("conformance-admin-tier-standard-egress-tcp-rules.yaml");
const INGRESS_TCP: &str = include_str!("conformance-admin-tier-standard-ingress-tcp-rules.yaml");
const PRIORITY: &str = include_str!("conformance-admin-tier-standard-priority-field.yaml");
const INTEGRATION: &str = include_str!("conformance-api-integration-standard-anp-np-banp.yaml");
const BASELINE_EGRESS_TCP: &str =
    include_str!("conformance-baseline-tier-standard-egress-tcp-rules.yaml");

const HOUSES: [(&str, &str); 4] = [
    ("gryffindor", "harry-potter"),
    ("slytherin", "draco-malfoy"),
    ("hufflepuff", "cedric-diggory"),
    ("ravenclaw", "luna-lovegood"),
];

/// The namespaces and pods of `conformance/base/manifests.yaml`.
fn world() -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (house, sts)) in HOUSES.iter().enumerate() {
        let ns = format!("network-policy-conformance-{house}");
        out.push(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"conformance-house": house}}
        }));
        for ordinal in 0..2 {
            out.push(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"namespace": ns, "name": format!("{sts}-{ordinal}"),
                             "labels": {"conformance-house": house}},
                "spec": {"containers": [
                    {"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "web"}]},
                    {"name": "dns", "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"}]}
                ]},
                "status": {"podIP": format!("10.244.{}.{}", i + 1, 10 + ordinal)}
            }));
        }
    }
    out
}

/// The live objects of one conformance test.
struct Live {
    policies: Vec<Value>,
}

impl Live {
    fn new(manifest: &str) -> Self {
        let policies = serde_yaml::Deserializer::from_str(manifest)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect();
        Live { policies }
    }

    fn object(&mut self, kind: &str, name: &str) -> &mut Value {
        self.policies
            .iter_mut()
            .find(|p| p["kind"] == kind && p["metadata"]["name"] == name)
            .unwrap()
    }

    /// `kubernetes.GetClusterNetworkPolicy` + `PatchClusterNetworkPolicy`.
    fn cnp(&mut self, name: &str) -> &mut Value {
        self.object("ClusterNetworkPolicy", name)
    }

    fn swap(&mut self, cnp: &str, dir: &str, a: usize, b: usize) {
        self.cnp(cnp)["spec"][dir]
            .as_array_mut()
            .unwrap()
            .swap(a, b);
    }

    fn delete(&mut self, kind: &str, name: &str) {
        self.policies
            .retain(|p| !(p["kind"] == kind && p["metadata"]["name"] == name));
    }

    fn scenario(&self) -> Scenario {
        Scenario::from_values(world().into_iter().chain(self.policies.iter().cloned())).unwrap()
    }

    /// `kubernetes.PokeServer(client namespace, client pod, protocol, server IP, port, expect)`:
    /// from the client pod to the server pod's address.
    fn poke(&self, client: &str, server: &str, protocol: &str, port: u16, expect: bool) {
        let s = self.scenario();
        let pod = |name: &str| s.pods().iter().position(|p| p.name == name).unwrap();
        let server_ip = s.pods()[pod(server)].ip.unwrap();
        let proto = Protocol::parse(protocol).unwrap();
        let v = s.check(
            Endpoint::Pod(pod(client)),
            Endpoint::Ip(server_ip),
            port,
            proto,
        );
        assert_eq!(
            v.allowed,
            expect,
            "{client} -> {server} {protocol}/{port}: expected {}, decided by {:?}: {:?}",
            if expect { "allowed" } else { "denied" },
            v.decided_by,
            s.explain(
                Endpoint::Pod(pod(client)),
                Endpoint::Ip(server_ip),
                port,
                proto
            ),
        );
    }
}

/// `CNPAdminTierEgressTCP` (admin-network-policy-standard-egress-tcp-rules.go).
#[test]
fn cnp_admin_tier_egress_tcp() {
    let mut live = Live::new(EGRESS_TCP);
    // Should support an 'allow-egress' policy for TCP protocol; ensure rule ordering is respected
    live.poke("harry-potter-0", "luna-lovegood-0", "tcp", 80, true);
    live.poke("harry-potter-1", "luna-lovegood-0", "tcp", 8080, true);
    // Should support an 'allow-egress' policy for TCP protocol at the specified port
    live.poke("harry-potter-0", "cedric-diggory-1", "tcp", 8080, true);
    live.poke("harry-potter-1", "cedric-diggory-1", "tcp", 80, false);
    // Should support an 'deny-egress' policy for TCP protocol; ensure rule ordering is respected
    live.swap("egress-tcp", "egress", 0, 1);
    live.poke("harry-potter-0", "luna-lovegood-1", "tcp", 80, false);
    live.poke("harry-potter-1", "luna-lovegood-1", "tcp", 8080, false);
    // Should support a 'deny-egress' policy for TCP protocol at the specified port
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, true);
    // Should support an 'pass-egress' policy for TCP protocol; ensure rule ordering is respected
    live.swap("egress-tcp", "egress", 0, 2);
    live.poke("harry-potter-0", "luna-lovegood-0", "tcp", 80, true);
    live.poke("harry-potter-1", "luna-lovegood-0", "tcp", 8080, true);
    // Should support a 'pass-egress' policy for TCP protocol at the specified port
    live.swap("egress-tcp", "egress", 3, 4);
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, true);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, true);
}

/// `CNPAdminTierIngressTCP` (admin-network-policy-standard-ingress-tcp-rules.go).
#[test]
fn cnp_admin_tier_ingress_tcp() {
    let mut live = Live::new(INGRESS_TCP);
    // Should support an 'allow-ingress' policy for TCP protocol; ensure rule ordering is respected
    live.poke("luna-lovegood-0", "harry-potter-0", "tcp", 80, true);
    live.poke("luna-lovegood-1", "harry-potter-0", "tcp", 8080, true);
    // Should support an 'allow-ingress' policy for TCP protocol at the specified port
    live.poke("cedric-diggory-0", "harry-potter-1", "tcp", 80, true);
    live.poke("cedric-diggory-1", "harry-potter-1", "tcp", 8080, false);
    // Should support an 'deny-ingress' policy for TCP protocol; ensure rule ordering is respected
    live.swap("ingress-tcp", "ingress", 0, 1);
    live.poke("luna-lovegood-0", "harry-potter-1", "tcp", 80, false);
    live.poke("luna-lovegood-1", "harry-potter-1", "tcp", 8080, false);
    // Should support a 'deny-ingress' policy for TCP protocol at the specified port
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, false);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, true);
    // Should support an 'pass-ingress' policy for TCP protocol; ensure rule ordering is respected
    live.swap("ingress-tcp", "ingress", 0, 2);
    live.poke("luna-lovegood-0", "harry-potter-0", "tcp", 80, true);
    live.poke("luna-lovegood-1", "harry-potter-0", "tcp", 8080, true);
    // Should support a 'pass-ingress' policy for TCP protocol at the specified port
    live.swap("ingress-tcp", "ingress", 3, 4);
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, true);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, true);
}

/// `CNPAdminTierPriorityField` (admin-network-policy-standard-priority.go).
#[test]
fn cnp_admin_tier_priority_field() {
    let mut live = Live::new(PRIORITY);
    // Should Deny traffic from slytherin to gryffindor respecting admin CNP
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, false);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, false);
    // Should Deny traffic to slytherin from gryffindor respecting admin CNP
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, false);
    // Should respect admin CNP priority field; thus passing both ingress and egress traffic
    // over to baseline CNP
    live.cnp("old-priority-60-new-priority-40-example")["spec"]["priority"] = 40.into();
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, true);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, true);
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, true);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, true);
}

/// `CNPAdminTierIntegration` (admin-network-policy-standard-integration.go): Admin, then
/// NetworkPolicy, then Baseline.
#[test]
fn cnp_admin_tier_integration() {
    let mut live = Live::new(INTEGRATION);
    // Should Deny traffic from slytherin to gryffindor respecting admin CNP
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, false);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, false);
    // Should Deny traffic to slytherin from gryffindor respecting admin CNP
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, false);
    // Should support a 'pass-ingress' policy for admin CNP and respect the match for network
    // policy
    live.cnp("pass-example")["spec"]["ingress"][0]["action"] = "Pass".into();
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, true);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, true);
    // Should support a 'pass-egress' policy for admin CNP and respect the match for network
    // policy
    live.cnp("pass-example")["spec"]["egress"][0]["action"] = "Pass".into();
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, true);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, true);
    // Should support a 'pass-ingress' policy for admin CNP and respect the match for baseline
    // cluster network policy
    live.delete(
        "NetworkPolicy",
        "allow-gress-from-to-slytherin-to-gryffindor",
    );
    live.poke("draco-malfoy-0", "harry-potter-0", "tcp", 80, false);
    live.poke("draco-malfoy-1", "harry-potter-0", "tcp", 8080, false);
    // Should support a 'pass-egress' policy for admin CNP and respect the match for baseline
    // cluster network policy
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, false);
}

/// `CNPBaselineTierEgressTCP` (baseline-admin-network-policy-standard-egress-tcp-rules.go).
#[test]
fn cnp_baseline_tier_egress_tcp() {
    let mut live = Live::new(BASELINE_EGRESS_TCP);
    // Should support an 'allow-egress' policy for TCP protocol; ensure rule ordering is respected
    live.poke("harry-potter-0", "luna-lovegood-0", "tcp", 80, true);
    live.poke("harry-potter-1", "luna-lovegood-0", "tcp", 8080, true);
    // Should support an 'allow-egress' policy for TCP protocol at the specified port
    live.poke("harry-potter-0", "cedric-diggory-1", "tcp", 8080, true);
    live.poke("harry-potter-1", "cedric-diggory-1", "tcp", 80, false);
    // Should support an 'deny-egress' policy for TCP protocol; ensure rule ordering is respected
    live.swap("default", "egress", 0, 1);
    live.poke("harry-potter-0", "luna-lovegood-1", "tcp", 80, false);
    live.poke("harry-potter-1", "luna-lovegood-1", "tcp", 8080, false);
    // Should support a 'deny-egress' policy for TCP protocol at the specified port
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    live.poke("harry-potter-1", "draco-malfoy-0", "tcp", 8080, true);
}

/// Not upstream: the verdict names the deciding object and rule.
#[test]
fn the_verdict_names_the_deciding_policy_and_rule() {
    let live = Live::new(EGRESS_TCP);
    let s = live.scenario();
    let pod = |name: &str| s.pods().iter().position(|p| p.name == name).unwrap();
    let from = Endpoint::Pod(pod("harry-potter-0"));
    let to = Endpoint::Pod(pod("draco-malfoy-0"));
    let v = s.check(from, to, 80, Protocol::Tcp);
    assert!(!v.allowed);
    assert_eq!(v.decided_by, ["egress-tcp"]);
    assert_eq!(
        v.policies[0].kind,
        "policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy"
    );
    let rules = s.explain(from, to, 80, Protocol::Tcp);
    assert_eq!(
        rules[0].field.as_deref(),
        Some("spec.egress[3] (deny-to-slytherin-at-port-80)")
    );
}

/// Not upstream: an egress Accept does not open the destination's ingress, and `nodes` /
/// `domainNames` peers are listed as not simulated and never match.
#[test]
fn egress_accept_does_not_open_ingress_and_unsimulated_peers_are_listed() {
    let docs = r#"
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: out}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {conformance-house: gryffindor}}}
  egress:
  - {action: Accept, to: [{namespaces: {matchLabels: {conformance-house: slytherin}}}]}
  - {action: Accept, to: [{domainNames: ["*.example.com"]}, {nodes: {}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: in}
spec:
  tier: Admin
  priority: 2
  subject: {namespaces: {matchLabels: {conformance-house: slytherin}}}
  ingress:
  - {action: Deny, from: [{namespaces: {matchLabels: {conformance-house: gryffindor}}}]}
"#;
    let live = Live::new(docs);
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    let s = live.scenario();
    assert_eq!(
        s.unsimulated(),
        ["out: spec.egress[1].to[0]", "out: spec.egress[1].to[1]"]
    );
}
