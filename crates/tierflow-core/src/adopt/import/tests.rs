//! Import round trips: every case either imports to AppNetworks that decide every connection
//! like the original policies, or every connection that differs is explained by the gap the
//! case is about (asserted by kind, never only "different").

use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::model::Backend;

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn round_trip(objects: &[Value], backend: Backend) -> (Import, Equivalence) {
    let imported = import(objects, &Options::default()).unwrap();
    let report = equivalence(objects, &imported, backend, &[]).unwrap();
    (imported, report)
}

/// Asserts the outcome: equivalent when `expected` is empty, else every difference explained
/// by a gap of one of the `expected` kinds (and each expected kind recorded).
fn assert_outcome(name: &str, objects: &[Value], backend: Backend, expected: &[GapKind]) {
    let (imported, report) = round_trip(objects, backend);
    let yaml = to_yaml(&imported).unwrap();
    if expected.is_empty() {
        assert!(report.equivalent(), "{name}:\n{yaml}\n{report}");
        return;
    }
    assert!(
        !report.equivalent(),
        "{name}: expected differences because of {expected:?}:\n{yaml}\n{report}"
    );
    for d in &report.differences {
        assert!(
            d.kinds.iter().any(|k| expected.contains(k)),
            "{name}: {} is explained by {:?}, expected one of {expected:?}:\n{yaml}\n{report}",
            d.describe(),
            d.reasons
        );
    }
    for k in expected {
        assert!(
            imported.gaps.iter().any(|g| g.kind == *k),
            "{name}: no gap of kind {k:?} recorded: {:?}",
            imported.gaps
        );
    }
}

#[test]
fn every_upstream_netpol_e2e_case_imports_to_equivalent_appnetworks() {
    // The cases of engine/netpol_e2e.rs (kubernetes/kubernetes
    // test/e2e/network/netpol/network_policy.go @ 008b3652959ca58af8be3fb5b6ecfe9ae7638282).
    // Each policy selects every pod of namespace x and leaves egress open, so the imported
    // all-pods tier opens egress explicitly; every pod of x is in that tier.
    let cases = crate::engine::netpol_e2e::case_objects();
    assert_eq!(cases.len(), 4);
    for (name, objects) in cases {
        for backend in [Backend::NetworkPolicy, Backend::Calico] {
            assert_outcome(name, &objects, backend, &[]);
        }
    }
}

/// The world of the engine's tests (engine/tests.rs `world`): namespaces prod (env=prod), dev
/// (env=dev), monitoring (team=obs); pods prod/web (http=80), prod/api (http=8080,
/// metrics=9090), prod/db (pg=5432, 8080 unnamed), dev/web, dev/api (http=8080),
/// monitoring/prom.
const ENGINE_WORLD: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring, labels: {team: obs}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]}]}
status: {podIP: 10.0.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, ports: [{name: pg, containerPort: 5432}, {containerPort: 8080}]}]}
status: {podIP: 10.0.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: dev, labels: {app: web}}
status: {podIP: 10.0.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: dev, labels: {app: api}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.2.2}
---
apiVersion: v1
kind: Pod
metadata: {name: prom, namespace: monitoring, labels: {app: prometheus}}
status: {podIP: 10.0.3.1}
";

fn netpol(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: prod}}\nspec:\n{spec}\n"
    )
}

#[test]
fn the_engine_tests_networkpolicy_scenarios_import_equivalent_or_explained() {
    // (engine test, policies, the gaps that explain every difference; none: equivalent)
    let cases: Vec<(&str, String, &[GapKind])> = vec![
        (
            "a_pod_is_isolated_only_once_selected_and_only_for_its_policy_types",
            netpol("api-in", "  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Ingress]"),
            &[],
        ),
        (
            "an_egress_only_policy_leaves_ingress_open",
            netpol(
                "api-out",
                "  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Egress]\n  egress:\n    - to: [{podSelector: {matchLabels: {app: db}}}]",
            ),
            &[],
        ),
        (
            "one_peer_with_both_selectors_is_and",
            netpol(
                "and",
                "  podSelector: {matchLabels: {app: api}}\n  ingress:\n    - from:\n        - namespaceSelector: {matchLabels: {env: dev}}\n          podSelector: {matchLabels: {app: web}}",
            ),
            &[],
        ),
        (
            "while_two_peers_are_or",
            netpol(
                "or",
                "  podSelector: {matchLabels: {app: api}}\n  ingress:\n    - from:\n        - namespaceSelector: {matchLabels: {env: dev}}\n        - podSelector: {matchLabels: {app: web}}",
            ),
            &[],
        ),
        (
            "absent_or_empty_from_allows_everyone",
            netpol(
                "p",
                "  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Ingress]\n  ingress: [{from: [], ports: []}]",
            ),
            &[],
        ),
        (
            "an_absent_ingress_list_denies_all",
            netpol("p", "  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Ingress]"),
            &[],
        ),
        (
            "a_pod_selector_alone_means_the_policy_namespace",
            netpol(
                "p",
                "  podSelector: {matchLabels: {app: api}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]",
            ),
            &[],
        ),
        (
            "an_empty_namespace_selector_means_every_namespace",
            netpol(
                "p",
                "  podSelector: {matchLabels: {app: api}}\n  ingress:\n    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}]\n    - from: [{namespaceSelector: {}}]\n      ports: [{port: 9090}]",
            ),
            // prod/db, in no tier, reaches api on 9090 through `namespaceSelector: {}`: written
            // as this namespace's pods outside `app In (api)`.
            &[],
        ),
        (
            "named_ports_resolve_on_the_destination_pod",
            netpol("api-in", "  podSelector: {matchLabels: {app: api}}\n  ingress: [{ports: [{port: http}]}]")
                + &netpol(
                    "web-out",
                    "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress: [{ports: [{port: http}]}]",
                ),
            // A rule with no peer admits the pods of prod in no tier (db) too, likewise.
            &[],
        ),
        (
            "ip_block_except_carves_addresses_out_and_pod_ips_count",
            netpol(
                "out",
                "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n    - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.2.0/24]}}]",
            ),
            &[],
        ),
        (
            "end_port_opens_a_range_and_protocol_defaults_to_tcp",
            netpol(
                "p",
                "  podSelector: {matchLabels: {app: api}}\n  ingress:\n    - ports: [{port: 8000, endPort: 8100}, {port: 53}, {protocol: UDP, port: 5353}]",
            ),
            &[],
        ),
        (
            "allows_are_a_union_and_a_connection_needs_both_ends",
            netpol("deny-all", "  podSelector: {}\n  policyTypes: [Ingress, Egress]")
                + &netpol(
                    "api",
                    "  podSelector: {matchLabels: {app: api}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 8080}]}]",
                )
                + &netpol(
                    "web",
                    "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress: [{to: [{podSelector: {matchLabels: {app: api}}}]}]",
                ),
            &[],
        ),
        (
            "an_external_address_needs_only_egress",
            netpol("deny-in", "  podSelector: {}\n  policyTypes: [Ingress]"),
            &[],
        ),
    ];
    for (name, policies, expected) in cases {
        let objects = docs(&format!("{ENGINE_WORLD}{policies}"));
        assert_outcome(name, &objects, Backend::NetworkPolicy, expected);
    }
}

#[test]
fn the_seed_style_classic_mistakes_import_equivalent() {
    // tests/fixtures/classic-mistakes.yaml: deny-all without DNS, OR'ed peers, an empty
    // namespace selector, an except outside its cidr, DNS over UDP only.
    let objects = docs(include_str!(
        "../../../../../tests/fixtures/classic-mistakes.yaml"
    ));
    assert_outcome("classic-mistakes", &objects, Backend::NetworkPolicy, &[]);
    let (imported, _) = round_trip(&objects, Backend::NetworkPolicy);
    let except = imported
        .gaps
        .iter()
        .find(|g| g.kind == GapKind::Except)
        .unwrap();
    assert_eq!(except.policy.name, "web-egress");
    assert!(
        except
            .message
            .contains("except blocks outside their cidr have no AppNetwork form"),
        "{}",
        except.message
    );
}

const SHOP: &str = "
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api}}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, namespace: shop, labels: {app: db}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{ipBlock: {cidr: 0.0.0.0/0}}]
    ports: [{port: 443}]
  egress:
  - to: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 8080}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: prometheus}}}]
    ports: [{port: 9090}]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: 5432}]
";

#[test]
fn a_deny_all_namespace_becomes_a_baseline_with_dns_and_tier_to_tier_flows() {
    let objects = docs(SHOP);
    for backend in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
        assert_outcome("shop", &objects, backend, &[]);
    }
    let (imported, _) = round_trip(&objects, Backend::NetworkPolicy);
    assert!(imported.gaps.is_empty(), "{:?}", imported.gaps);
    let app = &imported.apps[0];
    assert_eq!(app.namespace, "shop");
    assert!(app.spec.baseline.deny_ingress && app.spec.baseline.deny_egress);
    assert!(app.spec.dns.enabled);
    assert_eq!(app.spec.dns.namespace, "kube-system");
    let tiers: Vec<&str> = app.spec.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tiers, ["web", "api", "db"]);
    // web -> api on 8080 needs web's egress and api's ingress: both policies are named.
    let web_api = app
        .spec
        .flows
        .iter()
        .position(|f| f.from.tier.as_deref() == Some("web") && f.to.tier.as_deref() == Some("api"))
        .unwrap();
    let names: Vec<&str> = app.flow_sources[web_api]
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["allow-web", "api"]);
    let yaml = to_yaml(&imported).unwrap();
    assert!(yaml.contains("# from NetworkPolicy shop/allow-web, NetworkPolicy shop/api\n  - from:\n      tier: web"), "{yaml}");
    assert!(
        yaml.contains(
            "# baseline and dns from NetworkPolicy shop/allow-dns, NetworkPolicy shop/default-deny"
        ),
        "{yaml}"
    );
}

#[test]
fn an_ingress_only_policy_without_a_baseline_opens_egress_explicitly() {
    let objects = docs(
        "
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: shop, labels: {app: other}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: edge}}}], ports: [{port: 80}]}]
",
    );
    let (imported, report) = round_trip(&objects, Backend::NetworkPolicy);
    assert!(report.equivalent(), "{report}");
    let app = &imported.apps[0];
    assert!(!app.spec.baseline.deny_ingress && !app.spec.baseline.deny_egress);
    assert!(!app.spec.dns.enabled);
    // Every port of every protocol towards every address, written out.
    assert!(app.spec.flows.iter().any(|f| {
        f.from.tier.as_deref() == Some("web")
            && f.to.cidr.as_deref() == Some("0.0.0.0/0")
            && f.ports.as_ref().is_some_and(|p| p.len() == 3)
    }));
}

#[test]
fn calico_deny_rules_are_left_out_and_named_as_the_reason() {
    let objects = docs(
        "
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api}}
---
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: shop, labels: {app: api, quarantine: 'yes'}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: app == 'api'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'web'}
    destination: {ports: [8080]}
  - action: Deny
    source: {selector: quarantine == 'yes'}
  - action: Allow
    protocol: TCP
    destination: {ports: [9090]}
",
    );
    // The Allow after the Deny is left out: narrower (9090 denied to everyone but the
    // quarantined pod, which the Deny already refused), explained.
    assert_outcome("calico deny", &objects, Backend::Calico, &[GapKind::Deny]);
    let (imported, report) = round_trip(&objects, Backend::Calico);
    assert!(report
        .differences
        .iter()
        .all(|d| d.original && !d.imported && d.port == 9090));
    let g = imported
        .gaps
        .iter()
        .find(|g| g.field == "spec.ingress[1]")
        .unwrap();
    assert!(
        g.message
            .contains("this Calico Deny rule has no AppNetwork form"),
        "{}",
        g.message
    );
}

const CILIUM_L7: &str = "
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts:
    - ports: [{port: '8080', protocol: TCP}]
      rules:
        http: [{method: GET, path: /v1/.*}]
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts:
    - ports: [{port: '9092', protocol: TCP}]
      rules:
        kafka: [{topic: orders}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
  - toEndpoints: [{matchLabels: {app: api}}]
  - toFQDNs: [{matchName: api.example.com}]
    toPorts: [{ports: [{port: '443', protocol: TCP}]}]
";

#[test]
fn cilium_http_rules_and_fqdns_carry_over_while_other_l7_rules_are_named() {
    let objects = docs(CILIUM_L7);
    // The Kafka rule is left out: web -> api on 9092 differs, because of it.
    assert_outcome("cilium l7", &objects, Backend::Cilium, &[GapKind::L7]);
    let (imported, report) = round_trip(&objects, Backend::Cilium);
    assert!(
        report.differences.iter().all(|d| d.port == 9092),
        "{report}"
    );
    let g = imported
        .gaps
        .iter()
        .find(|g| g.kind == GapKind::L7)
        .unwrap();
    assert!(g
        .message
        .contains("this Cilium L7 rule (kafka) has no AppNetwork form"));
    let flows = &imported.apps[0].spec.flows;
    let http = flows.iter().find(|f| f.http.is_some()).unwrap();
    assert_eq!(http.from.tier.as_deref(), Some("web"));
    assert_eq!(
        http.http.as_ref().unwrap()[0].path.as_deref(),
        Some("/v1/.*")
    );
    assert!(flows
        .iter()
        .any(|f| f.to.fqdn.as_deref() == Some("api.example.com")));
}

#[test]
fn a_policy_that_opens_egress_to_everything_is_written_out_port_by_port() {
    let objects = docs(
        "
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-anywhere, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{}]
",
    );
    let (imported, report) = round_trip(&objects, Backend::NetworkPolicy);
    assert!(report.equivalent(), "{report}");
    let yaml = to_yaml(&imported).unwrap();
    assert!(yaml.contains("cidr: 0.0.0.0/0"), "{yaml}");
    assert!(yaml.contains("endPort: 65535"), "{yaml}");
}

#[test]
fn importing_nothing_is_an_error_that_names_why() {
    let e = import(&docs(SHOP)[..3], &Options::default()).unwrap_err();
    assert_eq!(e.reason(), "NoPolicies");
    let e = import(
        &docs(SHOP),
        &Options {
            namespaces: vec!["elsewhere".into()],
            cluster_cidrs: Vec::new(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("\"elsewhere\""), "{e}");
}

#[test]
fn hand_written_calico_allow_policies_import_equivalent_and_a_global_policy_stays_in_force() {
    let objects = docs(
        "
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api, tier: backend}}
---
apiVersion: v1
kind: Pod
metadata: {name: prom, namespace: monitoring, labels: {app: prometheus}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  order: 100
  selector: app == 'api' && has(tier)
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'web'}
    destination: {ports: [8080]}
  - action: Allow
    protocol: TCP
    source: {namespaceSelector: kubernetes.io/metadata.name == 'monitoring', selector: app == 'prometheus'}
    destination: {ports: ['9090:9091']}
  egress:
  - action: Allow
    protocol: UDP
    destination: {nets: [10.96.0.10/32], ports: [53]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: app == 'web'
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination: {selector: app == 'api', ports: [8080]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-metadata}
spec:
  order: 10
  selector: all()
  types: [Egress]
  egress:
  - action: Deny
    destination: {nets: [169.254.169.254/32]}
  - action: Pass
",
    );
    for backend in [Backend::Calico, Backend::NetworkPolicy] {
        assert_outcome("calico allows", &objects, backend, &[]);
    }
    let (imported, _) = round_trip(&objects, Backend::Calico);
    let g = imported
        .gaps
        .iter()
        .find(|g| g.kind == GapKind::ClusterWide)
        .unwrap();
    assert_eq!(g.policy.name, "deny-metadata");
    let app = &imported.apps[0];
    let api = &app.spec.tiers[0];
    assert_eq!(api.name, "api");
    // `has(tier)` is the Kubernetes `Exists`.
    let exprs = api.selector.match_expressions.as_ref().unwrap();
    assert_eq!(
        (exprs[0].key.as_str(), exprs[0].operator.as_str()),
        ("tier", "Exists")
    );
    let range = app
        .spec
        .flows
        .iter()
        .find(|f| f.from.namespace.as_deref() == Some("monitoring"))
        .unwrap();
    let p = &range.ports.as_ref().unwrap()[0];
    assert_eq!((p.port, p.end_port), (Some(9090), Some(9091)));
}

#[test]
fn a_direction_left_open_for_pods_other_policies_isolate_is_not_opened_and_is_named() {
    let objects = docs(
        "
apiVersion: v1
kind: Pod
metadata: {name: web-front, namespace: shop, labels: {app: web, tier: front}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-plain, namespace: shop, labels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: front-out, namespace: shop}
spec:
  podSelector: {matchLabels: {tier: front}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 192.0.2.0/24}}], ports: [{port: 443}]}]
",
    );
    // web-plain's egress was open; opening it for tier web would open web-front's too (and
    // likewise ingress for the tier of front-out). Narrower, never wider.
    assert_outcome(
        "open direction",
        &objects,
        Backend::NetworkPolicy,
        &[GapKind::OpenDirection],
    );
    let (_, report) = round_trip(&objects, Backend::NetworkPolicy);
    let odd: Vec<String> = report
        .differences
        .iter()
        .filter(|d| !d.original || d.imported)
        .map(Difference::describe)
        .collect();
    assert!(odd.is_empty(), "{odd:#?}\n{report}");
}
