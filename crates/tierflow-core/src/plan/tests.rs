//! The planner's decisions, without a cluster: what is held, what stays, what the baselines
//! merge, and that status never enters into it.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::crd::{AppNetworkSpec, ClusterBaselineSpec};
use crate::render::ObjectKind;

const SHOP: &str = r#"
tiers:
  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 8080}]}
  - {name: db, selector: {matchLabels: {app: db}}, ports: [{port: 5432}]}
flows:
  - {from: {tier: web}, to: {tier: db}}
"#;

fn spec(yaml: &str) -> AppNetworkSpec {
    serde_yaml::from_str(yaml).unwrap()
}

fn app(yaml: &str) -> AppInput {
    AppInput {
        name: "shop".into(),
        namespace: "prod".into(),
        uid: Some("uid-shop".into()),
        generation: Some(2),
        spec: spec(yaml),
    }
}

fn invalid_app() -> AppInput {
    app(&format!(
        "{SHOP}  - {{from: {{tier: nosuch}}, to: {{tier: db}}}}\n"
    ))
}

fn cb(yaml: &str) -> ClusterBaselineInput {
    ClusterBaselineInput {
        name: "default".into(),
        uid: Some("uid-cb".into()),
        generation: Some(3),
        spec: serde_yaml::from_str::<ClusterBaselineSpec>(yaml).unwrap(),
    }
}

fn cluster() -> Cluster {
    Cluster {
        operator_namespace: "tierflow-system".into(),
        ..Cluster::default()
    }
}

fn labels(ns: &str) -> Labels {
    BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), ns.to_string())])
}

/// What tierflow's objects say, made up for a test.
#[derive(Default)]
struct Fake {
    baselines: BTreeMap<(String, ObjectKind), Records>,
    cluster_objects: BTreeSet<(ObjectKind, String)>,
}

impl Observed for Fake {
    fn records(&self, namespace: &str, kind: ObjectKind) -> Option<Records> {
        self.baselines.get(&(namespace.to_string(), kind)).cloned()
    }
    fn cluster_baseline_record(&self, name: &str) -> Option<(ObjectKind, Record)> {
        let key = cluster_baseline_key(name);
        self.baselines
            .iter()
            .find_map(|((_, kind), r)| r.get(&key).map(|r| (*kind, r.clone())))
    }
    fn cluster_object_exists(&self, kind: ObjectKind, name: &str) -> bool {
        self.cluster_objects.contains(&(kind, name.to_string()))
    }
}

/// The records a baseline carries after `plan` applied it.
fn recorded(objects: &[Object]) -> Records {
    let a = objects[0]
        .body()
        .pointer("/metadata/annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    records_of(&a)
}

fn denies(o: &Object) -> (bool, bool) {
    let types = o.body()["spec"]["policyTypes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (
        types.iter().any(|t| t == "Ingress"),
        types.iter().any(|t| t == "Egress"),
    )
}

fn plan_one(
    apps: &[&AppInput],
    cbs: &[ClusterBaselineInput],
    observed: &dyn Observed,
) -> (NamespacePlan, Vec<Object>) {
    let cbs = cluster_baselines(cbs, &cluster(), observed);
    let p = namespace("prod", &labels("prod"), apps, &cbs, &cluster(), observed);
    let b = p.baselines(&cluster(), &BTreeSet::new());
    (p, b)
}

#[test]
fn a_valid_app_gets_its_tier_objects_and_a_baseline_that_records_its_wish() {
    let shop = app(SHOP);
    let (p, baselines) = plan_one(&[&shop], &[], &Nothing);
    assert!(!p.apps[0].held());
    assert_eq!(p.allows().count(), 2);
    assert_eq!(baselines.len(), 1);
    assert_eq!(denies(&baselines[0]), (true, true));
    let records = recorded(&baselines);
    let mine = &records[&app_key("shop")];
    assert_eq!(mine.generation, Some(2));
    assert!(mine
        .wish
        .as_ref()
        .is_some_and(|w| w.deny_ingress && w.deny_egress));
    // The owner is on the baseline, as a non-controller reference.
    assert_eq!(
        baselines[0].body()["metadata"]["ownerReferences"][0]["uid"],
        "uid-shop"
    );
}

#[test]
fn an_invalid_app_is_held_and_the_share_it_recorded_stays_in_the_baseline() {
    let (_, applied) = plan_one(&[&app(SHOP)], &[], &Nothing);
    let observed = Fake {
        baselines: BTreeMap::from([(
            ("prod".into(), ObjectKind::NetworkPolicy),
            recorded(&applied),
        )]),
        ..Fake::default()
    };
    let broken = invalid_app();
    let (p, baselines) = plan_one(&[&broken], &[], &observed);
    let hold = p.apps[0].hold.as_ref().expect("held");
    assert_eq!(hold.reason, HoldReason::InvalidSpec);
    assert!(hold.message.contains("nosuch"), "{}", hold.message);
    assert_eq!(p.allows().count(), 0, "a held app renders nothing new");
    assert!(p.keeps(ObjectKind::NetworkPolicy, Some("uid-shop"), false));
    // The baseline is exactly the one in place: same body, same records.
    assert_eq!(baselines, applied);
}

#[test]
fn an_invalid_app_that_never_applied_holds_nothing_and_opens_nothing_new() {
    let broken = invalid_app();
    let (p, baselines) = plan_one(&[&broken], &[], &Nothing);
    assert!(p.apps[0].held());
    assert!(baselines.is_empty());
}

#[test]
fn an_app_whose_allows_are_not_in_place_contributes_what_it_recorded_last() {
    // Applied before: deny ingress only.
    let before = app(&format!(
        "baseline: {{denyIngress: true, denyEgress: false}}\n{SHOP}"
    ));
    let (_, applied) = plan_one(&[&before], &[], &Nothing);
    assert_eq!(denies(&applied[0]), (true, false));
    let observed = Fake {
        baselines: BTreeMap::from([(
            ("prod".into(), ObjectKind::NetworkPolicy),
            recorded(&applied),
        )]),
        ..Fake::default()
    };
    // Now it also denies egress, but one of its allows could not be written (a name conflict).
    let now = app(SHOP);
    let cbs = cluster_baselines(&[], &cluster(), &observed);
    let p = namespace(
        "prod",
        &labels("prod"),
        &[&now],
        &cbs,
        &cluster(),
        &observed,
    );
    let not_in_place = BTreeSet::from(["shop".to_string()]);
    let b = p.baselines(&cluster(), &not_in_place);
    assert_eq!(
        denies(&b[0]),
        (true, false),
        "egress is denied only once its allows are in place"
    );
    let b = p.baselines(&cluster(), &BTreeSet::new());
    assert_eq!(denies(&b[0]), (true, true));
    // With nothing recorded, a brand-new app whose allows failed asks for nothing yet.
    let p = namespace("prod", &labels("prod"), &[&now], &cbs, &cluster(), &Nothing);
    assert!(p.baselines(&cluster(), &not_in_place).is_empty());
}

#[test]
fn audit_is_held_on_backends_without_staged_policies_and_staged_on_calico() {
    for (backend, held) in [("NetworkPolicy", true), ("Cilium", true), ("Calico", false)] {
        let a = app(&format!("backend: {backend}\nmode: Audit\n{SHOP}"));
        let (p, baselines) = plan_one(&[&a], &[], &Nothing);
        assert_eq!(p.apps[0].held(), held, "{backend}");
        if held {
            assert_eq!(
                p.apps[0].hold.as_ref().unwrap().reason,
                HoldReason::AuditUnsupported
            );
        } else {
            assert!(p
                .allows()
                .all(|o| o.kind() == ObjectKind::CalicoStagedNetworkPolicy));
            assert_eq!(baselines[0].kind(), ObjectKind::CalicoStagedNetworkPolicy);
        }
    }
}

#[test]
fn a_backend_whose_api_is_not_served_holds_the_app_and_keeps_its_baseline_kind() {
    let a = app(&format!("backend: Cilium\n{SHOP}"));
    let mut c = cluster();
    c.served = Some(BTreeSet::from([ObjectKind::NetworkPolicy]));
    let observed = Fake {
        baselines: BTreeMap::from([(
            ("prod".into(), ObjectKind::CiliumNetworkPolicy),
            Records::new(),
        )]),
        ..Fake::default()
    };
    let p = namespace("prod", &labels("prod"), &[&a], &[], &c, &observed);
    assert_eq!(
        p.apps[0].hold.as_ref().unwrap().reason,
        HoldReason::BackendUnavailable
    );
    assert!(p.keeps(ObjectKind::CiliumNetworkPolicy, None, true));
    assert!(p.keeps(ObjectKind::CiliumNetworkPolicy, Some("uid-shop"), false));
}

const CB: &str = "namespaceSelector: {matchLabels: {env: prod}}\n";

fn prod_labels(ns: &str) -> Labels {
    let mut l = labels(ns);
    l.insert("env".into(), "prod".into());
    l
}

#[test]
fn a_cluster_baseline_on_the_standard_backend_is_a_share_of_every_covered_namespace() {
    let cbs = cluster_baselines(&[cb(CB)], &cluster(), &Nothing);
    assert!(cbs[0].object.is_none());
    let p = namespace(
        "team",
        &prod_labels("team"),
        &[],
        &cbs,
        &cluster(),
        &Nothing,
    );
    let b = p.baselines(&cluster(), &BTreeSet::new());
    assert_eq!(denies(&b[0]), (true, true));
    let r = recorded(&b);
    assert_eq!(r[&cluster_baseline_key("default")].generation, Some(3));
    assert!(r[&cluster_baseline_key("default")].spec.is_some());
    let other = namespace("dev", &labels("dev"), &[], &cbs, &cluster(), &Nothing);
    assert!(other.baselines(&cluster(), &BTreeSet::new()).is_empty());
}

#[test]
fn an_invalid_cluster_baseline_keeps_covering_namespaces_new_ones_included_from_its_recorded_spec()
{
    let valid = cluster_baselines(&[cb(CB)], &cluster(), &Nothing);
    let team = namespace(
        "team",
        &prod_labels("team"),
        &[],
        &valid,
        &cluster(),
        &Nothing,
    );
    let applied = team.baselines(&cluster(), &BTreeSet::new());
    let observed = Fake {
        baselines: BTreeMap::from([(
            ("team".into(), ObjectKind::NetworkPolicy),
            recorded(&applied),
        )]),
        ..Fake::default()
    };
    let broken = cb(&format!("{CB}excludeNamespaces: [Not_A_Namespace]\n"));
    let held = cluster_baselines(&[broken], &cluster(), &observed);
    assert_eq!(
        held[0].hold.as_ref().unwrap().reason,
        HoldReason::InvalidSpec
    );
    // The namespace it covered keeps exactly its baseline.
    let team = namespace(
        "team",
        &prod_labels("team"),
        &[],
        &held,
        &cluster(),
        &observed,
    );
    assert_eq!(team.baselines(&cluster(), &BTreeSet::new()), applied);
    // A namespace created since is covered by the last valid spec.
    let fresh = namespace(
        "fresh",
        &prod_labels("fresh"),
        &[],
        &held,
        &cluster(),
        &observed,
    );
    let b = fresh.baselines(&cluster(), &BTreeSet::new());
    assert_eq!(denies(&b[0]), (true, true));
}

#[test]
fn switching_a_cluster_baseline_to_calico_keeps_the_namespace_share_until_the_global_policy_exists()
{
    let calico = cb(&format!("backend: Calico\n{CB}"));
    let valid = cluster_baselines(&[cb(CB)], &cluster(), &Nothing);
    let team = namespace(
        "team",
        &prod_labels("team"),
        &[],
        &valid,
        &cluster(),
        &Nothing,
    );
    let applied = team.baselines(&cluster(), &BTreeSet::new());
    let mut observed = Fake {
        baselines: BTreeMap::from([(
            ("team".into(), ObjectKind::NetworkPolicy),
            recorded(&applied),
        )]),
        ..Fake::default()
    };
    let plans = cluster_baselines(std::slice::from_ref(&calico), &cluster(), &observed);
    let gnp = plans[0].object.clone().expect("a GlobalNetworkPolicy");
    assert!(plans[0].keep_namespace_share);
    let team = namespace(
        "team",
        &prod_labels("team"),
        &[],
        &plans,
        &cluster(),
        &observed,
    );
    assert_eq!(team.baselines(&cluster(), &BTreeSet::new()), applied);
    // Once the GlobalNetworkPolicy is observed, the namespace drops its share.
    observed
        .cluster_objects
        .insert((gnp.kind(), gnp.name().to_string()));
    let plans = cluster_baselines(&[calico], &cluster(), &observed);
    assert!(!plans[0].keep_namespace_share);
    let team = namespace(
        "team",
        &prod_labels("team"),
        &[],
        &plans,
        &cluster(),
        &observed,
    );
    assert!(team.baselines(&cluster(), &BTreeSet::new()).is_empty());
}

#[test]
fn the_whole_plan_writes_allows_then_cluster_objects_then_baselines() {
    let shop = AppInput {
        spec: spec(&format!("backend: Cilium\n{SHOP}")),
        ..app(SHOP)
    };
    let global = cb(&format!("backend: Cilium\n{CB}"));
    let p = plan(
        &[shop],
        &[global],
        &BTreeMap::from([("prod".to_string(), prod_labels("prod"))]),
        &cluster(),
        &Nothing,
    );
    let kinds: Vec<(ObjectKind, &str)> = p.objects.iter().map(|o| (o.kind(), o.name())).collect();
    assert_eq!(
        kinds,
        [
            (ObjectKind::CiliumNetworkPolicy, "tierflow-shop-web"),
            (ObjectKind::CiliumNetworkPolicy, "tierflow-shop-db"),
            (
                ObjectKind::CiliumClusterwideNetworkPolicy,
                "tierflow-baseline-default"
            ),
            (ObjectKind::CiliumNetworkPolicy, "tierflow-baseline"),
        ]
    );
}

#[test]
fn records_survive_the_annotation_round_trip() {
    let (_, applied) = plan_one(&[&app(SHOP)], &[cb(CB)], &Nothing);
    let text = applied[0].body()["metadata"]["annotations"][INPUTS_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string();
    let back = records_of(&BTreeMap::from([(INPUTS_ANNOTATION.to_string(), text)]));
    assert_eq!(back, recorded(&applied));
    assert!(records_of(&BTreeMap::from([(
        INPUTS_ANNOTATION.to_string(),
        "{not json".into()
    )]))
    .is_empty());
}

#[test]
fn a_port_range_on_a_server_that_drops_end_port_is_held_on_the_standard_backend_only() {
    let yaml = "tiers:\n  - {name: media, selector: {matchLabels: {app: media}}, ports: [{port: 30000, endPort: 32767, protocol: UDP}]}\n  - {name: web, selector: {matchLabels: {app: web}}}\nflows:\n  - {from: {tier: web}, to: {tier: media}}\n";
    let old = Cluster {
        no_port_ranges: BTreeMap::from([(
            Backend::NetworkPolicy,
            "this API server (v1.20.2) drops NetworkPolicy endPort".to_string(),
        )]),
        ..cluster()
    };
    let ns = |c: &Cluster, backend: Option<Backend>| {
        let c = Cluster {
            forced_backend: backend,
            ..c.clone()
        };
        namespace("prod", &labels("prod"), &[&app(yaml)], &[], &c, &Nothing)
    };
    let held = ns(&old, None);
    let hold = held.apps[0].hold.as_ref().expect("held");
    assert_eq!(hold.reason, HoldReason::PortRangeUnsupported);
    assert_eq!(hold.reason.reason(), "PortRangeUnsupported");
    assert!(
        hold.message.starts_with("spec.tiers[0].ports: the port range 30000-32767/UDP needs endPort, but this API server (v1.20.2) drops NetworkPolicy endPort, so the policy would silently open only port 30000"),
        "{}",
        hold.message
    );
    // Held: nothing of it is written, not even a narrower policy.
    assert_eq!(held.allows().count(), 0);
    // Only the backends listed are held; a current server keeps endPort.
    assert!(!ns(&old, Some(Backend::Calico)).apps[0].held());
    assert!(!ns(&old, Some(Backend::Cilium)).apps[0].held());
    let current = ns(&cluster(), None);
    assert!(!current.apps[0].held());
    assert_eq!(
        current.allows().next().unwrap().body()["spec"]["ingress"][0]["ports"][0],
        serde_json::json!({"port": 30000, "endPort": 32767, "protocol": "UDP"})
    );
    // Without ranges the old server is fine.
    let plain = namespace("prod", &labels("prod"), &[&app(SHOP)], &[], &old, &Nothing);
    assert!(!plain.apps[0].held());
}

#[test]
fn a_cluster_baseline_on_cluster_network_policy_is_one_object_and_apps_stay_network_policy() {
    let cluster = Cluster {
        auto_backend: Some(Backend::ClusterNetworkPolicy),
        ..cluster()
    };
    let namespaces = BTreeMap::from([
        ("prod".to_string(), labels("prod")),
        ("dev".to_string(), labels("dev")),
    ]);
    let mut cnp_app = app(SHOP);
    cnp_app.spec.backend = crate::crd::BackendSpec::ClusterNetworkPolicy;
    let plan = plan(&[cnp_app], &[cb("{}")], &namespaces, &cluster, &Nothing);
    let kinds: Vec<ObjectKind> = plan.objects.iter().map(|o| o.kind()).collect();
    // The AppNetwork's allows and baseline are NetworkPolicies; the ClusterBaseline is ONE
    // ClusterNetworkPolicy and no namespace gets a share of it.
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ObjectKind::ClusterNetworkPolicy)
            .count(),
        1
    );
    assert!(kinds.iter().all(|k| matches!(
        k,
        ObjectKind::NetworkPolicy | ObjectKind::ClusterNetworkPolicy
    )));
    let baselines: Vec<&Object> = plan
        .objects
        .iter()
        .filter(|o| o.name() == crate::vocab::BASELINE_NAME)
        .collect();
    assert_eq!(baselines.len(), 1, "only the AppNetwork's own namespace");
    assert_eq!(baselines[0].namespace(), Some("prod"));
    let (_, a) = plan.apps().next().unwrap();
    assert_eq!(a.backend, Some(Backend::NetworkPolicy));
    let cbp = &plan.cluster_baselines[0];
    assert_eq!(cbp.backend, Some(Backend::ClusterNetworkPolicy));
    assert!(
        cbp.object.as_ref().unwrap().body()["metadata"]["annotations"]
            .get(INPUTS_ANNOTATION)
            .is_some()
    );
}

#[test]
fn a_cluster_baseline_on_cluster_network_policy_is_held_where_its_crd_is_not_served() {
    let cluster = Cluster {
        auto_backend: Some(Backend::ClusterNetworkPolicy),
        served: Some(BTreeSet::from([ObjectKind::NetworkPolicy])),
        ..cluster()
    };
    let plans = cluster_baselines(&[cb("{}")], &cluster, &Nothing);
    let cluster = super::tests::cluster;
    let hold = plans[0].hold.as_ref().unwrap();
    assert_eq!(hold.reason, HoldReason::BackendUnavailable);
    assert!(
        hold.message.contains("policy.networking.k8s.io/v1alpha2"),
        "{}",
        hold.message
    );
    // Audit has no staged form on this API.
    let audit = Cluster {
        auto_backend: Some(Backend::ClusterNetworkPolicy),
        ..cluster()
    };
    let plans = cluster_baselines(&[cb("{mode: Audit}")], &audit, &Nothing);
    assert_eq!(
        plans[0].hold.as_ref().map(|h| h.reason),
        Some(HoldReason::AuditUnsupported)
    );
}

#[test]
fn switching_a_cluster_baseline_to_cluster_network_policy_keeps_the_namespace_share_until_it_exists(
) {
    let to_cnp = Cluster {
        auto_backend: Some(Backend::ClusterNetworkPolicy),
        ..cluster()
    };
    let mut fake = Fake::default();
    let plans = cluster_baselines(&[cb("{}")], &to_cnp, &fake);
    assert!(plans[0].keep_namespace_share);
    fake.cluster_objects.insert((
        ObjectKind::ClusterNetworkPolicy,
        "tierflow-baseline-default".to_string(),
    ));
    let plans = cluster_baselines(&[cb("{}")], &to_cnp, &fake);
    assert!(!plans[0].keep_namespace_share);
}

/// Every object planned for `apps` and `cbs` on `backend` passes the CNI's admission rules.
fn admitted(plan: &Plan) -> bool {
    plan.objects
        .iter()
        .all(|o| crate::admit::report(o.body()).is_none())
}

fn on(backend: Backend) -> Cluster {
    Cluster {
        forced_backend: Some(backend),
        ..cluster()
    }
}

#[test]
fn a_dotted_app_name_gets_calico_names_every_supported_release_accepts() {
    let mut a = app(SHOP);
    a.name = "payments.v2".into();
    let p = plan(&[a], &[], &BTreeMap::new(), &on(Backend::Calico), &Nothing);
    let (_, ap) = p.apps().next().unwrap();
    assert!(ap.hold.is_none(), "{:?}", ap.hold);
    assert!(admitted(&p));
    assert!(ap.objects.iter().all(|o| !o.name().contains('.')));
    // Other backends keep the name: Kubernetes and Cilium allow dots.
    let mut a = app(SHOP);
    a.name = "payments.v2".into();
    let p = plan(&[a], &[], &BTreeMap::new(), &on(Backend::Cilium), &Nothing);
    assert_eq!(p.objects[0].name(), "tierflow-payments.v2-web");
}

#[test]
fn more_than_fifty_ports_are_split_over_calico_rules() {
    let ports: Vec<String> = (1000..1060).map(|p| format!("{{port: {p}}}")).collect();
    let yaml = format!(
        "tiers:\n  - {{name: api, selector: {{matchLabels: {{app: api}}}}, ports: [{}]}}\n  - {{name: web, selector: {{matchLabels: {{app: web}}}}}}\nflows:\n  - {{from: {{tier: web}}, to: {{tier: api}}}}\n",
        ports.join(", ")
    );
    let p = plan(
        &[app(&yaml)],
        &[],
        &BTreeMap::new(),
        &on(Backend::Calico),
        &Nothing,
    );
    assert!(p.apps().all(|(_, a)| a.hold.is_none()));
    assert!(admitted(&p));
    let api = p
        .objects
        .iter()
        .find(|o| o.name() == "tierflow-shop-api")
        .unwrap();
    let ingress = api.body()["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 2);
    assert_eq!(
        ingress[0]["destination"]["ports"].as_array().unwrap().len(),
        50
    );
}

#[test]
fn what_cilium_would_not_enforce_is_held_with_the_limit_named() {
    let long_ns_key = "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 80}]}\nflows:\n  - {from: {namespaceSelector: {matchLabels: {averyveryverylongnamespacelabelkey: ops}}}, to: {tier: api}}\n";
    let glob = "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 80}]}\n  - {name: web, selector: {matchLabels: {app: web}}}\nflows:\n  - {from: {tier: web}, to: {tier: api}, http: [{path: '/static/(?=x)'}]}\n";
    for (yaml, want) in [
        (long_ns_key, "name part must be 1 to 63 characters"),
        (glob, "is not a Go regular expression"),
    ] {
        let p = plan(
            &[app(yaml)],
            &[],
            &BTreeMap::new(),
            &on(Backend::Cilium),
            &Nothing,
        );
        let (_, a) = p.apps().next().unwrap();
        let hold = a.hold.as_ref().expect("held");
        assert_eq!(hold.reason, HoldReason::BackendLimit);
        assert_eq!(hold.reason.reason(), "BackendLimit");
        assert!(
            hold.message.contains("Cilium will not enforce this policy")
                && hold.message.contains(want),
            "{}",
            hold.message
        );
        assert!(p.objects.is_empty());
        // The same intent on Calico is valid (no such limits there).
        let p = plan(
            &[app(yaml)],
            &[],
            &BTreeMap::new(),
            &on(Backend::Calico),
            &Nothing,
        );
        assert!(p.apps().all(|(_, a)| a.hold.is_none()));
        assert!(admitted(&p));
    }
}

#[test]
fn a_cluster_baseline_whose_calico_namespace_selector_is_too_long_is_held() {
    let many: Vec<String> = (0..120).map(|i| format!("legacy-namespace-{i}")).collect();
    let c = cb(&format!("{{excludeNamespaces: [{}]}}", many.join(", ")));
    let p = plan(
        &[],
        std::slice::from_ref(&c),
        &BTreeMap::new(),
        &on(Backend::Calico),
        &Nothing,
    );
    let hold = p.cluster_baselines[0].hold.as_ref().expect("held");
    assert_eq!(hold.reason, HoldReason::BackendLimit);
    assert!(
        hold.message.contains("spec.namespaceSelector") && hold.message.contains("1024"),
        "{}",
        hold.message
    );
    // Cilium writes the exclusions as a list: no such limit.
    let p = plan(&[], &[c], &BTreeMap::new(), &on(Backend::Cilium), &Nothing);
    assert!(p.cluster_baselines[0].hold.is_none());
    assert!(admitted(&p));
}
const WORLD: &str = "
tiers:
  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 443}]}
flows:
  - {from: {world: true}, to: {tier: web}}
  - {from: {tier: web}, to: {world: true}, ports: [{port: 443}]}
";

#[test]
fn a_world_peer_without_cluster_ranges_is_held_where_it_would_match_pods() {
    let web = app(WORLD);
    for backend in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
        let c = Cluster {
            forced_backend: Some(backend),
            ..cluster()
        };
        let p = namespace("prod", &labels("prod"), &[&web], &[], &c, &Nothing);
        let held = p.apps[0].hold.as_ref().map(|h| h.reason);
        if backend == Backend::Cilium {
            // The world entity needs no ranges.
            assert_eq!(held, None);
        } else {
            assert_eq!(held, Some(HoldReason::ClusterRangesUnknown), "{backend:?}");
            let msg = &p.apps[0].hold.as_ref().unwrap().message;
            assert!(
                msg.starts_with("spec.flows[0].from: a world peer on"),
                "{msg}"
            );
            assert!(p.apps[0].objects.is_empty());
        }
        // With ranges, nothing is held.
        let known = Cluster {
            cluster_cidrs: vec![crate::core::Cidr::parse("10.244.0.0/16").unwrap()],
            ..c
        };
        let p = namespace("prod", &labels("prod"), &[&web], &[], &known, &Nothing);
        assert!(p.apps[0].hold.is_none(), "{backend:?}");
        assert_eq!(p.allows().count(), 1);
    }
}

#[test]
fn a_cilium_tier_selected_on_a_label_outside_pod_identities_is_held_naming_label_and_filter() {
    let ordinal = "tiers:\n  - {name: db0, selector: {matchLabels: {app: db, statefulset.kubernetes.io/pod-name: db-0}}, ports: [{port: 5432}]}\n  - {name: api, selector: {matchLabels: {app: api}}}\nflows:\n  - {from: {tier: api}, to: {tier: db0}}\n";
    let hash = "tiers:\n  - {name: api, selector: {matchExpressions: [{key: pod-template-hash, operator: In, values: [abc]}]}, ports: [{port: 80}]}\n";
    for (yaml, key, tier) in [
        (
            ordinal,
            "statefulset.kubernetes.io/pod-name",
            "spec.tiers[0]",
        ),
        (hash, "pod-template-hash", "spec.tiers[0]"),
    ] {
        let p = plan(
            &[app(yaml)],
            &[],
            &BTreeMap::new(),
            &on(Backend::Cilium),
            &Nothing,
        );
        let (_, a) = p.apps().next().unwrap();
        let hold = a.hold.as_ref().expect("held");
        assert_eq!(hold.reason, HoldReason::LabelNotInIdentity);
        assert_eq!(hold.reason.reason(), "LabelNotInIdentity");
        for part in [
            tier,
            key,
            "Cilium's default identity label filter",
            "select no pod",
        ] {
            assert!(hold.message.contains(part), "{part}: {}", hold.message);
        }
        assert!(a.objects.is_empty());
        assert!(p.objects.is_empty(), "nothing is written while held");
        // Calico and standard NetworkPolicy select on any label.
        for backend in [Backend::Calico, Backend::NetworkPolicy] {
            let p = plan(&[app(yaml)], &[], &BTreeMap::new(), &on(backend), &Nothing);
            assert!(p.apps().all(|(_, a)| a.hold.is_none()), "{backend:?}");
        }
    }
    // Labels in the identity (including app.kubernetes.io/*) are fine.
    let fine = "tiers:\n  - {name: api, selector: {matchLabels: {app.kubernetes.io/name: api}}, ports: [{port: 80}]}\n";
    let p = plan(
        &[app(fine)],
        &[],
        &BTreeMap::new(),
        &on(Backend::Cilium),
        &Nothing,
    );
    assert!(p.apps().all(|(_, a)| a.hold.is_none()));
}

#[test]
fn the_cilium_config_labels_option_decides_which_tier_selectors_are_held() {
    let role = "tiers:\n  - {name: db0, selector: {matchLabels: {app: db, k8s.io/role: primary}}, ports: [{port: 5432}]}\n  - {name: api, selector: {matchLabels: {app: api}}}\nflows:\n  - {from: {tier: api}, to: {tier: db0}}\n";
    let held = |cluster: &Cluster| {
        let p = plan(&[app(role)], &[], &BTreeMap::new(), cluster, &Nothing);
        let (_, a) = p.apps().next().unwrap();
        a.hold.as_ref().map(|h| (h.reason, h.message.clone()))
    };
    // A cluster whose agent keeps `k8s.io/role` (and app) in identities: not held (the
    // default list drops it with the shorter `!k8s\.io`).
    let keeps = cilium_with(&[("labels", r"k8s:app k8s:k8s\.io/role")]);
    assert_eq!(held(&keeps), None);
    // The default (no `labels` key): held, naming the default filter.
    let (reason, message) = held(&cilium_with(&[])).expect("held");
    assert_eq!(reason, HoldReason::LabelNotInIdentity);
    assert!(
        message.contains("Cilium's default identity label filter"),
        "{message}"
    );
    // A cluster that drops `app`: held, naming the configured filter and the pattern.
    let (reason, message) = held(&cilium_with(&[("labels", "k8s:!app")])).expect("held");
    assert_eq!(reason, HoldReason::LabelNotInIdentity);
    for part in [
        "spec.tiers[0]",
        "\"app\"",
        "cilium-config labels",
        "k8s:!app",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // Only inclusive patterns for other keys: `app` is out too.
    let (_, message) = held(&cilium_with(&[("labels", "k8s:tier")])).expect("held");
    assert!(message.contains("inclusive patterns"), "{message}");
    // A value the agent refuses leaves the default filter, and says so.
    let f = crate::plan::CiliumFeatures::from_config(
        &[("labels".to_string(), "k8s:(".to_string())].into(),
    );
    assert!(f.identity.is_default());
    assert!(f
        .identity_error
        .as_deref()
        .is_some_and(|e| e.contains("k8s:(")));
}

fn cilium_with(config: &[(&str, &str)]) -> Cluster {
    let data: BTreeMap<String, String> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let features = crate::plan::CiliumFeatures::from_config(&data);
    Cluster {
        cilium_identity: features.identity.clone(),
        cilium_features: Some(features),
        ..on(Backend::Cilium)
    }
}

#[test]
fn cilium_config_keys_read_as_the_agent_parses_them_with_its_defaults() {
    use crate::plan::CiliumFeatures;
    let none = CiliumFeatures::from_config(&BTreeMap::new());
    assert_eq!(
        (none.sctp, none.l7_proxy, none.icmp_rules),
        (false, true, true)
    );
    let data: BTreeMap<String, String> = [
        ("enable-sctp", "True"),
        ("enable-l7-proxy", "0"),
        ("enable-icmp-rules", "nonsense"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let f = CiliumFeatures::from_config(&data);
    assert_eq!((f.sctp, f.l7_proxy, f.icmp_rules), (true, false, true));
}

#[test]
fn a_flow_on_a_cilium_feature_that_is_off_is_reported_and_held_only_where_that_would_be_wider() {
    let sctp = "tiers:\n  - {name: mme, selector: {matchLabels: {app: mme}}, ports: [{port: 36412, protocol: SCTP}]}\n  - {name: enb, selector: {matchLabels: {app: enb}}}\nflows:\n  - {from: {tier: enb}, to: {tier: mme}}\n";
    // SCTP off (the default): objects written, the flow reported.
    let p = plan(
        &[app(sctp)],
        &[],
        &BTreeMap::new(),
        &cilium_with(&[]),
        &Nothing,
    );
    let (_, a) = p.apps().next().unwrap();
    assert!(a.hold.is_none(), "{:?}", a.hold);
    assert!(!a.objects.is_empty());
    assert_eq!(a.missing_features.len(), 1);
    let m = crate::plan::features::message(&a.missing_features);
    assert!(
        m.contains("spec.flows[0]") && m.contains("SCTP port 36412") && m.contains("enable-sctp"),
        "{m}"
    );
    // SCTP on: nothing to say. Unknown (no cilium-config): nothing either.
    let p = plan(
        &[app(sctp)],
        &[],
        &BTreeMap::new(),
        &cilium_with(&[("enable-sctp", "true")]),
        &Nothing,
    );
    assert!(p.apps().all(|(_, a)| a.missing_features.is_empty()));
    let p = plan(
        &[app(sctp)],
        &[],
        &BTreeMap::new(),
        &on(Backend::Cilium),
        &Nothing,
    );
    assert!(p.apps().all(|(_, a)| a.missing_features.is_empty()));
    // Other backends do not depend on the Cilium agent.
    let calico = Cluster {
        forced_backend: Some(Backend::Calico),
        ..cilium_with(&[])
    };
    let p = plan(&[app(sctp)], &[], &BTreeMap::new(), &calico, &Nothing);
    assert!(p.apps().all(|(_, a)| a.missing_features.is_empty()));

    // HTTP rules with the L7 proxy off: the agent would not enforce the tier's policy. With a
    // deny-all baseline that is narrower (reported); with an open direction, held.
    let http = "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}\n  - {name: web, selector: {matchLabels: {app: web}}}\nflows:\n  - {from: {tier: web}, to: {tier: api}, http: [{method: GET, path: /api/.*}]}\n";
    let off = cilium_with(&[("enable-l7-proxy", "false")]);
    let p = plan(&[app(http)], &[], &BTreeMap::new(), &off, &Nothing);
    let (_, a) = p.apps().next().unwrap();
    assert!(a.hold.is_none(), "{:?}", a.hold);
    assert_eq!(a.missing_features[0].flag, "enable-l7-proxy");
    let open = format!("baseline: {{denyIngress: false}}\n{http}");
    let p = plan(&[app(&open)], &[], &BTreeMap::new(), &off, &Nothing);
    let (_, a) = p.apps().next().unwrap();
    let hold = a.hold.as_ref().expect("held");
    assert_eq!(hold.reason, HoldReason::FeatureDisabled);
    assert!(
        hold.message.contains("spec.flows[0] uses HTTP rules")
            && hold.message.contains("enable-l7-proxy"),
        "{}",
        hold.message
    );
    assert!(p.objects.is_empty());
}
