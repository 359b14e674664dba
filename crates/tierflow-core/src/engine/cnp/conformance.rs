//! The upstream ClusterNetworkPolicy conformance tests, as engine tests.
//!
//! Transcribed from kubernetes-sigs/network-policy-api at commit
//! 0eec1b0e5fa92715b4c0f4c48d3c8d2913ed2159 (bundle v0.2.0). Nothing of it is copied: each
//! upstream policy is rebuilt here with the small builders below (same names, tiers,
//! priorities, subjects, rule names, actions, peers and ports), and each Go `ConformanceTest`
//! becomes one Rust test with one block per `t.Run`, in the same order:
//!
//! | test here | upstream case (`conformance/tests/`) | upstream policies (`conformance/base/`) |
//! |---|---|---|
//! | [`cnp_admin_tier_egress_tcp`] | `admin-network-policy-standard-egress-tcp-rules.go` | `admin_tier/standard-egress-tcp-rules.yaml` |
//! | [`cnp_admin_tier_ingress_tcp`] | `admin-network-policy-standard-ingress-tcp-rules.go` | `admin_tier/standard-ingress-tcp-rules.yaml` |
//! | [`cnp_admin_tier_priority_field`] | `admin-network-policy-standard-priority.go` | `admin_tier/standard-priority-field.yaml` |
//! | [`cnp_admin_tier_integration`] | `admin-network-policy-standard-integration.go` | `api_integration/standard-anp-np-banp.yaml` |
//! | [`cnp_baseline_tier_egress_tcp`] | `baseline-admin-network-policy-standard-egress-tcp-rules.go` | `baseline_tier/standard-egress-tcp-rules.yaml` |
//!
//! The namespaces and pods are those of `conformance/base/manifests.yaml` ([`world`]).
//! Upstream subtests run one after the other against the same live objects, so a mutation (a
//! swap of two rules, a new action, a new priority, a deleted NetworkPolicy) stays for the
//! subtests after it; so it does here.
//!
//! Not yet transcribed: the UDP and SCTP variants, the baseline ingress rules, the combined
//! gress rules, the inline CIDR rules, and the experimental (nodes, domainNames) tests, which
//! the engine does not simulate.
//!
//! Pods: two per house, as the StatefulSets make them (`harry-potter-0`, `-1` in gryffindor,
//! `draco-malfoy-*` in slytherin, `cedric-diggory-*` in hufflepuff, `luna-lovegood-*` in
//! ravenclaw), labelled `conformance-house: <house>`, with the named ports of the manifest
//! (`web` TCP 80, `dns` UDP 53) and made-up addresses.

use serde_json::{json, Value};

use crate::core::Protocol;
use crate::engine::{Endpoint, Scenario};

const HOUSES: [(&str, &str); 4] = [
    ("gryffindor", "harry-potter"),
    ("slytherin", "draco-malfoy"),
    ("hufflepuff", "cedric-diggory"),
    ("ravenclaw", "luna-lovegood"),
];

fn namespace_of(house: &str) -> String {
    format!("network-policy-conformance-{house}")
}

/// The namespaces and pods of the upstream base manifests.
fn world() -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (house, sts)) in HOUSES.iter().enumerate() {
        let ns = namespace_of(house);
        out.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"conformance-house": house}}
        }));
        for ordinal in 0..2 {
            out.push(json!({
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

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Action {
    Accept,
    Deny,
    Pass,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "Accept",
            Action::Deny => "Deny",
            Action::Pass => "Pass",
        }
    }
}
use Action::{Accept, Deny, Pass};

/// A ClusterNetworkPolicy under construction.
struct Cnp(Value);

fn cnp(name: &str, tier: &str, priority: u32) -> Cnp {
    Cnp(json!({
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"tier": tier, "priority": priority},
    }))
}

fn admin(name: &str, priority: u32) -> Cnp {
    cnp(name, "Admin", priority)
}

fn baseline(name: &str, priority: u32) -> Cnp {
    cnp(name, "Baseline", priority)
}

/// A selector on the house's namespace name.
fn named(house: &str) -> Value {
    json!({"matchLabels": {"kubernetes.io/metadata.name": namespace_of(house)}})
}

/// A selector on the `conformance-house` label.
fn house(house: &str) -> Value {
    json!({"matchLabels": {"conformance-house": house}})
}

/// A `namespaces` peer.
fn to_ns(selector: Value) -> Value {
    json!({"namespaces": selector})
}

/// A `pods` peer: the house's pods in the house's namespaces.
fn to_pods(h: &str) -> Value {
    json!({"pods": {"namespaceSelector": house(h), "podSelector": house(h)}})
}

/// `protocols` of one TCP port.
fn tcp(port: u16) -> Option<Value> {
    Some(json!([{"tcp": {"destinationPort": {"number": port}}}]))
}

/// Every port.
const ALL_PORTS: Option<Value> = None;

impl Cnp {
    fn subject_namespaces(mut self, selector: Value) -> Self {
        self.0["spec"]["subject"] = json!({"namespaces": selector});
        self
    }

    fn subject_pods(mut self, h: &str) -> Self {
        self.0["spec"]["subject"] = to_pods(h);
        self
    }

    fn rule(
        mut self,
        dir: &str,
        name: &str,
        action: Action,
        peer: Value,
        ports: Option<Value>,
    ) -> Self {
        let peers = if dir == "ingress" { "from" } else { "to" };
        let mut rule = json!({"action": action.as_str(), peers: [peer]});
        if !name.is_empty() {
            rule["name"] = name.into();
        }
        if let Some(p) = ports {
            rule["protocols"] = p;
        }
        let list = &mut self.0["spec"][dir];
        if list.is_null() {
            *list = json!([]);
        }
        list.as_array_mut().unwrap().push(rule);
        self
    }

    fn ingress(self, name: &str, action: Action, from: Value, ports: Option<Value>) -> Self {
        self.rule("ingress", name, action, from, ports)
    }

    fn egress(self, name: &str, action: Action, to: Value, ports: Option<Value>) -> Self {
        self.rule("egress", name, action, to, ports)
    }
}

/// A NetworkPolicy selecting every pod of the house's namespace, allowing both directions
/// with the houses matching `peer`.
fn np_both_ways(name: &str, h: &str, peer: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace_of(h)},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"namespaceSelector": house(peer)}]}],
            "egress": [{"to": [{"namespaceSelector": house(peer)}]}],
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The upstream policies, rebuilt
// ---------------------------------------------------------------------------------------------

/// `admin_tier/standard-egress-tcp-rules.yaml`.
fn admin_egress_tcp() -> Vec<Value> {
    let p = admin("egress-tcp", 6)
        .subject_namespaces(named("gryffindor"))
        .egress(
            "allow-to-ravenclaw-everything",
            Accept,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .egress(
            "deny-to-ravenclaw-everything",
            Deny,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .egress(
            "pass-to-ravenclaw-everything",
            Pass,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .egress(
            "deny-to-slytherin-at-port-80",
            Deny,
            to_ns(named("slytherin")),
            tcp(80),
        )
        .egress(
            "pass-to-slytherin-at-port-80",
            Pass,
            to_ns(named("slytherin")),
            tcp(80),
        )
        .egress(
            "allow-to-hufflepuff-at-port-8080",
            Accept,
            to_ns(named("hufflepuff")),
            tcp(8080),
        )
        .egress(
            "deny-to-hufflepuff-everything-else",
            Deny,
            to_ns(named("hufflepuff")),
            ALL_PORTS,
        );
    vec![p.0]
}

/// `admin_tier/standard-ingress-tcp-rules.yaml`.
fn admin_ingress_tcp() -> Vec<Value> {
    let p = admin("ingress-tcp", 3)
        .subject_namespaces(named("gryffindor"))
        .ingress(
            "allow-from-ravenclaw-everything",
            Accept,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .ingress(
            "deny-from-ravenclaw-everything",
            Deny,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .ingress(
            "pass-from-ravenclaw-everything",
            Pass,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .ingress(
            "deny-from-slytherin-at-port-80",
            Deny,
            to_ns(named("slytherin")),
            tcp(80),
        )
        .ingress(
            "pass-from-slytherin-at-port-80",
            Pass,
            to_ns(named("slytherin")),
            tcp(80),
        )
        .ingress(
            "allow-from-hufflepuff-at-port-80",
            Accept,
            to_ns(named("hufflepuff")),
            tcp(80),
        )
        .ingress(
            "deny-from-hufflepuff-everything-else",
            Deny,
            to_ns(named("hufflepuff")),
            ALL_PORTS,
        );
    vec![p.0]
}

/// `admin_tier/standard-priority-field.yaml`.
fn admin_priority_field() -> Vec<Value> {
    vec![
        admin("priority-50-example", 50)
            .subject_pods("gryffindor")
            .ingress(
                "deny-all-ingress-from-slytherin",
                Deny,
                to_pods("slytherin"),
                ALL_PORTS,
            )
            .egress(
                "deny-all-egress-to-slytherin",
                Deny,
                to_pods("slytherin"),
                ALL_PORTS,
            )
            .0,
        admin("old-priority-60-new-priority-40-example", 60)
            .subject_pods("gryffindor")
            .ingress(
                "pass-all-ingress-from-slytherin",
                Pass,
                to_pods("slytherin"),
                ALL_PORTS,
            )
            .egress(
                "pass-all-egress-to-slytherin",
                Pass,
                to_pods("slytherin"),
                ALL_PORTS,
            )
            .0,
        baseline("default", 10)
            .subject_pods("gryffindor")
            .ingress(
                "allow-all-ingress-from-slytherin",
                Accept,
                to_pods("slytherin"),
                ALL_PORTS,
            )
            .egress(
                "allow-all-egress-to-slytherin",
                Accept,
                to_pods("slytherin"),
                ALL_PORTS,
            )
            .0,
    ]
}

/// `api_integration/standard-anp-np-banp.yaml`.
fn api_integration() -> Vec<Value> {
    vec![
        admin("pass-example", 10)
            .subject_namespaces(house("gryffindor"))
            .ingress(
                "deny-all-ingress-from-slytherin",
                Deny,
                to_ns(house("slytherin")),
                ALL_PORTS,
            )
            .egress(
                "deny-all-egress-to-slytherin",
                Deny,
                to_ns(house("slytherin")),
                ALL_PORTS,
            )
            .0,
        np_both_ways(
            "allow-gress-from-to-slytherin-to-gryffindor",
            "gryffindor",
            "slytherin",
        ),
        baseline("default", 10)
            .subject_namespaces(house("gryffindor"))
            .ingress(
                "deny-all-ingress-from-slytherin",
                Deny,
                to_ns(house("slytherin")),
                ALL_PORTS,
            )
            .egress(
                "deny-all-egress-to-slytherin",
                Deny,
                to_ns(house("slytherin")),
                ALL_PORTS,
            )
            .0,
    ]
}

/// `baseline_tier/standard-egress-tcp-rules.yaml`.
fn baseline_egress_tcp() -> Vec<Value> {
    let p = baseline("default", 10)
        .subject_namespaces(named("gryffindor"))
        .egress(
            "allow-to-ravenclaw-everything",
            Accept,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .egress(
            "deny-to-ravenclaw-everything",
            Deny,
            to_ns(named("ravenclaw")),
            ALL_PORTS,
        )
        .egress(
            "deny-to-slytherin-at-port-80",
            Deny,
            to_ns(named("slytherin")),
            tcp(80),
        )
        .egress(
            "allow-to-hufflepuff-at-port-8080",
            Accept,
            to_ns(named("hufflepuff")),
            tcp(8080),
        )
        .egress(
            "deny-to-hufflepuff-everything-else",
            Deny,
            to_ns(named("hufflepuff")),
            ALL_PORTS,
        );
    vec![p.0]
}

// ---------------------------------------------------------------------------------------------
// The live objects of one test
// ---------------------------------------------------------------------------------------------

struct Live {
    policies: Vec<Value>,
}

impl Live {
    fn new(policies: Vec<Value>) -> Self {
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
        let server_ip = s.pods()[pod(server)].ip().unwrap();
        let proto = Protocol::parse(protocol).unwrap();
        let (from, to) = (Endpoint::Pod(pod(client)), Endpoint::Ip(server_ip));
        let v = s.check(from, to, port, proto);
        assert_eq!(
            v.allowed,
            expect,
            "{client} -> {server} {protocol}/{port}: expected {}, decided by {:?}: {:?}",
            if expect { "allowed" } else { "denied" },
            v.decided_by,
            s.explain(from, to, port, proto),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// `CNPAdminTierEgressTCP`.
#[test]
fn cnp_admin_tier_egress_tcp() {
    let mut live = Live::new(admin_egress_tcp());
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

/// `CNPAdminTierIngressTCP`.
#[test]
fn cnp_admin_tier_ingress_tcp() {
    let mut live = Live::new(admin_ingress_tcp());
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

/// `CNPAdminTierPriorityField`.
#[test]
fn cnp_admin_tier_priority_field() {
    let mut live = Live::new(admin_priority_field());
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

/// `CNPAdminTierIntegration`: Admin, then NetworkPolicy, then Baseline.
#[test]
fn cnp_admin_tier_integration() {
    let mut live = Live::new(api_integration());
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

/// `CNPBaselineTierEgressTCP`.
#[test]
fn cnp_baseline_tier_egress_tcp() {
    let mut live = Live::new(baseline_egress_tcp());
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
    let s = Live::new(admin_egress_tcp()).scenario();
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
    let mut out = admin("out", 1)
        .subject_namespaces(house("gryffindor"))
        .egress("", Accept, to_ns(house("slytherin")), ALL_PORTS)
        .0;
    out["spec"]["egress"].as_array_mut().unwrap().push(
        json!({"action": "Accept", "to": [{"domainNames": ["*.example.com"]}, {"nodes": {}}]}),
    );
    let into = admin("in", 2)
        .subject_namespaces(house("slytherin"))
        .ingress("", Deny, to_ns(house("gryffindor")), ALL_PORTS)
        .0;
    let live = Live::new(vec![out, into]);
    live.poke("harry-potter-0", "draco-malfoy-0", "tcp", 80, false);
    assert_eq!(
        live.scenario().unsimulated(),
        ["out: spec.egress[1].to[0]", "out: spec.egress[1].to[1]"]
    );
}

/// The builders write what the upstream manifests spell: one policy, checked field by field.
#[test]
fn the_builders_write_the_upstream_shape() {
    let p = &admin_priority_field()[0];
    assert_eq!(p["spec"]["tier"], "Admin");
    assert_eq!(p["spec"]["priority"], 50);
    assert_eq!(
        p["spec"]["subject"]["pods"]["namespaceSelector"]["matchLabels"]["conformance-house"],
        "gryffindor"
    );
    assert_eq!(
        p["spec"]["ingress"][0]["from"][0]["pods"]["podSelector"],
        house("slytherin")
    );
    let e = &admin_egress_tcp()[0]["spec"]["egress"];
    assert_eq!(e.as_array().map(Vec::len), Some(7));
    assert_eq!(
        e[5]["protocols"][0]["tcp"]["destinationPort"]["number"],
        8080
    );
}
