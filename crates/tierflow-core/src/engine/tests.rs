//! Conformance tests, written from the Kubernetes, Calico and Cilium semantics.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::*;

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;

pub(super) fn docs(yaml: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn pod(
    ns: &str,
    name: &str,
    l: &[(&str, &str)],
    ip: &str,
    ports: &[(&str, u16, Protocol)],
) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        ips: vec![ip.parse().unwrap()],
        ports: ports
            .iter()
            .map(|(n, p, proto)| ContainerPort {
                name: (!n.is_empty()).then(|| n.to_string()),
                port: *p,
                protocol: *proto,
            })
            .collect(),
        service_account: None,
    }
}

/// Namespaces prod (env=prod), dev (env=dev), monitoring (team=obs); pods:
/// prod/web (http=80), prod/api (http=8080, metrics=9090), prod/db (pg=5432, 8080 unnamed),
/// dev/web, dev/api (http=8080), monitoring/prom.
fn world(policies: &str) -> Scenario {
    let mut s = Scenario::from_values(docs(policies)).unwrap();
    s.add_namespace("prod", labels(&[("env", "prod")]));
    s.add_namespace("dev", labels(&[("env", "dev")]));
    s.add_namespace("monitoring", labels(&[("team", "obs")]));
    s.add_pod(pod(
        "prod",
        "web",
        &[("app", "web")],
        "10.0.1.1",
        &[("http", 80, TCP)],
    ));
    s.add_pod(pod(
        "prod",
        "api",
        &[("app", "api")],
        "10.0.1.2",
        &[("http", 8080, TCP), ("metrics", 9090, TCP)],
    ));
    s.add_pod(pod(
        "prod",
        "db",
        &[("app", "db")],
        "10.0.1.3",
        &[("pg", 5432, TCP), ("", 8080, TCP)],
    ));
    s.add_pod(pod("dev", "web", &[("app", "web")], "10.0.2.1", &[]));
    s.add_pod(pod(
        "dev",
        "api",
        &[("app", "api")],
        "10.0.2.2",
        &[("http", 8080, TCP)],
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

pub(super) fn endpoint(s: &Scenario, e: &str) -> Endpoint {
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Endpoint::Ip(ip);
    }
    let (ns, name) = e.split_once('/').unwrap();
    let i = s
        .pods()
        .iter()
        .position(|p| p.namespace == ns && p.name == name)
        .unwrap_or_else(|| panic!("no pod {e}"));
    Endpoint::Pod(i)
}

/// Checks every `(from, to, port, protocol, allowed)` and reports all mismatches at once.
pub(super) fn expect(s: &Scenario, cases: &[(&str, &str, u16, Protocol, bool)]) {
    let mut bad = Vec::new();
    for &(from, to, port, proto, want) in cases {
        let v = s.check(endpoint(s, from), endpoint(s, to), port, proto);
        let fast = s.allows(endpoint(s, from), endpoint(s, to), port, proto);
        assert_eq!(
            v.allowed, fast,
            "check and allows disagree on {from} -> {to}:{port}"
        );
        // The verdict names the policies of `explain`'s rules, once each, in the same order,
        // and gives as many objects as names.
        let mut named: Vec<String> = Vec::new();
        for r in s.explain(endpoint(s, from), endpoint(s, to), port, proto) {
            if !named.contains(&r.policy) {
                named.push(r.policy);
            }
        }
        assert_eq!(v.decided_by, named, "{from} -> {to}:{port}");
        assert_eq!(v.policies().count(), v.decided_by.len());
        if v.allowed != want {
            bad.push(format!(
                "{from} -> {to} {port}/{proto}: expected {}, got {} (decided by {:?})",
                if want { "allowed" } else { "denied" },
                if v.allowed { "allowed" } else { "denied" },
                v.decided_by
            ));
        }
    }
    assert!(bad.is_empty(), "mode {:?}:\n{}", s.mode(), bad.join("\n"));
    // `allows_each` (rules narrowed once per pair) agrees with `allows` on every port of the
    // cases, for every pair of the cases.
    let ports: Vec<(u16, Protocol)> = cases.iter().map(|c| (c.2, c.3)).collect();
    for &(from, to, ..) in cases {
        let (a, b) = (endpoint(s, from), endpoint(s, to));
        let each = s.allows_each(a, b, &ports);
        let one: Vec<bool> = ports.iter().map(|&(n, p)| s.allows(a, b, n, p)).collect();
        assert_eq!(
            each, one,
            "allows_each and allows disagree on {from} -> {to}"
        );
    }
}

pub(super) fn verdict<'s>(
    s: &'s Scenario,
    from: &str,
    to: &str,
    port: u16,
    proto: Protocol,
) -> Verdict<'s> {
    s.check(endpoint(s, from), endpoint(s, to), port, proto)
}

pub(super) fn explain(
    s: &Scenario,
    from: &str,
    to: &str,
    port: u16,
    proto: Protocol,
) -> Vec<RuleRef> {
    s.explain(endpoint(s, from), endpoint(s, to), port, proto)
}

fn pod_index(s: &Scenario, e: &str) -> usize {
    match endpoint(s, e) {
        Endpoint::Pod(i) => i,
        Endpoint::Ip(_) => unreachable!(),
    }
}

// ---------------------------------------------------------------- Kubernetes NetworkPolicy

#[test]
fn without_policies_everything_is_allowed() {
    let s = world("");
    assert_eq!(s.mode(), Mode::Kubernetes);
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("dev/web", "prod/db", 5432, TCP, true),
            ("prod/api", "8.8.8.8", 443, TCP, true),
            ("8.8.8.8", "prod/web", 80, TCP, true),
        ],
    );
    let v = verdict(&s, "prod/web", "prod/api", 8080, TCP);
    assert!(v.decided_by.is_empty());
}

#[test]
fn a_verdict_names_its_policies_as_objects_in_the_same_order() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: api}}}]}]
",
    );
    let objects = |v: &Verdict<'_>| -> Vec<String> {
        v.policies()
            .map(|p| format!("{} {p}", p.kind))
            .collect::<Vec<_>>()
    };
    // Allowed: the allowing policies, egress first.
    let v = verdict(&s, "prod/web", "prod/api", 8080, TCP);
    assert!(v.allowed);
    assert_eq!(v.decided_by, ["prod/web", "prod/api"]);
    assert_eq!(
        objects(&v),
        ["NetworkPolicy prod/web", "NetworkPolicy prod/api"]
    );
    assert_eq!(v.decided_by.join(", "), "prod/web, prod/api");
    // A default deny at the destination: the policy that isolates it.
    let v = verdict(&s, "prod/db", "prod/api", 8080, TCP);
    assert!(!v.allowed);
    assert_eq!(v.decided_by, ["prod/api"]);
    assert_eq!(objects(&v), ["NetworkPolicy prod/api"]);
    assert_eq!(
        serde_json::to_value(&v).unwrap(),
        serde_json::json!({"allowed": false, "decidedBy": ["prod/api"]})
    );
    // No policy involved, and an unknown pod: allowed by none, denied by none.
    assert!(verdict(&s, "dev/web", "dev/api", 8080, TCP)
        .decided_by
        .is_empty());
    let v = s.check(Endpoint::Pod(999), Endpoint::Pod(0), 80, TCP);
    assert!(!v.allowed && v.decided_by.is_empty());
}

#[test]
fn a_verdict_naming_more_policies_than_it_keeps_inline_names_them_all_once_in_order() {
    // Twice as many allowing policies as a verdict keeps inline, each allowing prod/web to
    // reach prod/api; the names sort as they are read.
    let n = 2 * crate::engine::DecidedBy::INLINE;
    let policies: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-{i:02}, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{app: api}}}}
  ingress: [{{from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]}}]
"
            )
        })
        .collect();
    let s = world(&policies.join("---\n"));
    let want: Vec<String> = (0..n).map(|i| format!("prod/allow-{i:02}")).collect();
    let v = verdict(&s, "prod/web", "prod/api", 8080, TCP);
    assert!(v.allowed);
    assert_eq!(v.decided_by, want);
    assert_eq!(v.policies().count(), n);
    let denied = verdict(&s, "prod/db", "prod/api", 8080, TCP);
    assert!(!denied.allowed);
    assert_eq!(denied.decided_by, want);
    assert_eq!(
        serde_json::to_value(&denied).unwrap()["decidedBy"],
        serde_json::json!(want)
    );
}

#[test]
fn a_pod_is_isolated_only_once_selected_and_only_for_its_policy_types() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-in, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
",
    );
    assert_eq!(s.isolation(pod_index(&s, "prod/api")), (true, false));
    assert_eq!(s.isolation(pod_index(&s, "prod/web")), (false, false));
    assert_eq!(s.isolation(pod_index(&s, "dev/api")), (false, false));
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, false),
            ("prod/api", "prod/web", 80, TCP, true),
            ("prod/api", "8.8.8.8", 443, TCP, true),
            ("prod/web", "prod/db", 5432, TCP, true),
            ("prod/web", "dev/api", 8080, TCP, true),
        ],
    );
}

#[test]
fn policy_types_default_to_ingress_plus_egress_only_when_there_are_egress_rules() {
    let cases = [
        // (policy body, ingress isolated, egress isolated)
        ("ingress: [{}]", true, false),
        ("egress: [{to: [{podSelector: {}}]}]", true, true),
        ("egress: []", true, false),
        ("", true, false),
        ("policyTypes: [Egress]\n  ingress: [{}]", false, true),
    ];
    for (body, ing, eg) in cases {
        let s = world(&format!(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{app: api}}}}
  {body}
"
        ));
        assert_eq!(
            s.isolation(pod_index(&s, "prod/api")),
            (ing, eg),
            "policy body {body}"
        );
    }
}

#[test]
fn an_egress_only_policy_leaves_ingress_open() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-out, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: db}}}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("8.8.8.8", "prod/api", 8080, TCP, true),
            ("prod/api", "prod/db", 5432, TCP, true),
            ("prod/api", "prod/web", 80, TCP, false),
            ("prod/api", "8.8.8.8", 443, TCP, false),
        ],
    );
}

#[test]
fn one_peer_with_both_selectors_is_and_while_two_peers_are_or() {
    let and = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {env: dev}}
          podSelector: {matchLabels: {app: web}}
",
    );
    expect(
        &and,
        &[
            ("dev/web", "prod/api", 8080, TCP, true),
            ("dev/api", "prod/api", 8080, TCP, false),
            ("prod/web", "prod/api", 8080, TCP, false),
        ],
    );
    let or = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {env: dev}}
        - podSelector: {matchLabels: {app: web}}
",
    );
    expect(
        &or,
        &[
            ("dev/web", "prod/api", 8080, TCP, true),
            ("dev/api", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/db", "prod/api", 8080, TCP, false),
            ("monitoring/prom", "prod/api", 8080, TCP, false),
        ],
    );
}

#[test]
fn absent_or_empty_from_allows_everyone_while_an_absent_or_empty_ingress_list_denies_all() {
    let allow_all = [
        "ingress: [{}]",
        "ingress: [{from: []}]",
        "ingress: [{from: [], ports: []}]",
    ];
    for body in allow_all {
        let s = world(&format!(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{app: api}}}}
  policyTypes: [Ingress]
  {body}
"
        ));
        expect(
            &s,
            &[
                ("prod/web", "prod/api", 8080, TCP, true),
                ("dev/web", "prod/api", 1, UDP, true),
                ("203.0.113.9", "prod/api", 8080, TCP, true),
            ],
        );
    }
    for body in ["ingress: []", ""] {
        let s = world(&format!(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{app: api}}}}
  policyTypes: [Ingress]
  {body}
"
        ));
        expect(
            &s,
            &[
                ("prod/web", "prod/api", 8080, TCP, false),
                ("203.0.113.9", "prod/api", 8080, TCP, false),
            ],
        );
    }
}

#[test]
fn a_pod_selector_alone_means_the_policy_namespace() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("dev/web", "prod/api", 8080, TCP, false),
        ],
    );
}

#[test]
fn an_empty_namespace_selector_means_every_namespace() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}]
    - from: [{namespaceSelector: {}}]
      ports: [{port: 9090}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("dev/web", "prod/api", 8080, TCP, true),
            ("dev/api", "prod/api", 8080, TCP, false),
            ("monitoring/prom", "prod/api", 9090, TCP, true),
            ("203.0.113.9", "prod/api", 9090, TCP, false),
        ],
    );
}

#[test]
fn named_ports_resolve_on_the_destination_pod() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-in, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-out, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{ports: [{port: http}]}]
",
    );
    expect(
        &s,
        &[
            // ingress: `http` on prod/api is 8080
            ("prod/db", "prod/api", 8080, TCP, true),
            ("prod/db", "prod/api", 9090, TCP, false),
            ("prod/db", "prod/api", 80, TCP, false),
            ("prod/db", "prod/api", 8080, UDP, false),
            // egress from web: `http` is looked up on the peer, not on web (where it is 80)
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/web", "dev/api", 8080, TCP, true),
            ("prod/web", "prod/api", 80, TCP, false),
            ("prod/web", "prod/db", 8080, TCP, false),
            ("prod/web", "prod/web", 80, TCP, true),
            ("prod/web", "203.0.113.9", 8080, TCP, false),
        ],
    );
}

#[test]
fn ip_block_except_carves_addresses_out_and_pod_ips_count() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.2.0/24]}}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "10.9.9.9", 443, TCP, true),
            ("prod/web", "10.0.2.77", 443, TCP, false),
            ("prod/web", "8.8.8.8", 443, TCP, false),
            ("prod/web", "prod/db", 5432, TCP, true),
            ("prod/web", "dev/web", 80, TCP, false),
        ],
    );
}

#[test]
fn end_port_opens_a_range_and_protocol_defaults_to_tcp() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - ports: [{port: 8000, endPort: 8100}, {port: 53}, {protocol: UDP, port: 5353}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8000, TCP, true),
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/api", 8100, TCP, true),
            ("prod/web", "prod/api", 8101, TCP, false),
            ("prod/web", "prod/api", 7999, TCP, false),
            ("prod/web", "prod/api", 8080, UDP, false),
            ("prod/web", "prod/api", 53, TCP, true),
            ("prod/web", "prod/api", 53, UDP, false),
            ("prod/web", "prod/api", 5353, UDP, true),
            ("prod/web", "prod/api", 5353, TCP, false),
        ],
    );
    assert_eq!(
        s.ports_named_in_policies(),
        vec![(53, TCP), (5353, UDP), (8000, TCP)]
    );
}

#[test]
fn allows_are_a_union_and_a_connection_needs_both_ends() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 8080}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: api}}}]}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/api", 9090, TCP, false),
            ("prod/db", "prod/api", 8080, TCP, false),
            ("dev/web", "prod/api", 8080, TCP, false),
            ("prod/web", "prod/db", 5432, TCP, false),
            ("dev/web", "dev/api", 8080, TCP, true),
        ],
    );
    let v = verdict(&s, "prod/web", "prod/api", 8080, TCP);
    assert_eq!(v.decided_by, vec!["prod/web", "prod/api"]);
    let rules = explain(&s, "prod/web", "prod/api", 8080, TCP);
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].direction, Direction::Egress);
    assert_eq!(rules[0].effect, Effect::Allow);
    assert_eq!(rules[1].field.as_deref(), Some("spec.ingress[0]"));
    assert_eq!(rules[1].rule, Some(0));
    let v = verdict(&s, "prod/db", "prod/api", 8080, TCP);
    // egress of db: only the baseline isolates it; ingress of api: baseline and api.
    assert_eq!(v.decided_by, vec!["prod/deny-all", "prod/api"]);
    assert_eq!(
        serde_json::to_value(&v).unwrap(),
        serde_json::json!({"allowed": false, "decidedBy": ["prod/deny-all", "prod/api"]})
    );
    let rules = explain(&s, "prod/db", "prod/api", 8080, TCP);
    assert_eq!(rules.len(), 3);
    assert_eq!(
        serde_json::to_value(&rules[0]).unwrap(),
        serde_json::json!({"policy": "prod/deny-all", "direction": "egress", "rule": null,
                           "field": null, "effect": "defaultDeny"})
    );
    assert!(rules
        .iter()
        .all(|r| r.effect == Effect::DefaultDeny && r.rule.is_none()));
}

#[test]
fn an_external_address_needs_only_egress_and_a_pod_ip_is_that_pod() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "8.8.8.8", 443, TCP, true),
            ("8.8.8.8", "prod/web", 80, TCP, false),
            ("prod/web", "10.0.1.2", 8080, TCP, false),
            ("dev/web", "10.0.2.2", 8080, TCP, true),
        ],
    );
}

#[test]
fn parse_errors_name_the_document_the_object_and_the_field() {
    let err = Scenario::from_values(docs(
        "
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80}, {port: 70000}]}]
",
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 2 (NetworkPolicy prod/api): spec.ingress[0].ports[1].port: 70000 is out of \
         range (at most 65535)"
    );
    for (body, path) in [
        (
            "ingress: [{ports: [{port: 90, endPort: 80}]}]",
            "spec.ingress[0].ports[0].endPort",
        ),
        (
            "ingress: [{ports: [{port: http, endPort: 80}]}]",
            "spec.ingress[0].ports[0].endPort",
        ),
        (
            "ingress: [{ports: [{protocol: ICMP}]}]",
            "spec.ingress[0].ports[0].protocol",
        ),
        ("ingress: [{from: [{}]}]", "spec.ingress[0].from[0]"),
        (
            "egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]",
            "spec.egress[0].to[0]",
        ),
        (
            "egress: [{to: [{ipBlock: {cidr: nonsense}}]}]",
            "spec.egress[0].to[0].ipBlock.cidr",
        ),
        ("policyTypes: [Sideways]", "spec.policyTypes[0]"),
        (
            "podSelector: {matchExpressions: [{key: a, operator: In}]}",
            "spec.podSelector",
        ),
    ] {
        let err = Scenario::from_values(docs(&format!(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  {body}
"
        )))
        .unwrap_err();
        match &err {
            EngineError::Field { path: p, .. } => assert_eq!(p, path, "{body}: {err}"),
            other => panic!("{body}: unexpected {other}"),
        }
    }
}

#[test]
fn empty_documents_are_skipped_but_counted() {
    let mut docs = docs(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec: {podSelector: {}, policyTypes: [Nope]}
",
    );
    docs.insert(0, serde_json::Value::Null);
    let err = Scenario::from_values(docs).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("document 2 (NetworkPolicy prod/p)"),
        "{err}"
    );
}

#[test]
fn a_scenario_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Scenario>();
    let s = world("");
    std::thread::scope(|scope| {
        scope.spawn(|| assert!(s.allows(Endpoint::Pod(0), Endpoint::Pod(1), 80, TCP)));
        scope.spawn(|| assert_eq!(s.isolation(0), (false, false)));
    });
}

#[test]
fn unknown_kinds_are_errors_naming_api_version_and_kind() {
    let err = Scenario::from_values(docs(
        "
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: v1
kind: Namespace
metadata: {name: b}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: x}
",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        EngineError::UnknownKind {
            document: 3,
            api_version: "networking.k8s.io/v1".into(),
            kind: "Ingress".into()
        }
    );
    assert!(err
        .to_string()
        .contains("document 3: unsupported apiVersion/kind networking.k8s.io/v1/Ingress"));
}

#[test]
fn namespaces_pods_and_lists_are_inputs_too() {
    let s = Scenario::from_values(docs(
        "
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod}}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: api, namespace: shop, labels: {app: api}}
    spec: {containers: [{name: c, ports: [{containerPort: 8080, name: http}]}]}
    status: {podIP: 10.1.0.5}
  - apiVersion: v1
    kind: Pod
    metadata: {name: web, namespace: shop, labels: {app: web}}
    status: {podIPs: [{ip: 10.1.0.6}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}}], ports: [{port: http}]}]
",
    ))
    .unwrap();
    assert_eq!(s.pods().len(), 2);
    assert_eq!(
        s.pods()[0].ports,
        vec![ContainerPort {
            name: Some("http".into()),
            port: 8080,
            protocol: TCP
        }]
    );
    assert_eq!(
        s.namespace_labels("shop")
            .unwrap()
            .get(NAMESPACE_NAME_LABEL),
        Some(&"shop".to_string())
    );
    expect(
        &s,
        &[
            ("shop/web", "shop/api", 8080, TCP, true),
            ("shop/web", "shop/api", 8081, TCP, false),
        ],
    );
}

#[test]
fn dual_stack_pods_keep_both_addresses_and_match_address_rules_on_either() {
    let objects = "
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
status: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}, {ip: 'fd00:10::5'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
status: {podIPs: [{ip: 10.1.0.6}, {ip: 'fd00:10::6'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: shop, labels: {app: old}}
status: {podIP: 10.1.0.7}
";
    let with = |policy: &str| {
        let mut s = Scenario::from_values(docs(&format!("{objects}---\n{policy}"))).unwrap();
        s.add_namespace("shop", labels(&[]));
        s
    };
    let s = with(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-out, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 'fd00:10::/64', except: ['fd00:10::7/128']}}]}]
",
    );
    let api = &s.pods()[0];
    assert_eq!(
        api.ips,
        vec![
            "10.1.0.5".parse::<IpAddr>().unwrap(),
            "fd00:10::5".parse().unwrap()
        ]
    );
    assert_eq!(api.ip(), Some("10.1.0.5".parse().unwrap()));
    assert_eq!(s.pods()[2].ips.len(), 1);
    expect(
        &s,
        &[
            // The IPv6-only rule matches the dual-stack pod by its IPv6 address.
            ("shop/web", "shop/api", 8080, TCP, true),
            ("shop/web", "fd00:10::5", 8080, TCP, true),
            ("shop/web", "10.1.0.5", 8080, TCP, true),
            // A single-stack IPv4 pod has no address in the block.
            ("shop/web", "shop/old", 8080, TCP, false),
            ("shop/web", "fd00:20::1", 8080, TCP, false),
        ],
    );
    // An address of either family names the pod.
    assert_eq!(
        endpoint(&s, "fd00:10::6"),
        Endpoint::Ip("fd00:10::6".parse().unwrap())
    );
    assert!(s.allows(
        Endpoint::Ip("fd00:10::6".parse().unwrap()),
        endpoint(&s, "shop/api"),
        80,
        TCP
    ));

    // Calico nets / notNets judge one address at a time.
    let s = with(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web-out, namespace: shop}
spec:
  selector: app == 'web'
  types: [Egress]
  egress:
    - action: Allow
      destination: {nets: ['::/0'], notNets: ['fd00:10::7/128']}
",
    );
    expect(
        &s,
        &[
            ("shop/web", "shop/api", 8080, TCP, true),
            ("shop/web", "shop/old", 8080, TCP, false),
        ],
    );
}

// ---------------------------------------------------------------- Calico

#[test]
fn calico_lower_order_decides_first() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-all, namespace: prod}
spec:
  order: 20
  selector: app == 'api'
  ingress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-web, namespace: prod}
spec:
  order: 10
  selector: app == 'api'
  ingress: [{action: Deny, source: {selector: app == 'web'}}]
",
    );
    assert_eq!(s.mode(), Mode::Calico);
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, false),
            ("prod/db", "prod/api", 8080, TCP, true),
            // the source selector of a namespaced policy covers its own namespace only
            ("dev/web", "prod/api", 8080, TCP, true),
        ],
    );
    let v = verdict(&s, "prod/web", "prod/api", 8080, TCP);
    assert_eq!(v.decided_by, vec!["prod/deny-web"]);
    assert_eq!(
        explain(&s, "prod/web", "prod/api", 8080, TCP)[0].effect,
        Effect::Deny
    );
}

#[test]
fn calico_rules_apply_in_order_within_a_policy_and_log_continues() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  selector: app == 'api'
  ingress:
    - action: Log
    - action: Deny
      protocol: TCP
      destination: {ports: [9090]}
    - action: Allow
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/api", 9090, TCP, false),
            ("prod/web", "prod/api", 9090, UDP, true),
        ],
    );
    assert_eq!(
        explain(&s, "prod/web", "prod/api", 8080, TCP)[0].rule,
        Some(2)
    );
}

#[test]
fn calico_pass_skips_the_rest_of_the_tier_to_the_allowing_profile() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pass-monitoring}
spec:
  order: 1
  selector: all()
  types: [Ingress]
  ingress: [{action: Pass, source: {namespaceSelector: team == 'obs'}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all}
spec:
  order: 2
  selector: all()
  types: [Ingress]
  ingress: [{action: Deny}]
",
    );
    expect(
        &s,
        &[
            ("monitoring/prom", "prod/api", 9090, TCP, true),
            ("prod/web", "prod/api", 8080, TCP, false),
        ],
    );
    let v = verdict(&s, "monitoring/prom", "prod/api", 9090, TCP);
    assert_eq!(v.decided_by, vec!["pass-monitoring"]);
    assert_eq!(
        explain(&s, "monitoring/prom", "prod/api", 9090, TCP)[0].effect,
        Effect::Pass
    );
}

#[test]
fn calico_end_of_tier_denies_selected_endpoints_only() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  selector: app == 'api'
  ingress: [{action: Allow, source: {selector: app == 'web'}}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/db", "prod/api", 8080, TCP, false),
            ("prod/web", "prod/db", 5432, TCP, true),
            // Calico defaults types to [Ingress] without egress rules: api's egress is open
            ("prod/api", "8.8.8.8", 443, TCP, true),
        ],
    );
    let v = verdict(&s, "prod/db", "prod/api", 8080, TCP);
    assert_eq!(v.decided_by, vec!["prod/api"]);
    assert_eq!(
        explain(&s, "prod/db", "prod/api", 8080, TCP)[0].effect,
        Effect::DefaultDeny
    );
}

#[test]
fn calico_types_default_from_the_rules_present() {
    for (body, want) in [
        ("ingress: [{action: Allow}]", (true, false)),
        ("egress: [{action: Allow}]", (false, true)),
        (
            "ingress: [{action: Allow}]\n  egress: [{action: Allow}]",
            (true, true),
        ),
        ("types: [Egress]", (false, true)),
        ("selector: all()", (true, false)),
    ] {
        let s = world(&format!(
            "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  {body}
"
        ));
        assert_eq!(s.isolation(pod_index(&s, "prod/api")), want, "{body}");
        assert_eq!(s.isolation(pod_index(&s, "dev/api")), (false, false));
    }
}

#[test]
fn calico_unordered_policies_come_after_ordered_ones() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a-allow-unordered}
spec:
  selector: app == 'api'
  ingress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: z-deny-ordered}
spec:
  order: 5000
  selector: app == 'api'
  ingress: [{action: Deny}]
",
    );
    expect(&s, &[("prod/web", "prod/api", 8080, TCP, false)]);
}

#[test]
fn kubernetes_policies_in_calico_sit_at_order_1000_with_only_allow_rules() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {}}]}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-db, namespace: prod}
spec:
  order: 500
  selector: app == 'api'
  ingress: [{action: Deny, source: {selector: app == 'db'}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-monitoring-late}
spec:
  order: 2000
  selector: app == 'api'
  ingress: [{action: Allow, source: {selector: app == 'prometheus'}}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            // order 500 Deny comes before the Kubernetes policy's allow
            ("prod/db", "prod/api", 8080, TCP, false),
            // nothing at order <= 1000 allows it, a later Calico policy does
            ("monitoring/prom", "prod/api", 9090, TCP, true),
            ("dev/web", "prod/api", 8080, TCP, false),
        ],
    );
    assert_eq!(
        verdict(&s, "prod/web", "prod/api", 8080, TCP).decided_by,
        vec!["prod/api"]
    );
    assert_eq!(
        verdict(&s, "dev/web", "prod/api", 8080, TCP).decided_by,
        vec!["prod/deny-db", "prod/api", "allow-monitoring-late"]
    );
}

#[test]
fn a_global_network_policy_with_a_namespace_selector_selects_only_those_namespaces() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: prod-lockdown}
spec:
  namespaceSelector: env == 'prod'
  selector: all()
  types: [Ingress, Egress]
  ingress:
    - action: Allow
      source: {selector: app == 'web'}
  egress:
    - action: Allow
      protocol: UDP
      destination: {ports: [53]}
",
    );
    expect(
        &s,
        &[
            // a global policy's source selector covers every namespace
            ("dev/web", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/db", 5432, TCP, false),
            ("dev/api", "prod/db", 5432, TCP, false),
            ("dev/api", "dev/web", 80, TCP, true),
            ("prod/db", "8.8.8.8", 53, UDP, true),
            ("prod/db", "8.8.8.8", 53, TCP, false),
            ("dev/web", "8.8.8.8", 53, TCP, true),
        ],
    );
}

#[test]
fn calico_entity_rules_match_nets_not_nets_not_selectors_ports_and_protocols() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  selector: app == 'web'
  types: [Egress]
  egress:
    - action: Allow
      protocol: 6
      destination:
        nets: [10.0.0.0/8]
        notNets: [10.0.2.0/24]
        ports: ['8000:8100', pg]
        notPorts: [8081]
    - action: Allow
      protocol: UDP
      destination: {namespaceSelector: projectcalico.org/name == 'monitoring', ports: [9999]}
    - action: Allow
      notProtocol: TCP
      destination: {notSelector: app == 'db'}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec:
  selector: app == 'api' && projectcalico.org/namespace == 'dev'
  types: [Egress]
  egress:
    - action: Allow
      destination: {notSelector: app == 'web'}
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/api", 8081, TCP, false),
            ("prod/web", "prod/db", 5432, TCP, true),
            ("prod/web", "prod/api", 5432, TCP, false),
            ("prod/web", "dev/api", 8080, TCP, false),
            ("prod/web", "10.200.0.1", 8000, TCP, true),
            ("prod/web", "10.200.0.1", 8000, UDP, false),
            ("prod/web", "monitoring/prom", 9999, UDP, true),
            // a namespaced policy's notSelector also limits the rule to its own namespace
            ("prod/web", "prod/api", 9999, UDP, true),
            ("prod/web", "prod/db", 9999, UDP, false),
            ("prod/web", "dev/api", 9999, UDP, false),
            ("prod/web", "192.0.2.1", 9999, UDP, false),
            // a global policy's notSelector alone: every endpoint but those, and addresses
            ("dev/api", "prod/api", 1, TCP, true),
            ("dev/api", "prod/web", 1, TCP, false),
            ("dev/api", "192.0.2.1", 1, TCP, true),
        ],
    );
}

#[test]
fn calico_source_ports_and_service_account_rules_never_match() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  selector: app == 'api'
  ingress:
    - action: Allow
      protocol: TCP
      source: {ports: [1024]}
    - action: Allow
      source: {serviceAccounts: {names: [web]}}
    - action: Allow
      source: {services: {name: api, namespace: prod}}
",
    );
    expect(&s, &[("prod/web", "prod/api", 8080, TCP, false)]);
}

#[test]
fn staged_policies_are_read_but_not_enforced() {
    let s = world(
        "
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: lockdown}
spec:
  selector: all()
  types: [Ingress]
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: x, namespace: prod}
spec: {selector: all()}
",
    );
    assert_eq!(s.staged_policies(), &["lockdown", "prod/x"]);
    assert_eq!(s.mode(), Mode::Calico);
    expect(&s, &[("prod/web", "prod/api", 8080, TCP, true)]);
}

#[test]
fn calico_errors_name_the_field() {
    for (rule, path) in [
        (
            "{action: Allow, source: {selector: \"app ==\"}}",
            "spec.ingress[0].source.selector",
        ),
        ("{action: Maybe}", "spec.ingress[0].action"),
        ("{source: {}}", "spec.ingress[0].action"),
        (
            "{action: Allow, destination: {ports: [80]}}",
            "spec.ingress[0].destination.ports",
        ),
        (
            "{action: Allow, protocol: TCP, destination: {ports: ['90:80']}}",
            "spec.ingress[0].destination.ports[0]",
        ),
        ("{action: Allow, protocol: XTP}", "spec.ingress[0].protocol"),
    ] {
        let err = Scenario::from_values(docs(&format!(
            "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  ingress: [{rule}]
"
        )))
        .unwrap_err();
        match &err {
            EngineError::Field {
                path: p, object, ..
            } => {
                assert_eq!(p, path, "{rule}: {err}");
                assert_eq!(object, "NetworkPolicy prod/p");
            }
            other => panic!("{rule}: unexpected {other}"),
        }
    }
}

// ---------------------------------------------------------------- Cilium

#[test]
fn cilium_peers_stay_in_the_policy_namespace_unless_they_name_one() {
    let s = world(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: web}
        - matchLabels: {k8s:io.kubernetes.pod.namespace: monitoring, k8s:app: prometheus}
        - matchLabels: {io.cilium.k8s.namespace.labels.env: dev, any:app: api}
",
    );
    assert_eq!(s.mode(), Mode::Cilium);
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("dev/web", "prod/api", 8080, TCP, false),
            ("monitoring/prom", "prod/api", 9090, TCP, true),
            ("dev/api", "prod/api", 8080, TCP, true),
            ("prod/db", "prod/api", 8080, TCP, false),
            // the endpointSelector of a namespaced policy selects its namespace only
            ("prod/web", "dev/api", 8080, TCP, true),
        ],
    );
}

#[test]
fn cilium_cidr_sets_carve_out_exceptions_and_never_match_pods() {
    let s = world(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-out, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.9.0.0/16]}]
    - toCIDR: [192.0.2.10/32]
      toPorts: [{ports: [{port: '443', protocol: TCP}]}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "10.8.0.1", 80, TCP, true),
            ("prod/web", "10.9.0.1", 80, TCP, false),
            ("prod/web", "192.0.2.10", 443, TCP, true),
            ("prod/web", "192.0.2.10", 80, TCP, false),
            ("prod/web", "prod/api", 8080, TCP, false),
        ],
    );
}

#[test]
fn cilium_world_entity_means_addresses_outside_the_pods() {
    let s = world(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-out, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toEntities: [world]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: db-in}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEntities: [cluster]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "8.8.8.8", 443, TCP, true),
            ("prod/web", "2001:db8::1", 443, TCP, true),
            ("prod/web", "prod/api", 8080, TCP, false),
            ("prod/web", "10.0.2.2", 8080, TCP, false),
            ("dev/web", "prod/db", 5432, TCP, true),
            ("8.8.8.8", "prod/db", 5432, TCP, false),
        ],
    );
}

#[test]
fn cilium_deny_wins_over_every_allow() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: prod}
spec:
  podSelector: {}
  ingress: [{}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: no-dev}
spec:
  endpointSelector: {}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: dev}}]
      toPorts: [{ports: [{port: '8080'}]}]
",
    );
    expect(
        &s,
        &[
            ("dev/web", "prod/api", 8080, TCP, false),
            ("dev/web", "prod/api", 9090, TCP, true),
            ("prod/web", "prod/api", 8080, TCP, true),
            // the deny-only policy isolates dev pods (it has ingress rules)
            ("prod/web", "dev/api", 9090, TCP, false),
        ],
    );
    let v = verdict(&s, "dev/web", "prod/api", 8080, TCP);
    assert_eq!(v.decided_by, vec!["no-dev"]);
    assert_eq!(
        explain(&s, "dev/web", "prod/api", 8080, TCP)[0]
            .field
            .as_deref(),
        Some("spec.ingressDeny[0]")
    );
}

#[test]
fn cilium_empty_sections_rules_and_selectors_behave_as_documented() {
    let iso = |body: &str| {
        let s = world(&format!(
            "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: p, namespace: prod}}
spec:
  endpointSelector: {{matchLabels: {{app: api}}}}
  {body}
"
        ));
        let api = pod_index(&s, "prod/api");
        (
            s.isolation(api),
            s.allows(endpoint(&s, "prod/web"), Endpoint::Pod(api), 8080, TCP),
            s.allows(endpoint(&s, "dev/web"), Endpoint::Pod(api), 8080, TCP),
        )
    };
    // ingress: [] neither isolates nor allows
    assert_eq!(iso("ingress: []"), ((false, false), true, true));
    // ingress: [{}] isolates and allows nothing
    assert_eq!(iso("ingress: [{}]"), ((true, false), false, false));
    // fromEndpoints: [{}] is every pod of the namespace
    assert_eq!(
        iso("ingress: [{fromEndpoints: [{}]}]"),
        ((true, false), true, false)
    );
    // an explicitly empty peer list selects nothing
    assert_eq!(
        iso("ingress: [{fromEndpoints: [], toPorts: [{ports: [{port: '8080'}]}]}]"),
        ((true, false), false, false)
    );
    // ports without a peer: every peer
    assert_eq!(
        iso("ingress: [{toPorts: [{ports: [{port: '8080', protocol: ANY}]}]}]"),
        ((true, false), true, true)
    );
    // enableDefaultDeny false: the rules count, the endpoint is not isolated
    assert_eq!(
        iso("enableDefaultDeny: {ingress: false}\n  ingress: [{fromEndpoints: [{}]}]"),
        ((false, false), true, true)
    );
    // egress section isolates egress only
    assert_eq!(iso("egress: [{}]"), ((false, true), true, true));
}

#[test]
fn cilium_unions_kubernetes_and_cilium_allows_and_ip_blocks_skip_pods() {
    let s = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
    - from: [{ipBlock: {cidr: 10.0.0.0/8}}]
      ports: [{port: 9090}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: prod}
specs:
  - endpointSelector: {matchLabels: {app: api}}
    ingress:
      - fromEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: monitoring}}]
        toPorts: [{ports: [{port: metrics, protocol: TCP}], rules: {http: [{method: GET}]}}]
  - endpointSelector: {matchLabels: {app: db}}
    ingress:
      - fromEndpoints: [{matchLabels: {app: api}}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 8080, TCP, true),
            ("monitoring/prom", "prod/api", 9090, TCP, true),
            ("monitoring/prom", "prod/api", 8080, TCP, false),
            // ipBlock does not match pods under Cilium ...
            ("prod/db", "prod/api", 9090, TCP, false),
            // ... but does match outside addresses
            ("10.77.0.1", "prod/api", 9090, TCP, true),
            ("prod/api", "prod/db", 5432, TCP, true),
            ("prod/web", "prod/db", 5432, TCP, false),
        ],
    );
}

#[test]
fn cilium_fqdn_and_service_rules_match_no_address() {
    let s = world(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toFQDNs: [{matchName: example.com}]
      toPorts: [{ports: [{port: '443'}]}]
    - toEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: '8000', endPort: 8100, protocol: TCP}]}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "93.184.216.34", 443, TCP, false),
            ("prod/web", "prod/api", 8080, TCP, true),
            ("prod/web", "prod/api", 8080, UDP, false),
            ("prod/web", "prod/api", 8101, TCP, false),
        ],
    );
    assert_eq!(
        s.ports_named_in_policies(),
        vec![(443, TCP), (443, UDP), (8000, TCP)]
    );
}

#[test]
fn cilium_errors_name_the_field() {
    for (spec, path) in [
        ("{ingress: [{}]}", "spec.endpointSelector"),
        (
            "{endpointSelector: {}, egress: [{toEntities: [moon]}]}",
            "spec.egress[0].toEntities[0]",
        ),
        (
            "{endpointSelector: {}, egress: [{toPorts: [{ports: [{port: '80', protocol: XTP}]}]}]}",
            "spec.egress[0].toPorts[0].ports[0].protocol",
        ),
        (
            "{endpointSelector: {matchExpressions: [{key: a, operator: Like}]}}",
            "spec.endpointSelector.matchExpressions[0].operator",
        ),
    ] {
        let err = Scenario::from_values(docs(&format!(
            "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: p, namespace: prod}}
spec: {spec}
"
        )))
        .unwrap_err();
        match &err {
            EngineError::Field { path: p, .. } => assert_eq!(p, path, "{spec}: {err}"),
            other => panic!("{spec}: unexpected {other}"),
        }
    }
}

#[test]
fn the_mode_follows_the_most_specific_policy_kind_present() {
    let knp = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: prod}
spec: {podSelector: {}}
";
    let calico = "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: b}
spec: {selector: all()}
";
    let cilium = "
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: c}
spec: {endpointSelector: {}}
";
    assert_eq!(world(knp).mode(), Mode::Kubernetes);
    assert_eq!(world(&format!("{knp}---{calico}")).mode(), Mode::Calico);
    assert_eq!(
        world(&format!("{knp}---{calico}---{cilium}")).mode(),
        Mode::Cilium
    );
}

// ---------------------------------------------------------------- scale

/// 1,000 pods in 10 namespaces, 300 policies, one port over all ordered pod pairs.
/// Run with `cargo test --release --lib engine -- --ignored --nocapture`.
#[test]
#[ignore]
fn a_thousand_pods_and_three_hundred_policies_check_every_pair_quickly() {
    let mut yaml = String::new();
    for i in 0..300 {
        let ns = format!("ns{}", i % 10);
        yaml.push_str(&format!(
            "---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p{i}, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{app: a{}}}}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{{podSelector: {{matchLabels: {{app: a{}}}}}}}, {{namespaceSelector: {{matchLabels: {{team: t{}}}}}, podSelector: {{matchLabels: {{app: a{}}}}}}}]
      ports: [{{port: 8080}}, {{port: http}}]
  egress:
    - to: [{{namespaceSelector: {{}}, podSelector: {{matchExpressions: [{{key: app, operator: In, values: [a{}, a{}]}}]}}}}]
    - to: [{{ipBlock: {{cidr: 10.0.0.0/8, except: [10.{}.0.0/16]}}}}]
",
            i % 30,
            (i + 1) % 30,
            i % 5,
            (i + 2) % 30,
            (i + 3) % 30,
            (i + 4) % 30,
            i % 10
        ));
    }
    let start = std::time::Instant::now();
    let mut s = Scenario::from_values(docs(&yaml)).unwrap();
    for n in 0..10 {
        s.add_namespace(
            &format!("ns{n}"),
            labels(&[("team", &format!("t{}", n % 5))]),
        );
    }
    for i in 0..1000 {
        s.add_pod(pod(
            &format!("ns{}", i % 10),
            &format!("pod{i}"),
            &[("app", &format!("a{}", i % 7))],
            &format!("10.{}.{}.{}", i % 10, i / 250, i % 250 + 1),
            &[("http", 8080, TCP)],
        ));
    }
    let parsed = start.elapsed();
    let start = std::time::Instant::now();
    assert!(s.isolation(0).0);
    let indexed = start.elapsed();
    let start = std::time::Instant::now();
    let mut allowed = 0usize;
    for a in 0..1000 {
        for b in 0..1000 {
            if a != b && s.allows(Endpoint::Pod(a), Endpoint::Pod(b), 8080, TCP) {
                allowed += 1;
            }
        }
    }
    let fast = start.elapsed();
    let start = std::time::Instant::now();
    let mut traced = 0usize;
    for a in 0..1000 {
        for b in 0..1000 {
            if a != b
                && s.check(Endpoint::Pod(a), Endpoint::Pod(b), 8080, TCP)
                    .allowed
            {
                traced += 1;
            }
        }
    }
    let full = start.elapsed();
    assert_eq!(allowed, traced);
    println!(
        "parse {parsed:?}, index {indexed:?}, 999,000 allows() {fast:?}, 999,000 check() \
         {full:?}, {allowed} allowed"
    );
}

/// Pods read from YAML with `spec.serviceAccountName`: prod/web (sa web), prod/api (sa api),
/// prod/imposter (sa default, but claiming Cilium's and Calico's identity labels), dev/web
/// (sa web).
fn sa_world(policies: &str) -> Scenario {
    let pods = "
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api}}
spec: {serviceAccountName: api}
status: {podIP: 10.0.1.2}
---
apiVersion: v1
kind: Pod
metadata:
  name: imposter
  namespace: prod
  labels:
    app: imposter
    io.cilium.k8s.policy.serviceaccount: web
    io.kubernetes.pod.namespace: dev
    io.cilium.k8s.namespace.labels.env: dev
    projectcalico.org/serviceaccount: web
    projectcalico.org/namespace: dev
status: {podIP: 10.0.1.9}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: dev, labels: {app: web}}
spec: {serviceAccount: web}
status: {podIP: 10.0.2.1}
";
    Scenario::from_values(docs(&format!("{pods}\n---\n{policies}"))).unwrap()
}

#[test]
fn calico_service_account_selector_selects_by_the_pods_service_account() {
    // A policy selects a pod when its selector and its serviceAccountSelector both hold;
    // `projectcalico.org/name` is the service account's name.
    let s = sa_world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: lock-api, namespace: prod}
spec:
  serviceAccountSelector: projectcalico.org/name == 'api'
  ingress: [{action: Deny}]
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 80, TCP, false),
            ("prod/api", "prod/web", 80, TCP, true),
            ("prod/api", "prod/imposter", 80, TCP, true),
        ],
    );
}

#[test]
fn calico_rule_service_accounts_match_names_and_selectors_within_the_namespace() {
    let s = sa_world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  selector: app == 'api'
  ingress:
    - action: Allow
      source: {serviceAccounts: {names: [web]}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web}
spec:
  selector: app == 'web'
  ingress:
    - action: Allow
      source:
        namespaceSelector: all()
        serviceAccounts: {selector: \"projectcalico.org/name in {'api', 'web'}\"}
",
    );
    expect(
        &s,
        &[
            // names: [web], scoped to prod: prod/web yes, dev/web (sa web) no, the imposter's
            // projectcalico.org/serviceaccount label is overwritten by Calico.
            ("prod/web", "prod/api", 80, TCP, true),
            ("dev/web", "prod/api", 80, TCP, false),
            ("prod/imposter", "prod/api", 80, TCP, false),
            // a global policy's selector over service-account labels, in every namespace
            ("prod/api", "dev/web", 80, TCP, true),
            ("prod/web", "dev/web", 80, TCP, true),
            ("prod/imposter", "dev/web", 80, TCP, false),
        ],
    );
}

#[test]
fn calico_global_is_refused_outside_a_rule_namespace_selector() {
    for (bad, why) in [
        (
            "spec: {selector: global()}",
            "entity rule's namespaceSelector",
        ),
        (
            "spec: {ingress: [{action: Allow, source: {selector: global()}}]}",
            "entity rule's namespaceSelector",
        ),
        (
            "spec: {ingress: [{action: Allow, source: {namespaceSelector: global() || all()}}]}",
            "cannot be combined",
        ),
        (
            "spec: {serviceAccountSelector: \"!global()\"}",
            "entity rule's namespaceSelector",
        ),
    ] {
        let doc = format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: prod}}\n{bad}"
        );
        let v = docs(&doc).remove(0);
        let mut sink = super::read::Sink {
            peers: &mut Vec::new(),
        };
        let err = super::parse::parse_object(1, &v, "", &mut sink)
            .err()
            .unwrap_or_else(|| panic!("{bad} should be refused"));
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
    let ok = sa_world(
        "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  selector: app == 'api'
  ingress: [{action: Allow, source: {namespaceSelector: global()}}]
",
    );
    // global() selects host endpoints and network sets only: no pod.
    expect(&ok, &[("prod/web", "prod/api", 80, TCP, false)]);
}

#[test]
fn cilium_service_account_label_and_sanitised_pod_labels() {
    let s = sa_world(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints:
        - matchLabels: {io.cilium.k8s.policy.serviceaccount: web}
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: dev-web}
spec:
  endpointSelector:
    matchLabels: {k8s:io.kubernetes.pod.namespace: dev, app: web}
  ingress:
    - fromEndpoints:
        - matchLabels: {k8s:io.cilium.k8s.namespace.labels.env: dev}
",
    );
    expect(
        &s,
        &[
            ("prod/web", "prod/api", 80, TCP, true),
            // the imposter's own io.cilium.k8s.* labels are dropped: its service account is
            // `default`, and it cannot pass for a dev pod
            ("prod/imposter", "prod/api", 80, TCP, false),
            ("prod/imposter", "dev/web", 80, TCP, false),
            ("prod/api", "prod/api", 80, TCP, false),
        ],
    );
    // Its io.kubernetes.pod.namespace label is overridden: a clusterwide selector on dev
    // does not select it.
    let imposter = pod_index(&s, "prod/imposter");
    assert_eq!(s.isolation(imposter), (false, false));
    let dev_web = pod_index(&s, "dev/web");
    assert_eq!(s.isolation(dev_web), (true, false));
}

#[test]
fn cilium_default_label_filter_keeps_hashes_and_ordinals_out_of_identities() {
    // Keys from cilium/cilium pkg/labelsfilter/filter_test.go TestDefaultFilterLabels and the
    // identity-relevant-labels documentation, as this engine's own table: (key, relevant).
    for (key, relevant) in [
        ("app", true),
        ("ioXkubernetes", true),
        ("ignore", true),
        ("app.kubernetes.io/name", true),
        ("io.kubernetes.pod.namespace", true),
        (
            "io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name",
            true,
        ),
        ("io.cilium.k8s.policy.serviceaccount", true),
        ("io.kubernetes.pod.name", false),
        ("io.kubernetes.container.hash", false),
        ("kubernetes.io.foo", false),
        ("beta.kubernetes.io.foo", false),
        ("failure-domain.beta.kubernetes.io/zone", false),
        ("annotation.hello", false),
        ("k8s.io/x", false),
        ("pod-template-hash", false),
        ("pod-template-generation", false),
        ("controller-revision-hash", false),
        ("statefulset.kubernetes.io/pod-name", false),
        ("apps.kubernetes.io/pod-index", false),
        ("batch.kubernetes.io/job-completion-index", false),
        ("controller-uid", false),
        ("etcd_node", false),
    ] {
        assert_eq!(super::cilium::identity_relevant(key), relevant, "{key}");
    }
    let s = sa_world(
        "
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: prod
  labels: {app: db, statefulset.kubernetes.io/pod-name: db-0, pod-template-hash: abc}
status: {podIP: 10.0.1.20}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ordinal, namespace: prod}
spec:
  endpointSelector: {matchLabels: {statefulset.kubernetes.io/pod-name: db-0}}
  ingress: [{}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: app, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromEndpoints: [{matchLabels: {pod-template-hash: abc}}]
",
    );
    // The ordinal selector selects nothing: db-0 is not isolated.
    assert_eq!(s.isolation(pod_index(&s, "prod/db-0")), (false, false));
    // A peer on pod-template-hash matches no pod.
    expect(&s, &[("prod/db-0", "prod/web", 80, TCP, false)]);
}
