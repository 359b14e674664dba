//! Properties of random valid AppNetworks: every backend's rendering allows exactly the declared
//! flows plus DNS (`tierflow::cli::verify`), and the three backends reach the same
//! representative endpoints on the same ports and protocols.
//!
//! The generator covers tiers with overlapping and expression selectors, tier ports over TCP,
//! UDP and SCTP (numbers, a range with `endPort`, and container port names), flows between tiers (with HTTP rules now and then, which count as their L4
//! ports), namespace peers (by name, by label selector, every namespace; with and without pod
//! selectors), CIDR peers with `except` (some covering pod address ranges), `world` peers (the simulation's
//! made-up cluster ranges left out; Cilium's world entity), the baseline both
//! ways, DNS on and off, and a NodeLocal DNSCache address. Left out on purpose:
//! - `fqdn` and `kubeAPIServer` peers: not checkable offline on every backend (verify says so);
//!   `tests/cli.rs` covers how verify reports them.
//! - non-tier peers holding pods of the app's own namespace outside every tier: validation
//!   refuses them (tierflow itself isolates those pods; see the fixed tests at the end). Peers
//!   that can reach into the app's namespace by labels (`allNamespaces`, a namespace selector the
//!   app's namespace matches) get pod selectors no tier matches; the implied tier flows of an
//!   `allNamespaces` peer that does select a tier have their own fixed test.

use proptest::prelude::*;
use serde_json::{json, Value};
use tierflow::cli::{reachability, verify, Matrix};
use tierflow::crd::AppNetworkSpec;
use tierflow::model::{AppModel, Backend};
use tierflow::validate;

const NAMESPACE: &str = "production";
const TIER_NAMES: [&str; 4] = ["web", "api", "db", "cache"];
const PORT_NUMBERS: [u16; 7] = [80, 443, 5432, 8080, 9090, 6379, 53];

#[derive(Clone, Debug)]
struct TierPlan {
    selector: u8,
    ports: Vec<(u8, u8)>,
}

#[derive(Clone, Debug)]
enum Outside {
    Namespace { ns: u8, pods: u8 },
    NamespaceSelector { sel: u8, pods: u8 },
    All { pods: u8 },
    Cidr(u8),
    World,
    Own { pods: u8 },
}

#[derive(Clone, Debug)]
struct FlowPlan {
    kind: u8,
    a: u8,
    b: u8,
    outside: Outside,
    ports: Option<Vec<(u8, u8)>>,
    http: bool,
}

#[derive(Clone, Debug)]
struct Plan {
    tiers: Vec<TierPlan>,
    flows: Vec<FlowPlan>,
    deny_ingress: bool,
    deny_egress: bool,
    dns: u8,
}

/// A numbered port (0-6), a range (7), or a container port name (8, 9); and the protocol.
fn port_plan() -> impl Strategy<Value = (u8, u8)> {
    (0u8..10, 0u8..10)
}

fn outside() -> impl Strategy<Value = Outside> {
    prop_oneof![
        (0u8..3, 0u8..4).prop_map(|(ns, pods)| Outside::Namespace { ns, pods }),
        (0u8..6, 0u8..4).prop_map(|(sel, pods)| Outside::NamespaceSelector { sel, pods }),
        (1u8..4).prop_map(|pods| Outside::All { pods }),
        (0u8..9).prop_map(Outside::Cidr),
        Just(Outside::World),
        (1u8..4).prop_map(|pods| Outside::Own { pods }),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    let tier = (0u8..7, prop::collection::vec(port_plan(), 0..3))
        .prop_map(|(selector, ports)| TierPlan { selector, ports });
    let flow = (
        0u8..3,
        0u8..4,
        0u8..4,
        outside(),
        prop::option::of(prop::collection::vec(port_plan(), 1..3)),
        any::<bool>(),
    )
        .prop_map(|(kind, a, b, outside, ports, http)| FlowPlan {
            kind,
            a,
            b,
            outside,
            ports,
            http,
        });
    (
        prop::collection::vec(tier, 1..5),
        prop::collection::vec(flow, 0..7),
        any::<bool>(),
        any::<bool>(),
        0u8..5,
    )
        .prop_map(|(tiers, flows, deny_ingress, deny_egress, dns)| Plan {
            tiers,
            flows,
            deny_ingress,
            deny_egress,
            dns,
        })
}

fn port(p: (u8, u8)) -> Value {
    let protocol = match p.1 {
        0..=6 => "TCP",
        7 | 8 => "UDP",
        _ => "SCTP",
    };
    match p.0 {
        7 => json!({"port": 30000, "endPort": 30010, "protocol": protocol}),
        8 => json!({"name": "http", "protocol": protocol}),
        9 => json!({"name": "metrics", "protocol": protocol}),
        n => {
            json!({"port": PORT_NUMBERS[usize::from(n) % PORT_NUMBERS.len()], "protocol": protocol})
        }
    }
}

fn tier_selector(variant: u8, name: &str) -> Value {
    match variant {
        0 => json!({"matchLabels": {"app": name}}),
        1 => json!({"matchLabels": {"app": name, "track": "stable"}}),
        2 => json!({"matchLabels": {"app": name},
                    "matchExpressions": [{"key": "track", "operator": "In", "values": ["canary", "stable"]}]}),
        3 => json!({"matchExpressions": [
                    {"key": "app", "operator": "In", "values": [name]},
                    {"key": "legacy", "operator": "DoesNotExist"}]}),
        4 => json!({"matchLabels": {"app": name},
                    "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}),
        // Shared by every tier using it: tiers that overlap.
        5 => json!({"matchLabels": {"role": "shared"}}),
        _ => json!({"matchExpressions": [{"key": format!("tier-{name}"), "operator": "Exists"}]}),
    }
}

/// Pod selectors of namespace peers (0: none).
fn pod_selector(variant: u8) -> Option<Value> {
    match variant {
        0 => None,
        1 => Some(json!({"matchLabels": {"app": "prometheus"}})),
        // The label of a tier, in another namespace: the namespace condition must hold too.
        2 => Some(json!({"matchLabels": {"app": "web"}})),
        _ => Some(json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]})),
    }
}

fn with_pods(mut peer: Value, pods: u8) -> Value {
    if let Some(sel) = pod_selector(pods) {
        peer["selector"] = sel;
    }
    peer
}

const CIDRS: [(&str, &[&str]); 9] = [
    // Every IPv4 address: the pods get IPv6 addresses.
    ("0.0.0.0/0", &[]),
    ("10.0.0.0/30", &["10.0.0.0/31"]),
    ("0.0.0.0/0", &["169.254.169.254/32"]),
    // Covers most pod ranges but leaves out 10.244.0.0/16.
    ("10.0.0.0/8", &["10.244.0.0/16"]),
    ("203.0.113.0/24", &[]),
    ("198.51.100.7/32", &[]),
    ("192.168.0.0/16", &["192.168.1.0/24", "192.168.2.0/24"]),
    ("2001:db8::/32", &[]),
    ("100.64.0.0/10", &[]),
];

/// The peer outside the tiers (`source`: it sends).
///
/// Handled explicitly (see the module documentation): a peer that can hold pods of the app's
/// own namespace (a `selector` alone, `allNamespaces`, the `NotIn` namespace selector) gets a
/// pod selector no tier matches, and an own-namespace peer on a side the baseline governs
/// becomes a `monitoring` peer.
fn outside_peer(o: &Outside, plan: &Plan, source: bool) -> Value {
    let governed = if source {
        plan.deny_egress
    } else {
        plan.deny_ingress
    };
    // Pod selectors that match no tier (and not the "other" pod): 1 and 3.
    let untiered = |pods: u8| {
        if pods.is_multiple_of(2) {
            pods + 1
        } else {
            pods
        }
    };
    match o {
        Outside::Namespace { ns, pods } => {
            let name = ["monitoring", "ingress", "kube-system"][usize::from(*ns) % 3];
            with_pods(json!({ "namespace": name }), *pods)
        }
        Outside::NamespaceSelector { sel: 3 | 5, pods } if governed => {
            with_pods(json!({"namespace": "monitoring"}), *pods)
        }
        Outside::NamespaceSelector { sel, pods } => {
            let (s, pods) = match sel {
                0 => (json!({"matchLabels": {"team": "ops"}}), *pods),
                1 => (
                    json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["ops", "sre"]}]}),
                    *pods,
                ),
                2 => (
                    json!({"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}),
                    *pods,
                ),
                4 => (
                    json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
                    *pods,
                ),
                // These also match the app's own namespace.
                3 => (
                    json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}),
                    untiered(*pods),
                ),
                _ => (
                    json!({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}),
                    untiered(*pods),
                ),
            };
            with_pods(json!({ "namespaceSelector": s }), pods)
        }
        Outside::All { pods } => with_pods(json!({"allNamespaces": true}), untiered(*pods)),
        Outside::Cidr(i) => {
            let (cidr, except) = CIDRS[usize::from(*i) % CIDRS.len()];
            let mut p = json!({ "cidr": cidr });
            if !except.is_empty() {
                p["except"] = json!(except);
            }
            p
        }
        Outside::World => json!({"world": true}),
        // Pods of the app's own namespace outside every tier are refused by validation (tierflow
        // itself isolates them); the plan's "own" peers become pods of another namespace.
        Outside::Own { pods } => with_pods(json!({"namespace": "monitoring"}), *pods),
    }
}

fn spec_of(plan: &Plan) -> Value {
    let n = plan.tiers.len();
    let tiers: Vec<Value> = plan
        .tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = TIER_NAMES[i];
            let ports: Vec<Value> = t.ports.iter().map(|p| port(*p)).collect();
            json!({"name": name, "selector": tier_selector(t.selector, name), "ports": ports})
        })
        .collect();
    let mut flows = Vec::new();
    for f in &plan.flows {
        let a = usize::from(f.a) % n;
        let b = usize::from(f.b) % n;
        let tier = |i: usize| json!({"tier": TIER_NAMES[i]});
        let (from, to, to_tier) = match f.kind {
            0 => (tier(a), tier(b), Some(b)),
            1 => (outside_peer(&f.outside, plan, true), tier(a), Some(a)),
            _ => (tier(a), outside_peer(&f.outside, plan, false), None),
        };
        let tier_has_ports = to_tier.is_some_and(|t| !plan.tiers[t].ports.is_empty());
        let ports: Option<Vec<Value>> = match (&f.ports, tier_has_ports) {
            (Some(p), _) => Some(p.iter().map(|p| port(*p)).collect()),
            (None, true) => None,
            (None, false) => Some(vec![port((f.a, 0))]),
        };
        let mut flow = json!({"from": from, "to": to});
        if let Some(p) = &ports {
            flow["ports"] = json!(p);
        }
        let effective: Vec<Value> = match (&ports, to_tier) {
            (Some(p), _) => p.clone(),
            (None, Some(t)) => plan.tiers[t].ports.iter().map(|p| port(*p)).collect(),
            (None, None) => Vec::new(),
        };
        if f.http && f.kind == 0 && effective.iter().all(|p| p["protocol"] == "TCP") {
            flow["http"] = json!([{"method": "GET", "path": "/api/.*"}]);
        }
        flows.push(flow);
    }
    let dns = match plan.dns {
        0 => json!({"enabled": false}),
        1 => json!({"enabled": true, "nodeLocalAddress": "169.254.20.10"}),
        2 => json!({"enabled": true, "namespace": "dns-system",
                    "selector": {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["coredns", "kube-dns"]}]}}),
        _ => json!({"enabled": true}),
    };
    json!({
        "baseline": {"denyIngress": plan.deny_ingress, "denyEgress": plan.deny_egress},
        "dns": dns,
        "tiers": tiers,
        "flows": flows,
    })
}

fn model_of(spec: &Value) -> Result<AppModel, TestCaseError> {
    let spec: AppNetworkSpec = serde_json::from_value(spec.clone())
        .map_err(|e| TestCaseError::fail(format!("generated spec does not parse: {e}")))?;
    validate::app_network("shop", NAMESPACE, &spec)
        .map_err(|e| TestCaseError::fail(format!("generated spec is invalid: {e}")))
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default()
}

/// The first cells where two matrices differ, for the failure message.
fn differences(a: &Matrix, b: &Matrix) -> Vec<String> {
    let mut out = Vec::new();
    for (key, va) in &a.cells {
        if b.cells.get(key) != Some(va) {
            let (i, j, p) = key;
            out.push(format!(
                "{} -> {} on {p}: {va} vs {:?}",
                a.endpoints[*i],
                a.endpoints[*j],
                b.cells.get(key)
            ));
        }
    }
    for key in b.cells.keys() {
        if !a.cells.contains_key(key) {
            out.push(format!("{key:?} only in one matrix"));
        }
    }
    out.truncate(10);
    out
}

/// 64 cases (a second or so); `TIERFLOW_PROPTEST_CASES` asks for more.
fn cases() -> u32 {
    std::env::var("TIERFLOW_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_backend_allows_exactly_the_declared_flows_and_dns(plan in plan()) {
        let spec = spec_of(&plan);
        let model = model_of(&spec)?;
        let v = verify(&model);
        prop_assert!(v.passed(), "spec:\n{}\n{}", yaml(&spec), v);
    }

    #[test]
    fn the_three_backends_reach_the_same_endpoints_on_the_same_ports(plan in plan()) {
        let spec = spec_of(&plan);
        let model = model_of(&spec)?;
        let matrices: Vec<Matrix> = Backend::ALL
            .into_iter()
            .map(|b| reachability(&model, b))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("the engine cannot read a rendering: {e}")))?;
        for (b, m) in Backend::ALL.iter().zip(&matrices).skip(1) {
            prop_assert!(
                *m == matrices[0],
                "spec:\n{}\nNetworkPolicy vs {}: {:#?}",
                yaml(&spec),
                b.as_str(),
                differences(&matrices[0], m)
            );
        }
    }
}

#[test]
fn the_generator_produces_valid_specs_of_every_shape() {
    // A fixed plan touching every peer kind, so a validation change that rejects one of them
    // fails here with the reason rather than as a rejected proptest case.
    let outsides = [
        Outside::Namespace { ns: 0, pods: 1 },
        Outside::NamespaceSelector { sel: 1, pods: 0 },
        Outside::All { pods: 2 },
        Outside::Cidr(0),
        Outside::Cidr(4),
        Outside::World,
        Outside::Own { pods: 3 },
    ];
    let plan = Plan {
        tiers: (0..4)
            .map(|i| TierPlan {
                selector: i * 2,
                ports: vec![(i, 0), (i + 1, 8)],
            })
            .collect(),
        flows: outsides
            .iter()
            .enumerate()
            .map(|(i, o)| FlowPlan {
                kind: u8::try_from(i % 3).unwrap(),
                a: u8::try_from(i).unwrap(),
                b: 1,
                outside: o.clone(),
                ports: None,
                http: true,
            })
            .collect(),
        deny_ingress: false,
        deny_egress: true,
        dns: 1,
    };
    let spec = spec_of(&plan);
    let model = model_of(&spec).unwrap();
    let v = verify(&model);
    assert!(v.passed(), "spec:\n{}\n{v}", yaml(&spec));
}

#[test]
fn flows_from_untiered_pods_of_the_own_namespace_are_refused() {
    // tierflow's own baseline would block them on every backend; validation says so instead.
    let spec = json!({
        "tiers": [{"name": "api", "selector": {"matchLabels": {"app": "api"}}, "ports": [{"port": 8080}]}],
        "flows": [{"from": {"selector": {"matchLabels": {"app": "batch"}}}, "to": {"tier": "api"}}],
    });
    assert!(model_of(&spec).is_err());
}

#[test]
fn flows_from_peers_that_hold_tier_pods_are_allowed() {
    let spec = json!({
        "baseline": {"denyIngress": false, "denyEgress": false},
        "tiers": [
            {"name": "web", "selector": {"matchLabels": {"app": "web"}}, "ports": [{"port": 8080}]},
            {"name": "api", "selector": {"matchLabels": {"app": "api"}}, "ports": [{"port": 8080}]},
        ],
        "flows": [{"from": {"allNamespaces": true, "selector": {"matchLabels": {"app": "web"}}}, "to": {"tier": "api"}}],
    });
    let model = model_of(&spec).unwrap();
    let v = verify(&model);
    assert!(v.passed(), "{v}");
}

#[test]
fn more_ports_than_cilium_takes_in_one_entry_are_all_allowed() {
    // Cilium takes at most 40 ports per toPorts entry; the renderer splits longer lists.
    let ports: Vec<Value> = (1000..1045).map(|p| json!({"port": p})).collect();
    let spec = json!({
        "tiers": [
            {"name": "web", "selector": {"matchLabels": {"app": "web"}}},
            {"name": "api", "selector": {"matchLabels": {"app": "api"}}, "ports": ports},
        ],
        "flows": [{"from": {"tier": "web"}, "to": {"tier": "api"}}],
    });
    let model = model_of(&spec).unwrap();
    let v = verify(&model);
    assert!(v.passed(), "{v}");
    let cilium = reachability(&model, Backend::Cilium).unwrap();
    let (web, api) = (
        cilium.endpoints.iter().position(|e| e == "web").unwrap(),
        cilium.endpoints.iter().position(|e| e == "api").unwrap(),
    );
    assert_eq!(
        cilium
            .cells
            .iter()
            .filter(|((i, j, _), allowed)| *i == web && *j == api && **allowed)
            .count(),
        45
    );
}

// ---------------------------------------------------------------------------------------------
// What the CNIs accept: for generated AppNetworks and ClusterBaselines with the inputs that
// break CNI rules (long label keys, dotted names, many ports, many exclusions, arbitrary HTTP
// paths), every object planned for Calico and Cilium passes `tierflow::admit`, or the input is
// held with reason `BackendLimit` and a message naming the limit (or, on Cilium, with
// `LabelNotInIdentity` for a tier selected on a label outside pods' identities).

mod admission {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use tierflow::admit;
    use tierflow::crd::{AppNetworkSpec, ClusterBaselineSpec};
    use tierflow::model::Backend;
    use tierflow::plan::{self, AppInput, Cluster, ClusterBaselineInput, HoldReason, Nothing};

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("app".to_string()),
            (1usize..64).prop_map(|n| format!("k{}", "e".repeat(n - 1))),
            (1usize..63).prop_map(|n| format!("example.com/{}", "k".repeat(n))),
            // labels Cilium's default identity filter leaves out of pods' identities
            Just("statefulset.kubernetes.io/pod-name".to_string()),
            Just("pod-template-hash".to_string()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("/api/.*".to_string()),
            Just("*.js".to_string()),
            Just("/static/**".to_string()),
            Just("/(?=x)".to_string()),
            Just("(a)\\1".to_string()),
            "[a-z/*.+?(){}\\[\\]\\\\|^$]{1,12}",
            // anything printable, Unicode included
            "\\PC{1,16}",
        ]
    }

    prop_compose! {
        fn app_spec()(tier_key in key(), ns_key in key(), ports in 1usize..70,
                      path in path(), dotted in any::<bool>())
                     -> (String, String) {
            let ports: Vec<String> = (0..ports).map(|p| format!("{{port: {}}}", 1000 + p)).collect();
            let yaml = format!(
                "tiers:\n  - {{name: api, selector: {{matchLabels: {{'{tier_key}': api}}}}, ports: [{}]}}\n  - {{name: web, selector: {{matchLabels: {{app: web}}}}}}\nflows:\n  - {{from: {{tier: web}}, to: {{tier: api}}, http: [{{path: {}}}]}}\n  - {{from: {{namespaceSelector: {{matchLabels: {{'{ns_key}': ops}}}}}}, to: {{tier: api}}}}\n",
                ports.join(", "),
                serde_json::to_string(&path).unwrap(),
            );
            (if dotted { "payments.v2".to_string() } else { "shop".to_string() }, yaml)
        }
    }

    fn check(p: &plan::Plan) -> Result<(), TestCaseError> {
        for o in &p.objects {
            prop_assert!(
                admit::report(o.body()).is_none(),
                "{}: {:?}",
                o.name(),
                admit::report(o.body())
            );
        }
        for (_, a) in p.apps() {
            if let Some(h) = &a.hold {
                if h.reason == HoldReason::LabelNotInIdentity {
                    prop_assert!(h.message.contains("identity label filter"), "{}", h.message);
                    continue;
                }
                prop_assert_eq!(h.reason, HoldReason::BackendLimit, "{}", h.message);
                prop_assert!(
                    h.message.contains("will not enforce") || h.message.contains("refuses")
                );
            }
        }
        for c in &p.cluster_baselines {
            if let Some(h) = &c.hold {
                prop_assert_eq!(h.reason, HoldReason::BackendLimit, "{}", h.message);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn every_object_for_calico_and_cilium_is_admitted_or_the_input_is_held(
            (name, yaml) in app_spec(),
            exclusions in 0usize..150,
            cb_key in key(),
        ) {
            let Ok(spec) = serde_yaml::from_str::<AppNetworkSpec>(&yaml) else { return Ok(()) };
            let excl: Vec<String> = (0..exclusions).map(|i| format!("legacy-{i}")).collect();
            let cb: ClusterBaselineSpec = serde_yaml::from_str(&format!(
                "{{excludeNamespaces: [{}], namespaceSelector: {{matchLabels: {{'{cb_key}': x}}}}}}",
                excl.join(", ")
            )).unwrap();
            let app = AppInput { name, namespace: "prod".into(), uid: None, generation: None, spec };
            let cbi = ClusterBaselineInput { name: "all.v1".into(), uid: None, generation: None, spec: cb };
            for backend in [Backend::Calico, Backend::Cilium] {
                let cluster = Cluster { forced_backend: Some(backend), operator_namespace: "tierflow-system".into(), ..Cluster::default() };
                let p = plan::plan(std::slice::from_ref(&app), std::slice::from_ref(&cbi), &BTreeMap::new(), &cluster, &Nothing);
                check(&p)?;
            }
        }
    }
}

/// `tierflow import` of a rendering (issue 16): the imported AppNetworks, rendered for the same
/// backend, decide every connection like the objects they were imported from, on the same
/// pods and endpoints (the import's own simulation, `adopt::import::equivalence`).
mod import_round_trip {
    use super::*;
    use tierflow::adopt::import::{equivalence, import, Options};
    use tierflow::cli::verify_objects;
    use tierflow::plan::app_objects;
    use tierflow::render::Env;
    use tierflow::verify::endpoints::assumed_cluster;

    fn round_trip(model: &AppModel, backend: Backend) -> Result<(), TestCaseError> {
        let env = Env {
            api_server: Vec::new(),
            cluster_cidrs: assumed_cluster(&[]),
        };
        let (objects, _) = app_objects(model, backend, &env);
        let objects: Vec<Value> = objects.into_iter().map(|o| o.into_value()).collect();
        let options = Options {
            namespaces: vec![NAMESPACE.to_string()],
            cluster_cidrs: Vec::new(),
        };
        let imported = import(&objects, &options)
            .map_err(|e| TestCaseError::fail(format!("import fails: {e}")))?;
        let report = equivalence(&objects, &imported, backend, &[])
            .map_err(|e| TestCaseError::fail(format!("equivalence fails: {e}")))?;
        let text = tierflow::adopt::import::to_yaml(&imported).unwrap_or_default();
        prop_assert!(
            report.equivalent(),
            "{}: imported:\n{}\n{}",
            backend.as_str(),
            text,
            report
        );
        // And on the original's own representatives (with near misses): the imported
        // AppNetworks' rendering allows exactly the original intent.
        let mut rendered = Vec::new();
        for app in &imported.apps {
            let m = validate::app_network(&app.name, &app.namespace, &app.spec)
                .map_err(|e| TestCaseError::fail(format!("imported spec is invalid: {e}")))?;
            rendered.extend(
                app_objects(&m, backend, &env)
                    .0
                    .into_iter()
                    .map(|o| o.into_value()),
            );
        }
        let held = verify_objects(model, rendered, backend, &[]);
        prop_assert!(
            held.passed(),
            "{}: imported:\n{}\n{:#?}",
            backend.as_str(),
            text,
            held.differences
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn importing_a_rendering_gives_appnetworks_that_reach_exactly_the_same(plan in plan()) {
            let spec = spec_of(&plan);
            let model = model_of(&spec)?;
            for backend in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
                round_trip(&model, backend).map_err(|e| {
                    TestCaseError::fail(format!("spec:\n{}\n{e}", yaml(&spec)))
                })?;
            }
        }
    }
}
