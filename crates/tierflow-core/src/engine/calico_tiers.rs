//! Calico tiers: `Tier` objects (`order`, `defaultAction`), Pass to the next tier, the end of a
//! tier, Kubernetes NetworkPolicies in the `default` tier, the profile after the last tier;
//! tie-breaking of equal orders and named ports without a protocol over the supported
//! releases.
//!
//! The first tests transcribe projectcalico/calico `felix/fv/tiered_policy_test.go` @ 87c15906
//! ("connectivity tests and flow logs with policy tiers", `testSetup`,
//! `createBaseConnectivityChecker` and "with multiple tiers and policies"): the same tiers,
//! policies (staged ones included: they are read and never enforced) and expectations, on
//! pods labelled `name: <workload>` in namespace `default` on port 8055. The service case
//! (ep1-1 to a ClusterIP of ep2-1) is checked as ep1-1 to ep2-1.

use super::tests::{docs, expect, explain, labels, pod, verdict};
use super::*;

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;
const PORT: u16 = 8055;

/// The policies of `testSetup`, with tier1's `defaultAction` as given.
fn upstream_policies(tier1_default: &str) -> String {
    format!(
        "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: tier1}}
spec: {{order: 1{tier1_default}}}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: tier2}}
spec: {{order: 2, defaultAction: Deny}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: default.ep1-1-allow-all}}
spec:
  order: 1
  tier: default
  selector: name == 'ep1-1'
  types: [Ingress, Egress]
  egress: [{{action: Allow}}]
  ingress: [{{action: Allow}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: tier1.ep2-4}}
spec:
  order: 1
  tier: tier1
  selector: name == 'ep2-4'
  types: [Ingress, Egress]
  ingress: [{{action: Allow, source: {{selector: name == 'ep2-1'}}}}]
  egress: [{{action: Allow, destination: {{selector: name == 'ep2-1'}}}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: tier1.np1-1, namespace: default}}
spec:
  order: 1
  tier: tier1
  selector: name in {{'ep2-1', 'ep2-2'}}
  types: [Ingress, Egress]
  egress:
    - {{action: Pass, source: {{selector: name == 'ep2-1'}}}}
    - {{action: Deny, source: {{selector: name == 'ep2-2'}}}}
  ingress:
    - {{action: Allow, destination: {{selector: name == 'ep2-1'}}}}
    - {{action: Pass, destination: {{selector: name == 'ep2-2'}}}}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {{name: tier2.np2-1, namespace: default}}
spec:
  order: 1
  tier: tier2
  selector: name == 'ep2-1'
  types: [Egress]
  egress: [{{action: Allow}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: tier2.gnp2-2}}
spec:
  order: 2
  tier: tier2
  selector: name == 'ep2-3'
  types: [Egress]
  egress: [{{action: Deny}}]
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {{name: tier2.gnp2-2}}
spec:
  order: 2
  tier: tier2
  selector: name == 'ep2-3'
  types: [Ingress]
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {{name: tier2.np2-3, namespace: default}}
spec:
  order: 3
  tier: tier2
  selector: name in {{'ep2-2', 'ep2-3'}}
  types: [Ingress]
  ingress:
    - {{action: Allow, destination: {{selector: name == 'ep2-2'}}}}
    - {{action: Deny, destination: {{selector: name == 'ep2-3'}}}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: tier2.np2-4, namespace: default}}
spec:
  order: 3
  tier: tier2
  selector: name == 'ep2-3'
  types: [Ingress]
  ingress: [{{action: Deny}}]
---
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {{name: knp3-1, namespace: default}}
spec:
  podSelector: {{matchLabels: {{name: ep2-1}}}}
  policyTypes: [Egress]
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {{name: default.np3-2, namespace: default}}
spec:
  order: 1
  tier: default
  selector: name == 'ep2-2'
  types: [Ingress]
  ingress: [{{action: Allow}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: default.np3-3, namespace: default}}
spec:
  order: 2
  tier: default
  selector: name == 'ep2-2'
  types: [Ingress]
  ingress: [{{action: Allow}}]
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {{name: default.np3-4, namespace: default}}
spec:
  order: 3
  tier: default
  selector: name == 'ep2-2'
  types: [Ingress]
  ingress: [{{action: Allow}}]
"
    )
}

/// The workloads of `testSetup`: `name: <workload>` in namespace `default`, port 8055.
fn workloads(policies: &str) -> Scenario {
    let mut s = Scenario::from_values(docs(policies)).unwrap();
    s.add_namespace("default", BTreeMap::new());
    for (name, ip) in [
        ("ep1-1", "10.65.0.0"),
        ("ep2-1", "10.65.1.0"),
        ("ep2-2", "10.65.1.1"),
        ("ep2-3", "10.65.1.2"),
        ("ep2-4", "10.65.1.3"),
    ] {
        s.add_pod(pod("default", name, &[("name", name)], ip, &[]));
    }
    s
}

/// `createBaseConnectivityChecker`: the same with either default action of tier1.
const BASE: [(&str, &str, u16, Protocol, bool); 6] = [
    // "allowed by np1-1" (through the service)
    ("default/ep1-1", "default/ep2-1", PORT, TCP, true),
    // "allowed by np3-3": np1-1 passes ep2-2's ingress to tier2 (only staged policies there),
    // then the default tier allows
    ("default/ep1-1", "default/ep2-2", PORT, TCP, true),
    // "denied by np2-4"
    ("default/ep1-1", "default/ep2-3", PORT, TCP, false),
    // "allowed by profile": np1-1 passes ep2-1's egress; no enforced policy after it
    ("default/ep2-1", "default/ep1-1", PORT, TCP, true),
    // "denied by np1-1"
    ("default/ep2-2", "default/ep1-1", PORT, TCP, false),
    // "denied by gnp2-2"
    ("default/ep2-3", "default/ep1-1", PORT, TCP, false),
];

#[test]
fn upstream_tiered_policy_connectivity_with_the_end_of_tier_deny() {
    let s = workloads(&upstream_policies(""));
    assert_eq!(s.mode(), Mode::Calico);
    expect(&s, &BASE);
    expect(
        &s,
        &[
            // "denied by end of tier1 deny"
            ("default/ep1-1", "default/ep2-4", PORT, TCP, false),
            ("default/ep2-4", "default/ep1-1", PORT, TCP, false),
        ],
    );
    let v = verdict(&s, "default/ep1-1", "default/ep2-4", PORT, TCP);
    assert_eq!(v.decided_by, vec!["tier1.ep2-4"]);
    assert_eq!(
        explain(&s, "default/ep1-1", "default/ep2-4", PORT, TCP)[0].effect,
        Effect::DefaultDeny
    );
    assert_eq!(
        verdict(&s, "default/ep2-3", "default/ep1-1", PORT, TCP).decided_by,
        vec!["tier2.gnp2-2"]
    );
}

#[test]
fn upstream_tiered_policy_connectivity_with_tier1_passing_at_its_end() {
    let s = workloads(&upstream_policies(", defaultAction: Pass"));
    expect(&s, &BASE);
    expect(
        &s,
        &[
            // "allowed by profile, as tier1 DefaultAction is set to Pass"
            ("default/ep1-1", "default/ep2-4", PORT, TCP, true),
            ("default/ep2-4", "default/ep1-1", PORT, TCP, true),
        ],
    );
}

/// Namespaces prod and monitoring; prod/web, prod/api (http 8080/TCP, dns 53/UDP),
/// monitoring/prom.
fn shop(policies: &str) -> Scenario {
    let mut s = Scenario::from_values(docs(policies)).unwrap();
    s.add_namespace("prod", labels(&[("env", "prod")]));
    s.add_namespace("monitoring", labels(&[("team", "obs")]));
    s.add_pod(pod("prod", "web", &[("app", "web")], "10.0.1.1", &[]));
    s.add_pod(pod(
        "prod",
        "api",
        &[("app", "api")],
        "10.0.1.2",
        &[("http", 8080, TCP), ("dns", 53, UDP)],
    ));
    s.add_pod(pod(
        "monitoring",
        "prom",
        &[("app", "prometheus")],
        "10.0.3.1",
        &[],
    ));
    s
}

const SECURITY_PASSES_MONITORING: &str = "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.pass-monitoring}
spec:
  tier: security
  selector: all()
  types: [Ingress]
  ingress:
    - {action: Pass, source: {namespaceSelector: team == 'obs'}}
    - {action: Allow}
";

#[test]
fn a_pass_in_a_higher_tier_goes_to_the_kubernetes_policies_of_the_default_tier() {
    // Calico's docs (Tier: "Pass ... skips to the next tier"); Kubernetes NetworkPolicies are
    // in the default tier (`knp.default.*`, order 1000), whose end denies what they do not
    // allow: prom is passed by `security`, then denied at the end of the default tier.
    let s = shop(&format!(
        "{SECURITY_PASSES_MONITORING}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: api, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{app: api}}}}
  ingress: [{{from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]}}]
"
    ));
    expect(
        &s,
        &[
            ("monitoring/prom", "prod/api", 8080, TCP, false),
            // security allows everyone else at once, before the default tier
            ("prod/web", "prod/api", 8080, TCP, true),
        ],
    );
    let v = verdict(&s, "monitoring/prom", "prod/api", 8080, TCP);
    assert_eq!(v.decided_by, vec!["prod/api"]);
}

#[test]
fn a_pass_reaches_the_profile_when_no_later_tier_selects_the_endpoint() {
    // prod/web has no policy after `security`: the Kubernetes profile allows.
    let s = shop(SECURITY_PASSES_MONITORING);
    expect(
        &s,
        &[
            ("monitoring/prom", "prod/web", 80, TCP, true),
            ("monitoring/prom", "prod/api", 8080, TCP, true),
        ],
    );
    let v = verdict(&s, "monitoring/prom", "prod/web", 80, TCP);
    assert_eq!(v.decided_by, vec!["security.pass-monitoring"]);
}

#[test]
fn tiers_run_by_order_then_name_without_order_last_and_unknown_tiers_after_those() {
    // Each tier denies or allows prom -> api; the first tier in Calico's order decides.
    let tiered = |tier: &str, action: &str| {
        format!(
            "---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: {tier}.p}}
spec:
  tier: {tier}
  selector: app == 'api'
  ingress: [{{action: {action}, source: {{selector: app == 'prometheus'}}}}, {{action: Pass}}]
"
        )
    };
    let tier = |name: &str, order: &str| {
        format!(
            "---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: {name}}}
spec: {{{order}}}
"
        )
    };
    let cases: &[(&str, bool)] = &[
        // `a` (order 10) before `b` (order 20)
        (
            &[
                tier("a", "order: 10"),
                tier("b", "order: 20"),
                tiered("a", "Allow"),
                tiered("b", "Deny"),
            ]
            .concat(),
            true,
        ),
        // equal orders: by name
        (
            &[
                tier("b", "order: 5"),
                tier("a", "order: 5"),
                tiered("b", "Deny"),
                tiered("a", "Allow"),
            ]
            .concat(),
            true,
        ),
        // a tier without order comes after the default tier (1,000,000)
        (
            &[
                tier("z", ""),
                tiered("z", "Allow"),
                tiered("default", "Deny"),
            ]
            .concat(),
            false,
        ),
        // a tier with order 2,000,000 too
        (
            &[
                tier("late", "order: 2000000"),
                tiered("late", "Allow"),
                tiered("default", "Deny"),
            ]
            .concat(),
            false,
        ),
        // a policy whose tier has no Tier object in the input: after every known tier
        (
            &[
                tier("known", ""),
                tiered("known", "Deny"),
                tiered("ghost", "Allow"),
            ]
            .concat(),
            false,
        ),
    ];
    for (yaml, want) in cases {
        let s = shop(yaml);
        expect(&s, &[("monitoring/prom", "prod/api", 8080, TCP, *want)]);
    }
}

#[test]
fn a_tier_selecting_the_endpoint_ends_with_its_default_action() {
    let s = shop(
        "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 10, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: platform.block-web}
spec:
  tier: platform
  selector: app == 'api'
  ingress: [{action: Deny, source: {selector: app == 'web'}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  selector: app == 'api'
  ingress: [{action: Allow, source: {namespaceSelector: team == 'obs'}}]
",
    );
    expect(
        &s,
        &[
            // platform denies web
            ("prod/web", "prod/api", 8080, TCP, false),
            // nothing in platform matches prom: its end passes to the default tier, which allows
            ("monitoring/prom", "prod/api", 8080, TCP, true),
        ],
    );
    // A tier ending in Pass does not isolate by itself; the default tier's policy does.
    let api = s.pods().iter().position(|p| p.name == "api").unwrap();
    assert_eq!(s.isolation(api), (true, false));
}

#[test]
fn equal_orders_in_a_tier_are_broken_by_name_as_calico_v3_32_does() {
    // order 100 twice in prod: `a-deny` before `b-allow` by name.
    let s = shop(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: b-allow, namespace: prod}
spec: {order: 100, selector: app == 'api', ingress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: a-deny, namespace: prod}
spec: {order: 100, selector: app == 'api', ingress: [{action: Deny}]}
",
    );
    expect(&s, &[("prod/web", "prod/api", 8080, TCP, false)]);
}

#[test]
fn tie_keys_follow_each_release() {
    let s = shop(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: zeta, namespace: prod}
spec: {order: 1000, selector: app == 'api', ingress: [{action: Deny}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: alpha, namespace: prod}
spec: {podSelector: {}, ingress: [{}]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.g}
spec: {tier: security, selector: all()}
",
    );
    let keys = |release: index::TieBreak| -> Vec<String> {
        s.policies().iter().map(|p| release.key(p)).collect()
    };
    assert_eq!(
        keys(index::TieBreak::V3_28),
        ["prod/zeta", "prod/knp.default.alpha", "security.g"]
    );
    assert_eq!(
        keys(index::TieBreak::V3_29To3_31),
        ["prod/default.zeta", "prod/knp.default.alpha", "security.g"]
    );
    assert_eq!(
        keys(index::TieBreak::Current),
        [
            "zeta/prod/NetworkPolicy",
            "alpha/prod/KubernetesNetworkPolicy",
            "security.g//GlobalNetworkPolicy"
        ]
    );
    // v3.32+: the Kubernetes policy `alpha` (allow all) comes before `zeta` (deny): allowed
    expect(&s, &[("prod/web", "prod/api", 8080, TCP, true)]);
}

#[test]
fn named_ports_without_protocol_open_tcp_only_and_deny_every_protocol() {
    // `api` names `http` (8080/TCP) and `dns` (53/UDP).
    let allow = shop(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  selector: app == 'api'
  ingress: [{action: Allow, destination: {ports: [http, dns]}}]
",
    );
    expect(
        &allow,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            // v3.28-v3.31 match the TCP named port only
            ("prod/web", "prod/api", 53, UDP, false),
        ],
    );
    let deny = shop(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  selector: app == 'api'
  ingress:
    - {action: Deny, destination: {ports: [dns]}}
    - {action: Allow}
",
    );
    expect(
        &deny,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            // v3.32+ match the UDP named port too
            ("prod/web", "prod/api", 53, UDP, false),
        ],
    );
}

#[test]
fn tier_objects_are_read_and_checked() {
    let bad = Scenario::from_values(docs(
        "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: t}
spec: {defaultAction: Allow}
",
    ));
    let e = bad.unwrap_err().to_string();
    assert!(e.contains("spec.defaultAction"), "{e}");
    assert!(e.contains("expected Deny or Pass"), "{e}");
}

#[test]
fn tiers_sort_as_felix_sorts_them() {
    // projectcalico/calico `felix/calc/policy_sorter_test.go` @ 87c15906,
    // `TestPolicySorter_Sorting`: (name, valid, order) in, names out, in either input order.
    use super::index::{sort_tiers, TierKey};
    let t = |name: &'static str, valid: bool, order: Option<f64>| TierKey { name, valid, order };
    let cases: Vec<(&str, Vec<TierKey<'static>>, Vec<&str>)> = vec![
        ("empty", vec![], vec![]),
        (
            "valid sorts ahead of invalid",
            vec![t("bar", false, Some(1.0)), t("foo", true, Some(10.0))],
            vec!["foo", "bar"],
        ),
        (
            "both invalid, both nil order rely on name",
            vec![t("foo", false, None), t("bar", false, None)],
            vec!["bar", "foo"],
        ),
        (
            "both valid, both nil order rely on name",
            vec![t("foo", true, None), t("bar", true, None)],
            vec!["bar", "foo"],
        ),
        (
            "both valid, rely on order",
            vec![t("bar", true, Some(10.0)), t("foo", true, Some(1.0))],
            vec!["foo", "bar"],
        ),
        (
            "all valid, non-nil orders sort ahead of nil",
            vec![
                t("bar", true, None),
                t("baz", true, Some(10.0)),
                t("foo", true, Some(1.0)),
            ],
            vec!["foo", "baz", "bar"],
        ),
        (
            "all valid, equal order relies on name",
            vec![t("baz", true, Some(10.0)), t("foo", true, Some(10.0))],
            vec!["baz", "foo"],
        ),
    ];
    for (name, input, want) in cases {
        for reversed in [false, true] {
            let mut tiers = input.clone();
            if reversed {
                tiers.reverse();
            }
            sort_tiers(&mut tiers);
            let got: Vec<&str> = tiers.iter().map(|t| t.name).collect();
            assert_eq!(got, want, "{name} (reversed: {reversed})");
        }
    }
}
