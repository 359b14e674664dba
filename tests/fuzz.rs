//! Bad input: arbitrary AppNetwork and ClusterBaseline specs, garbage strings in every string
//! field (unicode, control characters, empty, over-long), arbitrary integers and every
//! combination of optional fields.
//!
//! - `tierflow::validate` never panics;
//! - every rejected spec gets at least one error, each naming a `spec.` field;
//! - every accepted spec renders, for every backend, without panicking, deterministically, into
//!   objects with valid names and label values (`render::tier_objects`, `namespace_baseline`,
//!   `cluster_baseline`), and the standard backend's objects are well-typed NetworkPolicies;
//! - the baseline an AppNetwork records in its status reads back as the same wish, and garbage
//!   in that status (anyone with status access can write it) never panics;
//! - against the real control plane (a modest number of cases), the API server accepts every
//!   rendered NetworkPolicy, and Calico / Cilium object when their CRDs are installed
//!   (server-side apply, dry run).
//!
//! `FUZZ_CASES` sets the number of cases of the offline properties (default 2000).
//! Oversized specs end to end: `tests/chaos/oversized.rs`. A spec updated from valid to invalid
//! keeps the last valid policies: `tests/e2e/appnetwork.rs`
//! (`invalid_update_sets_invalid_spec_and_keeps_the_previous_policies_byte_for_byte`) and
//! `tests/e2e/clusterbaseline.rs` (`an_invalid_update_keeps_the_last_valid_baseline_in_place`).

#[path = "e2e/support.rs"]
mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::Api;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::core::selector::is_dns1123_subdomain;
use tierflow::crd::{AppNetworkSpec, AppliedBaseline, ClusterBaselineSpec};
use tierflow::model::{Backend, NamespaceBaseline};
use tierflow::render::{self, Env, Object, ObjectKind, Owner};
use tierflow::validate;

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

const TIER_NAMES: [&str; 5] = ["frontend", "api", "db", "a", "x-1"];

/// How much garbage the string generators mix in: weight against 100 of a plausible value. A
/// case draws its level first, so some specs are almost clean and some are garbage throughout.
#[derive(Clone, Copy, Debug)]
struct Garbage(u32);

/// The levels, with the weight each is drawn with.
const LEVELS: [(u32, Garbage); 3] = [(4, Garbage(0)), (1, Garbage(3)), (1, Garbage(40))];

/// A string: one a user would write, or (with weight `g`) garbage: any unicode, control
/// characters, punctuation, empty, too long.
fn text_g(pool: &'static [&'static str], g: Garbage) -> BoxedStrategy<String> {
    let plausible = proptest::sample::select(pool).prop_map(str::to_string);
    if g.0 == 0 {
        return plausible.boxed();
    }
    prop_oneof![100 => plausible, g.0 => garbage()].boxed()
}

/// Garbage strings of every sort.
fn garbage() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9./_-]{0,80}",
        Just(String::new()),
        "[a-z]{250,300}",
        "[\\PC]{1,10}",
    ]
    .boxed()
}

/// One of `names`, or (with weight `g`) garbage.
fn pick(names: Vec<String>, g: Garbage) -> BoxedStrategy<String> {
    let plausible = proptest::sample::select(names);
    if g.0 == 0 {
        return plausible.boxed();
    }
    prop_oneof![100 => plausible, g.0 => garbage()].boxed()
}

thread_local! {
    static LEVEL: std::cell::Cell<Garbage> = const { std::cell::Cell::new(Garbage(40)) };
}

/// `text_g` at the level the current strategy is being built for.
fn text(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    text_g(pool, LEVEL.with(|l| l.get()))
}

const KEYS: &[&str] = &[
    "app",
    "tier",
    "example.com/team",
    "k8s-app",
    "kubernetes.io/metadata.name",
];
const VALUES: &[&str] = &["api", "frontend", "db", "prometheus", "kube-dns", "x"];
const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
const NAMESPACES: &[&str] = &["monitoring", "kube-system", "production", "default"];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "203.0.113.0/24",
    "10.0.0.1/8",
    "0.0.0.0/0",
    "fd00::/8",
    "192.0.2.10/32",
    "169.254.169.254/32",
    "300.1.1.1/8",
    "10.0.0.0/33",
];
const EXCEPTS: &[&str] = &["10.1.0.0/16", "192.168.0.0/16", "10.0.0.0/8"];
const FQDNS: &[&str] = &["api.example.com", "*.example.com", "example", "*"];
const ADDRESSES: &[&str] = &["169.254.20.10", "fd00::10", "not-an-ip"];
const METHODS: &[&str] = &["GET", "POST", "get"];
const PATHS: &[&str] = &["/api/v1/.*", "/", "(unclosed", ""];

fn label_selector() -> BoxedStrategy<Value> {
    let labels = proptest::collection::btree_map(text(KEYS), text(VALUES), 0..3);
    let expr = (
        text(KEYS),
        text(OPERATORS),
        proptest::option::of(proptest::collection::vec(text(VALUES), 0..3)),
    )
        .prop_map(|(key, operator, values)| {
            let mut e = json!({"key": key, "operator": operator});
            if let Some(v) = values {
                e["values"] = json!(v);
            }
            e
        });
    (
        proptest::option::of(labels),
        proptest::option::of(proptest::collection::vec(expr, 0..3)),
    )
        .prop_map(|(labels, exprs)| {
            let mut s = json!({});
            if let Some(l) = labels {
                s["matchLabels"] = json!(l);
            }
            if let Some(e) = exprs {
                s["matchExpressions"] = json!(e);
            }
            s
        })
        .boxed()
}

fn ports() -> BoxedStrategy<Value> {
    let g = LEVEL.with(|l| l.get()).0;
    let port = prop_oneof![
        100 => proptest::sample::select(&[53, 80, 443, 5432, 8080, 65535][..]),
        g => any::<i32>(),
        g => Just(0),
    ];
    let protocol = proptest::option::of(proptest::sample::select(&["TCP", "UDP", "SCTP"][..]));
    proptest::collection::vec(
        (port, protocol).prop_map(|(p, proto)| {
            let mut v = json!({"port": p});
            if let Some(proto) = proto {
                v["protocol"] = json!(proto);
            }
            v
        }),
        0..3,
    )
    .prop_map(Value::from)
    .boxed()
}

fn dns() -> BoxedStrategy<Value> {
    (
        any::<bool>(),
        proptest::option::of(text(NAMESPACES)),
        proptest::option::of(label_selector()),
        proptest::option::of(text(ADDRESSES)),
    )
        .prop_map(|(enabled, ns, sel, addr)| {
            let mut d = json!({ "enabled": enabled });
            if let Some(ns) = ns {
                d["namespace"] = json!(ns);
            }
            if let Some(s) = sel {
                d["selector"] = s;
            }
            if let Some(a) = addr {
                d["nodeLocalAddress"] = json!(a);
            }
            d
        })
        .boxed()
}

/// A peer: usually of one kind (as the README's table has them), sometimes any combination of
/// fields (none, or several at once).
fn peer(tiers: &[String]) -> BoxedStrategy<Value> {
    let g = LEVEL.with(|l| l.get());
    let tier = pick(tiers.to_vec(), g).prop_map(|t| json!({ "tier": t }));
    let namespace =
        (text(NAMESPACES), proptest::option::of(label_selector())).prop_map(|(n, s)| {
            let mut p = json!({ "namespace": n });
            if let Some(s) = s {
                p["selector"] = s;
            }
            p
        });
    let ns_selector =
        (label_selector(), proptest::option::of(label_selector())).prop_map(|(n, s)| {
            let mut p = json!({ "namespaceSelector": n });
            if let Some(s) = s {
                p["selector"] = s;
            }
            p
        });
    let all = proptest::option::of(label_selector()).prop_map(|s| {
        let mut p = json!({ "allNamespaces": true });
        if let Some(s) = s {
            p["selector"] = s;
        }
        p
    });
    let own = label_selector().prop_map(|s| json!({ "selector": s }));
    let cidr = (
        text(CIDRS),
        proptest::option::of(proptest::collection::vec(text(EXCEPTS), 0..3)),
    )
        .prop_map(|(c, e)| {
            let mut p = json!({ "cidr": c });
            if let Some(e) = e {
                p["except"] = json!(e);
            }
            p
        });
    let fqdn = text(FQDNS).prop_map(|f| json!({ "fqdn": f }));
    let api = Just(json!({"kubeAPIServer": true}));
    prop_oneof![
        12 => tier,
        2 => namespace,
        1 => ns_selector,
        1 => all,
        (g.0 / 10) => own,
        2 => cidr,
        1 => fqdn,
        1 => api,
        (1 + g.0 / 5) => any_peer(),
    ]
    .boxed()
}

/// Each field of a peer present or not, independently.
fn any_peer() -> BoxedStrategy<Value> {
    let one = |s: BoxedStrategy<Value>, weight: u32| {
        prop_oneof![weight => s.prop_map(Some), 10 - weight => Just(None)].boxed()
    };
    (
        one(text(&TIER_NAMES).prop_map(Value::from).boxed(), 6),
        one(text(NAMESPACES).prop_map(Value::from).boxed(), 2),
        one(label_selector(), 1),
        one(any::<bool>().prop_map(Value::from).boxed(), 1),
        one(label_selector(), 2),
        one(text(CIDRS).prop_map(Value::from).boxed(), 2),
        one(
            proptest::collection::vec(text(EXCEPTS), 0..3)
                .prop_map(Value::from)
                .boxed(),
            1,
        ),
        one(text(FQDNS).prop_map(Value::from).boxed(), 1),
        one(any::<bool>().prop_map(Value::from).boxed(), 1),
    )
        .prop_map(|(tier, ns, ns_sel, all, sel, cidr, except, fqdn, api)| {
            let mut p = serde_json::Map::new();
            for (k, v) in [
                ("tier", tier),
                ("namespace", ns),
                ("namespaceSelector", ns_sel),
                ("allNamespaces", all),
                ("selector", sel),
                ("cidr", cidr),
                ("except", except),
                ("fqdn", fqdn),
                ("kubeAPIServer", api),
            ] {
                if let Some(v) = v {
                    p.insert(k.into(), v);
                }
            }
            Value::Object(p)
        })
        .boxed()
}

fn flow(tiers: &[String]) -> BoxedStrategy<Value> {
    let http = proptest::collection::vec(
        (
            proptest::option::of(text(METHODS)),
            proptest::option::of(text(PATHS)),
        )
            .prop_map(|(m, p)| {
                let mut h = json!({});
                if let Some(m) = m {
                    h["method"] = json!(m);
                }
                if let Some(p) = p {
                    h["path"] = json!(p);
                }
                h
            }),
        0..2,
    );
    (
        peer(tiers),
        peer(tiers),
        proptest::option::of(ports()),
        proptest::option::weighted(0.2, http),
    )
        .prop_map(|(from, to, ports, http)| {
            let mut f = json!({"from": from, "to": to});
            if let Some(p) = ports {
                f["ports"] = p;
            }
            if let Some(h) = http {
                f["http"] = json!(h);
            }
            f
        })
        .boxed()
}

fn backend() -> BoxedStrategy<&'static str> {
    proptest::sample::select(&["Auto", "NetworkPolicy", "Calico", "Cilium"][..]).boxed()
}

fn mode() -> BoxedStrategy<&'static str> {
    prop_oneof![9 => Just("Enforce"), 1 => Just("Audit")].boxed()
}

/// An arbitrary AppNetwork spec, as the API server could hand it over (types right, contents
/// anything), at one of the garbage levels.
fn app_spec() -> BoxedStrategy<AppNetworkSpec> {
    let levels: Vec<(u32, BoxedStrategy<AppNetworkSpec>)> = LEVELS
        .iter()
        .map(|(w, g)| {
            LEVEL.with(|l| l.set(*g));
            (*w, app_spec_at())
        })
        .collect();
    LEVEL.with(|l| l.set(Garbage(40)));
    proptest::strategy::Union::new_weighted(levels).boxed()
}

fn app_spec_at() -> BoxedStrategy<AppNetworkSpec> {
    let g = LEVEL.with(|l| l.get());
    let min = usize::from(g.0 == 0);
    (min..=TIER_NAMES.len())
        .prop_flat_map(move |n| {
            LEVEL.with(|l| l.set(g));
            let names: Vec<String> = TIER_NAMES[..n].iter().map(|t| t.to_string()).collect();
            let tiers: Vec<BoxedStrategy<Value>> = names
                .iter()
                .map(|name| {
                    let selector = prop_oneof![
                        100 => Just(json!({"matchLabels": {"app": name}})),
                        g.0 => label_selector(),
                    ];
                    (pick(vec![name.clone()], g), selector, ports())
                        .prop_map(|(name, selector, ports)| {
                            json!({"name": name, "selector": selector, "ports": ports})
                        })
                        .boxed()
                })
                .collect();
            let flows = if names.is_empty() {
                Just(Vec::new()).boxed()
            } else {
                proptest::collection::vec(flow(&names), 0..6).boxed()
            };
            app_spec_of(tiers, flows)
        })
        .boxed()
}

fn app_spec_of(
    tiers: Vec<BoxedStrategy<Value>>,
    flows: BoxedStrategy<Vec<Value>>,
) -> BoxedStrategy<AppNetworkSpec> {
    (
        backend(),
        mode(),
        any::<(bool, bool)>(),
        proptest::option::of(dns()),
        tiers,
        flows,
    )
        .prop_map(|(backend, mode, (di, de), dns, tiers, flows)| {
            let mut s = json!({"backend": backend, "mode": mode,
                               "baseline": {"denyIngress": di, "denyEgress": de},
                               "tiers": tiers, "flows": flows});
            if let Some(d) = dns {
                s["dns"] = d;
            }
            serde_json::from_value(s).expect("the generator writes the spec's shape")
        })
        .boxed()
}

fn cluster_baseline_spec() -> BoxedStrategy<ClusterBaselineSpec> {
    let levels: Vec<(u32, BoxedStrategy<ClusterBaselineSpec>)> = LEVELS
        .iter()
        .map(|(w, g)| {
            LEVEL.with(|l| l.set(*g));
            (*w, cluster_baseline_spec_at())
        })
        .collect();
    LEVEL.with(|l| l.set(Garbage(40)));
    proptest::strategy::Union::new_weighted(levels).boxed()
}

fn cluster_baseline_spec_at() -> BoxedStrategy<ClusterBaselineSpec> {
    (
        backend(),
        mode(),
        proptest::option::of(label_selector()),
        proptest::collection::vec(text(NAMESPACES), 0..3),
        proptest::collection::vec(text(NAMESPACES), 0..3),
        any::<(bool, bool, bool)>(),
        proptest::option::of(dns()),
    )
        .prop_map(
            |(backend, mode, sel, exclude, include, (di, de, api), dns)| {
                let mut s = json!({"backend": backend, "mode": mode, "excludeNamespaces": exclude,
                               "includeSystemNamespaces": include, "denyIngress": di,
                               "denyEgress": de, "allowKubeAPIServer": api});
                if let Some(sel) = sel {
                    s["namespaceSelector"] = sel;
                }
                if let Some(d) = dns {
                    s["dns"] = d;
                }
                serde_json::from_value(s).expect("the generator writes the spec's shape")
            },
        )
        .boxed()
}

/// The names an AppNetwork and its namespace can have (the API server enforces these).
fn app_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just("shop".to_string()),
        1 => "[a-z]([a-z0-9-]{0,20}[a-z0-9])?",
        1 => "[a-z]{200,253}",
    ]
    .boxed()
}

fn owner(kind: &str, name: &str) -> Owner {
    Owner {
        api_version: "tierflow.dev/v1alpha1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
    }
}

fn env() -> Env {
    Env {
        api_server: vec![("192.0.2.10".parse().expect("ip"), 6443)],
        ..Env::default()
    }
}

/// What must hold for every rendered object.
fn well_formed(o: &Object, namespace: Option<&str>) -> Result<(), TestCaseError> {
    let name = o.name();
    prop_assert!(
        is_dns1123_subdomain(name) && name.len() <= 253,
        "object name {name:?} is not a valid name"
    );
    if o.kind().namespaced() {
        prop_assert_eq!(o.namespace(), namespace);
    }
    let labels = o
        .body()
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &labels {
        let v = v.as_str().unwrap_or_default();
        prop_assert!(
            v.len() <= 63 && tierflow::core::selector::check_value(k, v).is_ok(),
            "label {k}={v:?} of {name} is not a valid label value"
        );
    }
    prop_assert!(serde_json::to_string(&o.body()).is_ok());
    if o.kind() == ObjectKind::NetworkPolicy {
        let typed: Result<NetworkPolicy, _> = serde_json::from_value(o.to_value());
        prop_assert!(typed.is_ok(), "{name} is not a NetworkPolicy: {typed:?}");
    }
    Ok(())
}

fn rejected_names_fields(errors: &validate::InvalidSpec) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty(), "rejected without a reason");
    for e in &errors.0 {
        prop_assert!(
            e.field.starts_with("spec.") || e.field == "spec",
            "error {e} does not name a spec field"
        );
        prop_assert!(!e.message.is_empty(), "error without a message: {e:?}");
    }
    prop_assert!(errors.to_string().contains("spec."));
    Ok(())
}

/// Validates and, when accepted, renders for every backend; returns the accepted model's
/// objects per backend.
fn check_app(
    name: &str,
    namespace: &str,
    spec: &AppNetworkSpec,
) -> Result<Option<BTreeMap<Backend, Vec<Object>>>, TestCaseError> {
    let model = match validate::app_network(name, namespace, spec) {
        Ok(m) => m,
        Err(errors) => {
            rejected_names_fields(&errors)?;
            return Ok(None);
        }
    };
    let o = owner("AppNetwork", name);
    let mut out = BTreeMap::new();
    for backend in Backend::ALL {
        let rendered = render::tier_objects(&model, backend, Some(&o), &env());
        let again = render::tier_objects(&model, backend, Some(&o), &env());
        prop_assert_eq!(&rendered, &again, "rendering is not deterministic");
        for obj in &rendered.objects {
            well_formed(obj, Some(namespace))?;
        }
        let merged = NamespaceBaseline::merge([&model.baseline]);
        if let Some(b) = render::namespace_baseline(
            namespace,
            &merged,
            backend,
            model.audit,
            std::slice::from_ref(&o),
            &env(),
        ) {
            well_formed(&b, Some(namespace))?;
        }
        out.insert(backend, rendered.objects);
    }
    // The baseline recorded in status (the persisted last good state) reads back the same.
    let applied = validate::to_applied_baseline(&model.baseline);
    prop_assert_eq!(
        validate::applied_baseline(&applied).ok(),
        Some(model.baseline.clone())
    );
    Ok(Some(out))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn any_app_network_spec_is_validated_without_panic_and_rendered_when_accepted(
        spec in app_spec(),
        name in app_name(),
        namespace in "[a-z]([a-z0-9-]{0,20}[a-z0-9])?",
    ) {
        check_app(&name, &namespace, &spec)?;
    }

    #[test]
    fn any_cluster_baseline_spec_is_validated_without_panic_and_rendered_when_accepted(
        spec in cluster_baseline_spec(),
        name in app_name(),
    ) {
        match validate::cluster_baseline(&spec) {
            Err(errors) => rejected_names_fields(&errors)?,
            Ok(model) => {
                let o = owner("ClusterBaseline", &name);
                for backend in Backend::ALL {
                    if let Some(obj) =
                        render::cluster_baseline(&name, &model, backend, "tierflow-system", Some(&o), &env())
                    {
                        well_formed(&obj, None)?;
                    }
                    let merged = NamespaceBaseline::merge([&model.wish]);
                    if let Some(b) = render::namespace_baseline(
                        "production", &merged, backend, model.audit, std::slice::from_ref(&o), &env(),
                    ) {
                        well_formed(&b, Some("production"))?;
                    }
                }
            }
        }
    }

    #[test]
    fn garbage_in_a_recorded_status_baseline_never_panics(
        di in any::<bool>(),
        de in any::<bool>(),
        dns in proptest::option::of(dns()),
    ) {
        let mut v = json!({"denyIngress": di, "denyEgress": de});
        if let Some(d) = dns {
            v["dns"] = d;
        }
        let b: AppliedBaseline = serde_json::from_value(v).expect("shape");
        if let Err(errors) = validate::applied_baseline(&b) {
            prop_assert!(!errors.0.is_empty());
        }
    }
}

/// The generators reach both outcomes often enough to mean something.
#[test]
fn the_generator_produces_accepted_and_rejected_specs() {
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(400)
    });
    let (mut ok, mut rejected) = (0, 0);
    for _ in 0..400 {
        let spec = app_spec().new_tree(&mut runner).expect("a value").current();
        match validate::app_network("shop", "production", &spec) {
            Ok(_) => ok += 1,
            Err(_) => rejected += 1,
        }
    }
    eprintln!("FUZZ-REPORT generator: {ok} accepted, {rejected} rejected of 400");
    assert!(ok >= 20, "only {ok} of 400 generated specs are valid");
    assert!(
        rejected >= 100,
        "only {rejected} of 400 generated specs are invalid"
    );
}

/// Whether the API server serves `kind` (its CRD is installed).
async fn served(client: &kube::Client, kind: ObjectKind) -> bool {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind));
    api.list(&kube::api::ListParams::default().limit(1))
        .await
        .is_ok()
}

/// Against the real control plane: the API server accepts what every accepted spec renders.
#[test]
fn the_api_server_accepts_every_rendered_object_server_side_dry_run() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (client, ns, kinds) = rt.block_on(async {
        let client = support::client().await;
        let ns = support::TestNs::new(&client, "fuzz").await;
        let mut kinds = Vec::new();
        for kind in [
            ObjectKind::NetworkPolicy,
            ObjectKind::CalicoNetworkPolicy,
            ObjectKind::CiliumNetworkPolicy,
        ] {
            if served(&client, kind).await {
                kinds.push(kind);
            }
        }
        (client, ns, kinds)
    });
    eprintln!("FUZZ-REPORT dry run: kinds served here: {kinds:?}");
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(cases(2000).min(150))
    });
    let namespace = ns.name.clone();
    let counts = std::cell::RefCell::new((0usize, 0usize));
    let result = runner.run(&app_spec(), |spec| {
        let Some(per_backend) = check_app("shop", &namespace, &spec)? else {
            return Ok(());
        };
        rt.block_on(async {
            for objects in per_backend.values() {
                for o in objects.iter().filter(|o| kinds.contains(&o.kind())) {
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client.clone(), &namespace, &api_resource(o.kind()));
                    let pp = PatchParams::apply("tierflow-fuzz").force().dry_run();
                    let r = api.patch(o.name(), &pp, &Patch::Apply(&o.body())).await;
                    prop_assert!(
                        r.is_ok(),
                        "the API server refused {} {}: {:?}\n{}",
                        o.kind().kind(),
                        o.name(),
                        r.err(),
                        serde_json::to_string_pretty(&o.body()).unwrap_or_default()
                    );
                    counts.borrow_mut().1 += 1;
                }
            }
            counts.borrow_mut().0 += 1;
            Ok(())
        })
    });
    let (accepted, objects) = *counts.borrow();
    eprintln!(
        "FUZZ-REPORT dry run: {accepted} accepted specs, {objects} objects accepted by the API \
         server"
    );
    rt.block_on(ns.delete());
    result.unwrap();
    assert!(accepted >= 10, "only {accepted} accepted specs were tried");
}
