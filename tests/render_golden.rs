//! Every renderer's output, byte for byte, against a recorded copy (`tests/golden/render.txt`):
//! performance work on the renderers must not change a single byte of what they write.
//!
//! The cases: examples/shop.yaml, a spec using every peer and port form (matchExpressions,
//! namespace selectors, all namespaces, names, ranges, SCTP, IPv6, the world, FQDNs, HTTP
//! rules, the API server, node-local DNS) and the micro bench's generated 10 tiers / 30 flows,
//! on every backend, with and without an owner and cluster facts; the namespace baselines they
//! merge to; and the cluster-wide objects of the ClusterBaselines in tests/fixtures.
//!
//! After an intended change of output, `TIERFLOW_BLESS=1 cargo test --test render_golden`
//! rewrites the file; the diff then shows exactly what changed.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Value};
use tierflow::core::Cidr;
use tierflow::crd::{AppNetworkSpec, ClusterBaselineSpec};
use tierflow::model::{Backend, NamespaceBaseline};
use tierflow::render::{self, Env, Object, Owner};

const RICH: &str = r#"
baseline: {denyIngress: true, denyEgress: true, kubeAPIServer: true}
dns: {enabled: true, namespace: kube-system, selector: {matchLabels: {k8s-app: kube-dns}}, nodeLocalAddress: 169.254.20.10}
tiers:
  - {name: web, selector: {matchLabels: {app: web}, matchExpressions: [{key: track, operator: In, values: [stable, canary]}]}, ports: [{port: 443}, {name: http}]}
  - {name: media, selector: {matchLabels: {app: media}}, ports: [{port: 30000, endPort: 32767, protocol: UDP}, {port: 5060, protocol: SCTP}]}
  - {name: api, selector: {matchExpressions: [{key: app, operator: Exists}]}, ports: [{port: 8080}]}
flows:
  - {from: {world: true}, to: {tier: web}}
  - {from: {tier: web}, to: {tier: api}, http: [{method: GET, path: "/api/.*"}]}
  - {from: {tier: web}, to: {tier: media}}
  - {from: {namespaceSelector: {matchLabels: {team: ops}, matchExpressions: [{key: env, operator: NotIn, values: [dev]}]}, selector: {matchLabels: {app: agent}}}, to: {tier: api}}
  - {from: {allNamespaces: true, selector: {matchLabels: {app: probe}}}, to: {tier: api}}
  - {from: {allNamespaces: true}, to: {tier: api}, ports: [{port: 9000}]}
  - {from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}, to: {tier: api}, ports: [{port: 9090}]}
  - {from: {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}, to: {tier: web}}
  - {from: {cidr: 0.0.0.0/0, except: [169.254.169.254/32, 10.0.0.0/8]}, to: {tier: web}, ports: [{port: 80}]}
  - {from: {tier: api}, to: {fqdn: "*.example.com"}, ports: [{port: 443}]}
  - {from: {tier: api}, to: {kubeAPIServer: true}}
  - {from: {tier: api}, to: {world: true}, ports: [{port: 443}]}
  - {from: {tier: api}, to: {cidr: 203.0.113.0/24}, ports: [{port: 443}, {port: 443, protocol: UDP}]}
  - {from: {tier: media}, to: {tier: media}}
  - {from: {tier: web}, to: {tier: api}}
"#;

/// The micro bench's generator (benches/micro.rs `spec`), 10 tiers / 30 flows.
fn generated(tiers: usize, flows: usize) -> AppNetworkSpec {
    let tier_list: Vec<Value> = (0..tiers)
        .map(|i| json!({"name": format!("t{i}"), "selector": {"matchLabels": {"app": format!("t{i}"), "part-of": "bench"}}, "ports": [{"port": 8000 + i}]}))
        .collect();
    let flow_list: Vec<Value> = (0..flows)
        .map(|f| {
            let to = format!("t{}", (f * 7 + 1) % tiers);
            let from = format!("t{}", f % tiers);
            let port = 1000 + f;
            match f % 5 {
                0 | 1 => json!({"from": {"tier": from}, "to": {"tier": to}, "ports": [{"port": port}]}),
                2 => json!({"from": {"namespace": format!("client-{}", f % 20), "selector": {"matchLabels": {"app": "client"}}}, "to": {"tier": to}, "ports": [{"port": port}, {"port": port, "protocol": "UDP"}]}),
                3 => json!({"from": {"tier": from}, "to": {"cidr": format!("10.{}.{}.0/24", (f / 256) % 256, f % 256)}, "ports": [{"port": port}]}),
                _ => json!({"from": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}, "to": {"tier": to}, "ports": [{"port": port}]}),
            }
        })
        .collect();
    serde_json::from_value(json!({"tiers": tier_list, "flows": flow_list})).unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `spec` of every document of `kind` in a YAML file of the repository.
fn specs_of(path: &str, kind: &str) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &Value| d["kind"] == kind)
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_string(),
                d["spec"].clone(),
            )
        })
        .collect()
}

fn owner(kind: &str, name: &str) -> Owner {
    Owner {
        api_version: "tierflow.dev/v1alpha1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

fn envs() -> [(&'static str, Env); 2] {
    let full = Env {
        api_server: vec![
            ("10.0.0.2".parse().unwrap(), 6443),
            ("10.0.0.1".parse().unwrap(), 6443),
        ],
        cluster_cidrs: ["10.244.0.0/16", "10.96.0.0/12", "fd00:10:244::/56"]
            .iter()
            .map(|c| Cidr::parse(c).unwrap())
            .collect(),
    };
    [("no-env", Env::default()), ("env", full)]
}

/// One object: its case, kind and text as the operator sends it ([`Object::json`]).
fn line(out: &mut String, case: &str, o: &Object) {
    writeln!(out, "{case} {:?} {}", o.kind(), o.json()).unwrap();
}

fn render_all() -> String {
    let mut out = String::new();
    let mut apps: Vec<(String, AppNetworkSpec)> = specs_of("examples/shop.yaml", "AppNetwork")
        .into_iter()
        .map(|(n, s)| (n, serde_json::from_value(s).unwrap()))
        .collect();
    apps.push(("rich".into(), serde_yaml::from_str(RICH).unwrap()));
    apps.push(("generated".into(), generated(10, 30)));
    for (name, spec) in &apps {
        let m = tierflow::validate::app_network(name, "production", spec).unwrap();
        for backend in Backend::ALL {
            for (env_name, env) in envs() {
                for own in [None, Some(owner("AppNetwork", name))] {
                    let case = format!(
                        "{name}/{}/{env_name}/{}",
                        backend.as_str(),
                        if own.is_some() { "owned" } else { "unowned" }
                    );
                    let r = render::tier_objects(&m, backend, own.as_ref(), &env);
                    for o in &r.objects {
                        line(&mut out, &case, o);
                    }
                    for l in &r.limitations {
                        writeln!(out, "{case} limitation {l:?}").unwrap();
                    }
                }
                let b = NamespaceBaseline::merge([&m.baseline]);
                let owners = [owner("AppNetwork", name), owner("ClusterBaseline", "prod")];
                for audit in [false, true] {
                    let case = format!("{name}/{}/{env_name}/baseline/{audit}", backend.as_str());
                    if let Some(o) =
                        render::namespace_baseline("production", &b, backend, audit, &owners, &env)
                    {
                        line(&mut out, &case, &o);
                    }
                }
            }
        }
    }
    for file in [
        "tests/fixtures/cluster-baseline.yaml",
        "tests/fixtures/guardrails.yaml",
    ] {
        for (name, spec) in specs_of(file, "ClusterBaseline") {
            let spec: ClusterBaselineSpec = serde_json::from_value(spec).unwrap();
            let m = tierflow::validate::cluster_baseline(&spec).unwrap();
            for backend in Backend::ALL {
                let own = owner("ClusterBaseline", &name);
                let case = format!("{name}/{}", backend.as_str());
                if let Some(o) = render::cluster_baseline(
                    &name,
                    &m,
                    backend,
                    "tierflow-system",
                    Some(&own),
                    &Env::default(),
                ) {
                    line(&mut out, &format!("{case}/cluster-baseline"), &o);
                }
                match render::guardrails(&name, &m, backend, "tierflow-system", Some(&own)) {
                    Ok(Some(o)) => line(&mut out, &format!("{case}/guardrails"), &o),
                    Ok(None) => {}
                    Err(why) => writeln!(out, "{case}/guardrails refused {why}").unwrap(),
                }
            }
        }
    }
    out
}

#[test]
fn every_renderer_writes_the_recorded_bytes() {
    let path = root().join("tests/golden/render.txt");
    let now = render_all();
    if std::env::var_os("TIERFLOW_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap();
    for (i, (a, b)) in recorded.lines().zip(now.lines()).enumerate() {
        assert_eq!(a, b, "line {} of tests/golden/render.txt differs", i + 1);
    }
    assert_eq!(
        recorded.lines().count(),
        now.lines().count(),
        "number of lines"
    );
}

/// The text of every object is canonical: what `serde_json::to_string` gives for the same value
/// (keys sorted, serde_json's numbers and escapes). So the digest of a rendered object and of
/// the same object read back from the API server (parsed, whatever the order of its keys) agree.
#[test]
fn every_rendered_object_is_canonical_json() {
    let mut objects = 0;
    for l in render_all().lines() {
        let mut parts = l.splitn(3, ' ');
        let (case, json) = (parts.next().unwrap(), parts.nth(1).unwrap());
        if !json.starts_with('{') {
            continue;
        }
        let parsed: Value = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json, "{case}");
        assert_eq!(render::digest(&parsed), render::digest_text(json), "{case}");
        objects += 1;
    }
    assert!(objects > 300, "{objects} objects");
}
