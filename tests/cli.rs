//! The offline commands, run as the binary: JSON shapes, exit codes (0 ok, 1 findings or
//! differences, 2 usage or input errors), and errors that name file, document and field.
//! Fixtures live in `tests/fixtures/`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shop.yaml");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tierflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args(args)
        // Never reach a real cluster from these tests.
        .env("KUBECONFIG", "/nonexistent/tierflow-test-kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run tierflow")
}

fn tierflow_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tierflow");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for tierflow")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(o)))
}

#[test]
fn verify_passes_for_the_shop_example_on_every_backend() {
    let o = tierflow(&["verify", "-f", SHOP, "--output", "json"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["passed"], true);
    let app = &v["appNetworks"][0];
    assert_eq!(app["appNetwork"], "production/shop");
    let backends: Vec<&str> = app["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .map(|b| b["backend"].as_str().expect("backend name"))
        .collect();
    assert_eq!(backends, ["NetworkPolicy", "Calico", "Cilium"]);
    for b in app["backends"].as_array().expect("backends") {
        assert!(b["checked"].as_u64().expect("checked") > 1000, "{b}");
        assert_eq!(b["differences"], serde_json::json!([]), "{b}");
    }
    let text = stdout(&tierflow(&["verify", "-f", SHOP]));
    assert_eq!(
        text.matches("ok, allows exactly the declared flows and DNS")
            .count(),
        3,
        "{text}"
    );
}

#[test]
fn verify_passes_and_says_what_it_cannot_check_offline() {
    let file = fixture("unverifiable-flows.yaml");
    let o = tierflow(&["verify", "-f", &file]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("fqdn \"api.example.com\" is not checkable offline"),
        "{text}"
    );
    assert!(
        text.contains("toEntities kube-apiserver, which is not checkable offline"),
        "{text}"
    );
    let v = json(&tierflow(&["verify", "-f", &file, "--output", "json"]));
    assert_eq!(v["passed"], true);
}

#[test]
fn a_flow_that_tierflow_itself_would_block_is_refused_with_the_fix() {
    // Pods of the app's own namespace outside every tier: its own baseline isolates them.
    let o = tierflow(&["verify", "-f", &fixture("own-namespace-flow.yaml")]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("spec.flows[0].from: pods of this AppNetwork's own namespace"),
        "{err}"
    );
    assert!(err.contains("declare them as a tier"), "{err}");
}

#[test]
fn lint_reports_the_classic_mistakes_as_json_and_exits_1_on_errors() {
    let o = tierflow(&["lint", "-f", &fixture("classic-mistakes.yaml")]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    let findings = v["findings"].as_array().expect("findings");
    for f in findings {
        let keys: Vec<&str> = f
            .as_object()
            .expect("finding")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["code", "message", "object", "severity"], "{f}");
    }
    let codes: Vec<(&str, &str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default(),
                f["severity"].as_str().unwrap_or_default(),
                f["object"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for expected in [
        ("missing-dns-egress", "error", "shop/db"),
        ("ipblock-except-outside-cidr", "error", "shop/web-egress"),
        ("dns-udp-only", "warning", "shop/web"),
        (
            "permissive-namespace-selector",
            "warning",
            "shop/db-from-everywhere",
        ),
        (
            "split-namespace-pod-peers",
            "warning",
            "shop/web-from-prometheus",
        ),
    ] {
        assert!(codes.contains(&expected), "{expected:?} not in {codes:?}");
    }
    let text = tierflow(&[
        "lint",
        "-f",
        &fixture("classic-mistakes.yaml"),
        "--output",
        "text",
    ]);
    assert_eq!(code(&text), 1);
    assert!(stdout(&text).contains("2 error(s)"), "{}", stdout(&text));
}

#[test]
fn what_render_writes_lints_clean_on_every_backend() {
    for backend in ["networkpolicy", "calico", "cilium"] {
        let rendered = tierflow(&["render", "-f", SHOP, "--backend", backend]);
        assert_eq!(code(&rendered), 0, "{}", stderr(&rendered));
        let o = tierflow_stdin(&["lint", "-f", "-"], &rendered.stdout);
        assert_eq!(code(&o), 0, "{backend}: {}{}", stdout(&o), stderr(&o));
        assert_eq!(json(&o)["findings"], serde_json::json!([]), "{backend}");
    }
}

#[test]
fn simulate_decides_every_ordered_pair_of_distinct_pods_on_each_port() {
    let file = fixture("classic-mistakes.yaml");
    let o = tierflow(&[
        "simulate", "-f", &file, "--port", "8080", "--port", "53/UDP",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let results = v["results"].as_array().expect("results");
    // 4 pods: 12 ordered pairs, 2 ports each.
    assert_eq!(results.len(), 24);
    for r in results {
        let keys: Vec<&str> = r
            .as_object()
            .expect("result")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["allowed", "decidedBy", "from", "port", "protocol", "to"],
            "{r}"
        );
        assert_ne!(r["from"], r["to"]);
    }
    let find = |from: &str, to: &str, port: u64| {
        results
            .iter()
            .find(|r| r["from"] == from && r["to"] == to && r["port"] == port)
            .unwrap_or_else(|| panic!("{from} -> {to}:{port} missing"))
    };
    // The named port `http` is 8080 on shop/web.
    let r = find("monitoring/prometheus", "shop/web", 8080);
    assert_eq!(r["allowed"], true);
    assert_eq!(r["protocol"], "TCP");
    assert_eq!(
        r["decidedBy"],
        serde_json::json!(["shop/web-from-prometheus"])
    );
    let r = find("shop/db", "kube-system/coredns", 53);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["decidedBy"], serde_json::json!(["shop/default-deny"]));
}

#[test]
fn simulate_and_lint_read_calico_tiers_so_a_pass_is_judged_by_the_next_tier() {
    // `security` passes prometheus on; the default tier's Kubernetes policy allows only web,
    // so the end of the default tier denies prometheus (before tiers were read: allowed).
    let input = b"
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
  ingress: [{action: Pass, source: {namespaceSelector: team == 'obs'}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring, labels: {team: obs}}
---
apiVersion: v1
kind: Pod
metadata: {name: prom, namespace: monitoring, labels: {app: prometheus}}
status: {podIP: 10.0.3.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
status: {podIP: 10.0.1.2}
";
    let o = tierflow_stdin(&["simulate", "-f", "-", "--port", "8080"], input);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let r = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["from"] == "monitoring/prom" && r["to"] == "shop/api")
        .cloned()
        .expect("prom -> api");
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["decidedBy"], serde_json::json!(["shop/api"]));
    let o = tierflow_stdin(&["lint", "-f", "-", "--output", "json"], input);
    assert!(code(&o) <= 1, "{}", stderr(&o));
}

#[test]
fn render_for_cilium_refuses_a_tier_selected_on_a_label_outside_pod_identities() {
    let input = b"
apiVersion: tierflow.dev/v1alpha1
kind: AppNetwork
metadata: {name: db, namespace: prod}
spec:
  tiers:
    - {name: primary, selector: {matchLabels: {app: db, statefulset.kubernetes.io/pod-name: db-0}}, ports: [{port: 5432}]}
    - {name: api, selector: {matchLabels: {app: api}}}
  flows:
    - {from: {tier: api}, to: {tier: primary}}
";
    let o = tierflow_stdin(&["render", "-f", "-", "--backend", "cilium"], input);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    let err = stderr(&o);
    for part in [
        "spec.tiers[0].selector",
        "statefulset.kubernetes.io/pod-name",
        "Cilium's default identity label filter",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    // The same AppNetwork renders on Calico.
    let o = tierflow_stdin(&["render", "-f", "-", "--backend", "calico"], input);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn cilium_identity_labels_decide_what_render_holds_and_verify_simulates() {
    let input = b"
apiVersion: tierflow.dev/v1alpha1
kind: AppNetwork
metadata: {name: db, namespace: prod}
spec:
  backend: Cilium
  tiers:
    - {name: primary, selector: {matchLabels: {app: db, k8s.io/role: primary}}, ports: [{port: 5432}]}
    - {name: api, selector: {matchLabels: {app: api}}}
  flows:
    - {from: {tier: api}, to: {tier: primary}}
";
    // Cilium's default filter drops k8s.io/role (`!k8s\.io`): refused, naming the pattern.
    let o = tierflow_stdin(&["render", "-f", "-"], input);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("k8s.io/role") && err.contains(r#""!k8s\\.io""#),
        "{err}"
    );
    // An agent whose `labels` keep it (a longer inclusive match): rendered.
    let keep = r"k8s:app k8s:k8s-app k8s:k8s\.io/role";
    let o = tierflow_stdin(
        &["render", "-f", "-", "--cilium-identity-labels", keep],
        input,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("CiliumNetworkPolicy"));
    // An agent that drops `app`: refused, naming the configured filter.
    let o = tierflow_stdin(
        &["render", "-f", "-", "--cilium-identity-labels", "k8s:!app"],
        input,
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("cilium-config labels"),
        "{}",
        stderr(&o)
    );
    // A pattern the agent would refuse is a usage error.
    let o = tierflow_stdin(
        &["render", "-f", "-", "--cilium-identity-labels", "k8s:("],
        input,
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not a regular expression"),
        "{}",
        stderr(&o)
    );
    // verify renders and simulates Cilium with the filter: exact where the agent keeps the
    // label, not on Cilium's default (the tier would be held: nothing is written).
    let o = tierflow_stdin(
        &["verify", "-f", "-", "--cilium-identity-labels", keep],
        input,
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("Cilium: ok"), "{}", stdout(&o));
    let o = tierflow_stdin(&["verify", "-f", "-"], input);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    // An app-only AppNetwork is exact by default, and not on an agent that drops `app` (held
    // there: nothing written).
    let plain = String::from_utf8_lossy(input).replace(", k8s.io/role: primary", "");
    let o = tierflow_stdin(&["verify", "-f", "-"], plain.as_bytes());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = tierflow_stdin(
        &["verify", "-f", "-", "--cilium-identity-labels", "k8s:!app"],
        plain.as_bytes(),
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Calico: ok")
            && out.contains("Cilium: ")
            && out.contains("differ from the intent"),
        "{out}"
    );
}

#[test]
fn simulate_and_lint_read_cilium_selectors_through_the_identity_label_filter() {
    let input = b"
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db, tier: data}}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: prod, labels: {app: other}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: data-ingress, namespace: prod}
spec:
  endpointSelector: {matchLabels: {tier: data}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
";
    let allowed = |args: &[&str]| {
        let mut all = vec!["simulate", "-f", "-", "--port", "80"];
        all.extend_from_slice(args);
        let v = json(&tierflow_stdin(&all, input));
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["from"] == "prod/other" && r["to"] == "prod/db")
            .map(|r| r["allowed"].clone())
            .expect("other -> db")
    };
    // By default `tier` is in the identity: the policy isolates db.
    assert_eq!(allowed(&[]), false);
    // An agent that leaves `tier` out: the policy selects no pod.
    assert_eq!(allowed(&["--cilium-identity-labels", "k8s:!tier"]), true);
    let o = tierflow_stdin(
        &["lint", "-f", "-", "--cilium-identity-labels", "k8s:!tier"],
        input,
    );
    assert!(code(&o) <= 1, "{}", stderr(&o));
}

#[test]
fn simulate_defaults_to_the_ports_the_policies_name_and_prints_a_table_for_people() {
    let file = fixture("classic-mistakes.yaml");
    let v = json(&tierflow(&["simulate", "-f", &file]));
    let mut ports: Vec<String> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["port"],
                r["protocol"].as_str().unwrap_or_default()
            )
        })
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports, ["443/TCP", "53/UDP", "5432/TCP"]);

    let o = tierflow(&[
        "simulate", "-f", &file, "--port", "8080", "--output", "table",
    ]);
    assert_eq!(code(&o), 0);
    let table = stdout(&o);
    assert!(table.starts_with("FROM"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("monitoring/prometheus  shop/web")
                && l.contains("8080/TCP  yes")
                && l.ends_with("shop/web-from-prometheus")),
        "{table}"
    );
}

#[test]
fn explain_prints_the_truth_table_of_the_shop_example() {
    let o = tierflow(&["explain", "-f", SHOP]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let header = text
        .lines()
        .find(|l| l.starts_with("FROM \\ TO"))
        .expect("header row");
    for column in [
        "frontend",
        "api",
        "database",
        "production/other",
        "kube-system/kube-dns",
        "monitoring/prometheus",
        "203.0.113.1",
    ] {
        assert!(header.contains(column), "{column} in {header}");
    }
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("row {name} in:\n{text}"))
            .to_string()
    };
    assert!(row("frontend").contains("8080/TCP"));
    assert!(row("api").contains("5432/TCP") && row("api").contains("443/TCP"));
    assert!(row("monitoring/prometheus").contains("9090/TCP"));
    assert!(row("production/other").contains("53/TCP, 53/UDP"));

    let md = tierflow(&[
        "explain",
        "-f",
        SHOP,
        "--backend",
        "cilium",
        "--output",
        "markdown",
    ]);
    assert_eq!(code(&md), 0, "{}", stderr(&md));
    let md = stdout(&md);
    assert!(
        md.contains("#### AppNetwork `production/shop` on Cilium"),
        "{md}"
    );
    assert!(md.contains("| from \\ to | `frontend` | `api` |"), "{md}");
    assert!(md.contains("| `frontend` | - | 8080/TCP |"), "{md}");
}

#[test]
fn render_writes_the_namespace_baseline_on_every_backend() {
    for (backend, kind) in [
        ("networkpolicy", "kind: NetworkPolicy"),
        ("calico", "apiVersion: projectcalico.org/v3"),
        ("cilium", "kind: CiliumNetworkPolicy"),
    ] {
        let o = tierflow(&["render", "-f", SHOP, "--backend", backend]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let y = stdout(&o);
        assert_eq!(
            y.matches("\n---\n").count() + 1,
            4,
            "{backend}: 3 tiers + baseline\n{y}"
        );
        assert!(y.contains("name: tierflow-baseline"), "{backend}");
        assert!(y.contains(kind), "{backend}");
    }
}

#[test]
fn render_turns_a_cluster_baseline_into_the_objects_each_backend_needs() {
    let file = fixture("cluster-baseline.yaml");
    // Standard backend: one baseline per covered namespace (payments is env=prod, and shop is
    // declared env=prod on the command line), merged with the AppNetwork's wish in shop.
    let o = tierflow(&["render", "-f", &file, "--namespace-labels", "shop:env=prod"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&stdout(&o))
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .collect();
    let names: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}/{}",
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["namespace"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "NetworkPolicy shop/tierflow-shop-web",
            "NetworkPolicy payments/tierflow-baseline",
            "NetworkPolicy shop/tierflow-baseline",
        ]
    );
    assert_eq!(
        docs[2]["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );

    // Calico: ONE GlobalNetworkPolicy; shop's baseline comes from its AppNetwork alone.
    let o = tierflow(&["render", "-f", &file, "--backend", "calico"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let y = stdout(&o);
    assert_eq!(y.matches("kind: GlobalNetworkPolicy").count(), 1, "{y}");
    assert!(y.contains("name: tierflow-baseline-prod"), "{y}");
    assert!(!y.contains("namespace: payments"), "{y}");
}

#[test]
fn a_broken_app_network_is_reported_with_file_document_and_field() {
    let file = fixture("broken-appnetwork.yaml");
    for command in ["render", "explain", "verify"] {
        let o = tierflow(&[command, "-f", &file]);
        assert_eq!(code(&o), 2, "{command}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "{file}: document 2 (AppNetwork shop/web): spec.tiers[0].ports[0].port: invalid type"
            )),
            "{command}: {err}"
        );
        assert!(stdout(&o).is_empty(), "{command}");
    }
}

#[test]
fn an_invalid_app_network_names_every_field() {
    let file = fixture("invalid-appnetwork.yaml");
    let o = tierflow(&["verify", "-f", &file]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{file}: document 1 (AppNetwork shop/shop): spec.flows[0].from.tier: unknown tier \"frontend\""
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.flows[1].from.except[0]: 192.168.0.0/16 is not strictly inside 10.0.0.0/8"
        ),
        "{err}"
    );
}

#[test]
fn a_broken_policy_is_reported_with_its_file_document_and_field() {
    let broken = fixture("broken-policy.yaml");
    for command in ["lint", "simulate"] {
        // The broken file comes second: document numbers restart in each file.
        let o = tierflow(&[command, "-f", &fixture("classic-mistakes.yaml"), &broken]);
        assert_eq!(code(&o), 2, "{command}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "{broken}: document 2 (NetworkPolicy shop/bad-port): spec.ingress[0].ports[0].port:"
            )),
            "{command}: {err}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["simulate"][..],
        &["simulate", "-f", SHOP, "--port", "http"],
        &["lint", "-f", SHOP, "--from-cluster"],
        &["render", "-f", SHOP, "--namespace-labels", "no-equals-sign"],
        &["explain", "-f", "/nonexistent/app.yaml"],
    ] {
        let o = tierflow(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_file_of_the_wrong_kind_is_named() {
    let o = tierflow(&["lint", "-f", SHOP]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{SHOP}: document 1"))
            && err.contains("tierflow.dev/v1alpha1/AppNetwork"),
        "{err}"
    );
}

#[test]
fn from_cluster_without_a_reachable_cluster_exits_2() {
    for command in ["simulate", "lint", "verify", "explain"] {
        let o = tierflow(&[command, "--from-cluster"]);
        assert_eq!(code(&o), 2, "{command}: {}", stderr(&o));
        assert!(stderr(&o).contains("reading the cluster"), "{}", stderr(&o));
    }
}

#[test]
fn verify_checks_cluster_baselines_and_explain_needs_an_app_network() {
    let o = tierflow(&["verify", "-f", &fixture("cluster-baseline.yaml")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "ClusterBaseline prod (NetworkPolicy): ok, every covered namespace is deny-all plus \
             DNS (1 covered: payments)"
        ),
        "{}",
        stdout(&o)
    );
    let o = tierflow(&["explain", "-f", &fixture("broken-policy.yaml")]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(
            "document 2 (NetworkPolicy shop/bad-port): expected a tierflow.dev/v1alpha1 AppNetwork"
        ),
        "{}",
        stderr(&o)
    );
}

/// Only the ClusterBaseline of the fixture, from standard input.
fn cluster_baseline_only() -> Vec<u8> {
    let text = std::fs::read_to_string(fixture("cluster-baseline.yaml")).expect("fixture");
    text.split("\n---\n")
        .next()
        .expect("first document")
        .as_bytes()
        .to_vec()
}

#[test]
fn verify_covers_every_namespace_the_input_knows_on_the_cluster_baselines_backend() {
    let stdin = cluster_baseline_only();
    // No namespace known: nothing to check, and it says so.
    let o = tierflow_stdin(&["verify", "-f", "-", "--output", "json"], &stdin);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["clusterBaselines"][0]["covered"], serde_json::json!([]));
    assert!(v["notes"][0]
        .as_str()
        .unwrap()
        .contains("names no namespace"));
    // Namespaces from --namespace-labels, on the ClusterNetworkPolicy backend.
    let with_backend = String::from_utf8(stdin)
        .unwrap()
        .replace("spec:\n", "spec:\n  backend: ClusterNetworkPolicy\n");
    let o = tierflow_stdin(
        &[
            "verify",
            "-f",
            "-",
            "--output",
            "json",
            "--namespace-labels",
            "a:env=prod",
            "--namespace-labels",
            "b:env=prod,tierflow.dev/baseline=disabled",
            "--namespace-labels",
            "c:env=dev",
        ],
        with_backend.as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["passed"], true);
    let cb = &v["clusterBaselines"][0];
    assert_eq!(cb["backend"], "ClusterNetworkPolicy");
    assert_eq!(cb["covered"], serde_json::json!(["a"]), "{v}");
    assert_eq!(cb["problems"], serde_json::json!([]));
    assert_eq!(v["appNetworks"], serde_json::json!([]));
}

#[test]
fn verify_reports_a_held_cluster_baseline_and_exits_1() {
    // Guardrails cannot be written on the standard backend: held, reported, exit 1.
    let text = std::fs::read_to_string(fixture("guardrails.yaml"))
        .unwrap()
        .replace("backend: ClusterNetworkPolicy", "backend: NetworkPolicy");
    let o = tierflow_stdin(&["verify", "-f", "-"], text.as_bytes());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "ClusterBaseline platform: HELD, nothing of it would be written: GuardrailUnsupported:"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn verify_reports_declared_flows_a_guardrail_denies_naming_the_rule() {
    let file = fixture("guardrails.yaml");
    let o = tierflow(&["verify", "-f", &file]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("AppNetwork tenant-a/shop: declared flows a guardrail denies:"),
        "{text}"
    );
    assert!(
        text.contains(
            "spec.flows[0] (api -> 169.254.169.254 on 80/TCP) is denied by guardrail \
             \"no-metadata\" of ClusterBaseline platform"
        ),
        "{text}"
    );
    // Flow 2 is denied by no guardrail (the note of the check across namespaces names it).
    assert!(!text.contains("spec.flows[2] ("), "{text}");
    // The check across namespaces finds the same guardrail at the far end of flow 1.
    assert!(
        text.contains(
            "at ingress: denied by rule spec.ingress[1] (not-from-tenant-b) of \
             policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy tierflow-guardrails-platform \
             (tierflow's, from ClusterBaseline platform)"
        ),
        "{text}"
    );
    // The same as data: flows 0 and 1, each with its rule, and the rendered guardrails object
    // denies both in the simulation (the guardrail holds).
    let v = json(&tierflow(&["verify", "-f", &file, "--output", "json"]));
    assert_eq!(v["passed"], false);
    let got: Vec<(u64, &str, bool)> = v["guardrailOverrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["flow"].as_u64().unwrap(),
                o["rule"].as_str().unwrap(),
                o["enforced"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(0, "no-metadata", true), (1, "not-from-tenant-b", true)]
    );
    assert_eq!(
        v["clusterBaselines"][0]["covered"],
        serde_json::json!(["tenant-a"])
    );
    // The same app in tenant B is not covered: nothing to report.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("namespace: tenant-a}", "namespace: tenant-b}");
    let o = tierflow_stdin(&["verify", "-f", "-"], text.as_bytes());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

// ---- suggest and the flow audit (tests/fixtures/flows/) ----

fn flows(name: &str) -> String {
    fixture(&format!("flows/{name}"))
}

#[test]
fn suggest_writes_app_networks_that_verify_and_allow_every_observed_flow_in_each_format() {
    let pods = flows("shop-pods.yaml");
    for (flag, file) in [
        ("--from-hubble", "shop.hubble.jsonl"),
        ("--from-calico-flowlogs", "shop.calico.jsonl"),
        ("--from-csv", "shop.csv"),
    ] {
        let o = tierflow(&["suggest", flag, &flows(file), "-f", &pods]);
        assert_eq!(code(&o), 0, "{flag}: {}{}", stdout(&o), stderr(&o));
        let yaml = stdout(&o);
        let err = stderr(&o);
        for backend in ["NetworkPolicy", "Calico", "Cilium"] {
            assert!(
                err.contains(&format!("the suggestion on {backend}: allows all")),
                "{flag}: {err}"
            );
        }
        assert!(
            yaml.contains(
                "    - {from: {tier: web}, to: {tier: api}, ports: [{port: 8080, protocol: TCP}]}"
            ),
            "{flag}: {yaml}"
        );
        assert!(
            yaml.contains("    # selects shop/web-7c9f8d-aaaaa, shop/web-7c9f8d-bbbbb"),
            "{yaml}"
        );
        assert!(
            yaml.contains("{from: {tier: api}, to: {kubeAPIServer: true}}"),
            "{yaml}"
        );
        assert!(!yaml.contains("pod-template-hash"), "{yaml}");
        // What it writes is an AppNetwork `verify` proves on every backend.
        let o = tierflow_stdin(&["verify", "-f", "-", "--output", "json"], yaml.as_bytes());
        assert_eq!(code(&o), 0, "{flag}: {}", stdout(&o));
        assert_eq!(json(&o)["appNetworks"].as_array().map(Vec::len), Some(2));
    }
}

#[test]
fn suggest_lists_dropped_flows_apart_and_does_not_allow_them() {
    let o = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "observed flows that were denied (not allowed by the suggestion):\n    \
             shop/web-7c9f8d-aaaaa -> shop/db-0 on 5432/TCP (1 flow, first at record 22)"
        ),
        "{err}"
    );
    assert!(err.contains("passed over 1 replies"), "{err}");
    assert!(!stdout(&o).contains("{from: {tier: web}, to: {tier: db}"));
}

#[test]
fn suggest_counts_observed_flows_per_entry_and_aggregates_addresses_only_when_asked() {
    let args = [
        "suggest",
        "--from-calico-flowlogs",
        &flows("shop.calico.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
    ];
    let plain = stdout(&tierflow(&args));
    assert!(
        plain.contains(
            "    # 14 observed flows\n    - {from: {tier: web}, to: {tier: api}, ports: [{port: 8080, protocol: TCP}]}"
        ),
        "{plain}"
    );
    assert!(plain.contains("to: {cidr: 203.0.113.10/32}"), "{plain}");
    assert!(plain.contains("to: {cidr: 203.0.113.25/32}"), "{plain}");
    let mut wide_args = args.to_vec();
    wide_args.extend(["--aggregate", "/24"]);
    let wide = stdout(&tierflow(&wide_args));
    assert!(
        wide.contains(
            "    # 3 observed flows\n    - {from: {tier: api}, to: {cidr: 203.0.113.0/24}, ports: [{port: 443, protocol: TCP}]}"
        ),
        "{wide}"
    );
    assert!(!wide.contains("/32"), "{wide}");
    let o = tierflow(&[
        "suggest",
        "--from-csv",
        &flows("shop.csv"),
        "--aggregate",
        "/33",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn suggest_against_an_intended_app_network_lists_what_it_would_deny_per_flow() {
    let o = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
        "--against",
        &flows("shop-intended.yaml"),
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "the AppNetworks on NetworkPolicy: would deny 3 of 11 observed connections (11 flows):\n\
             \x20   shop/api-0 -> shop/db-0 on 5432/TCP (1 flow, first at record 10): AppNetwork shop/shop\n\
             \x20       no flow of AppNetwork shop/shop allows it: egress of tier api (shop/tierflow-shop-api)\n\
             \x20       no flow of AppNetwork shop/shop allows it: ingress of tier db (shop/tierflow-shop-db)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("    shop/api-0 -> 203.0.113.25 on 443/TCP (1 flow, first at record 13): AppNetwork shop/shop"),
        "{out}"
    );
    assert!(
        out.contains("observed flows that were denied already (not replayed):\n    shop/web-7c9f8d-aaaaa -> shop/db-0"),
        "{out}"
    );
    // Intent that covers everything observed passes.
    let suggested = stdout(&tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
    ]));
    let dir = std::env::temp_dir().join(format!("tierflow-suggest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("suggested.yaml");
    std::fs::write(&file, suggested).unwrap();
    let o = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
        "--against",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o)
        .starts_with("the AppNetworks on NetworkPolicy: allows all 11 observed connections"));
}

#[test]
fn verify_flows_audits_any_format_detected_or_named_and_reports_json() {
    let intended = flows("shop-intended.yaml");
    let pods = flows("shop-pods.yaml");
    for file in ["shop.hubble.jsonl", "shop.calico.jsonl", "shop.csv"] {
        let o = tierflow(&["verify", "-f", &intended, &pods, "--flows", &flows(file)]);
        assert_eq!(code(&o), 1, "{file}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("would deny 3 of"),
            "{file}: {}",
            stdout(&o)
        );
    }
    let o = tierflow(&[
        "verify",
        "-f",
        &intended,
        &pods,
        "--flows",
        &flows("shop.csv"),
        "--flow-format",
        "csv",
        "--output",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["passed"], false);
    let denied = &v["replays"][0]["denied"];
    assert_eq!(denied[0]["from"], "shop/api-0");
    assert_eq!(denied[0]["to"], "shop/db-0");
    assert_eq!(denied[0]["appNetworks"], serde_json::json!(["shop/shop"]));
    assert_eq!(
        denied[0]["decidedBy"],
        serde_json::json!([
            "shop/tierflow-shop-api",
            "shop/tierflow-baseline",
            "shop/tierflow-shop-db"
        ])
    );
    // Read as the wrong format, the file is refused with its record.
    let o = tierflow(&[
        "verify",
        "-f",
        &intended,
        "--flows",
        &flows("shop.csv"),
        "--flow-format",
        "hubble",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("shop.csv: hubble record 2: not JSON"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn suggest_needs_exactly_one_flow_file() {
    let o = tierflow(&["suggest"]);
    assert_eq!(code(&o), 2);
    let o = tierflow(&[
        "suggest",
        "--from-csv",
        &flows("shop.csv"),
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
    ]);
    assert_eq!(code(&o), 2);
    // Without pods the flows' own labels are used, and said so.
    let o = tierflow(&["suggest", "--from-csv", &flows("shop.csv")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("no pods given"), "{}", stderr(&o));
}

#[test]
fn the_audit_and_suggest_exit_2_when_no_flow_record_is_read() {
    // An empty file, comments only, or a CSV header with no row: an audit of nothing would
    // pass vacuously ("allows all 0 observed connections").
    let intended = flows("shop-intended.yaml");
    for text in [
        "",
        "# nothing observed\n",
        "src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol\n",
    ] {
        let o = tierflow_stdin(
            &["verify", "-f", &intended, "--flows", "-"],
            text.as_bytes(),
        );
        assert_eq!(code(&o), 2, "{text:?}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains("no flow record read as csv"),
            "{text:?}: {}",
            stderr(&o)
        );
        assert!(!stdout(&o).contains("allows all"), "{}", stdout(&o));
        let o = tierflow_stdin(&["suggest", "--from-csv", "-"], text.as_bytes());
        assert_eq!(code(&o), 2, "{text:?}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("no flow record read"), "{}", stderr(&o));
        assert_eq!(stdout(&o), "");
    }
    let o = tierflow_stdin(&["suggest", "--from-hubble", "-"], b"\n");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no flow record read as hubble"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn suggest_never_selects_a_known_pod_that_was_not_observed_with_a_shared_label() {
    // api-admin-0 shares api-0's `app: api` and never shows up in a flow.
    let pods = std::fs::read_to_string(flows("shop-pods.yaml")).unwrap()
        + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: api-admin-0\n  namespace: shop\n  \
           labels: {app: api, component: admin}\nspec: {containers: [{name: a, image: a}]}\n\
           status: {podIP: 10.244.2.21}\n";
    let dir = std::env::temp_dir().join(format!("tierflow-suggest-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pods.yaml");
    std::fs::write(&file, pods).unwrap();
    let o = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let yaml = stdout(&o);
    assert!(!yaml.contains("api-admin-0"), "{yaml}");
    assert!(
        yaml.contains(
            "    # selects shop/api-0\n    - {name: api, selector: {matchLabels: {app: api}, \
             matchExpressions: [{key: component, operator: DoesNotExist}]}"
        ),
        "{yaml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn suggest_takes_only_a_dns_1123_name() {
    let o = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
        "--name",
        "Bad_Name",
    ]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("is not a DNS-1123 name"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    let o = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows("shop.hubble.jsonl"),
        "-f",
        &flows("shop-pods.yaml"),
        "--name",
        "shop-observed",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("name: shop-observed"), "{}", stdout(&o));
}

#[test]
fn suggest_exits_1_when_an_observed_flow_cannot_be_allowed_and_says_why() {
    // A pod known only by a per-pod label cannot be a tier: the flow is left out, and the
    // check finds the suggestion denies it.
    let o = tierflow_stdin(
        &["suggest", "--from-csv", "-"],
        b"shop,app=web,shop,app=api,,8080,TCP\nshop,pod-template-hash=abc12,shop,app=api,,8080,TCP\n",
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("tierflow: read <stdin> as csv: 2 flow records"),
        "{err}"
    );
    assert!(
        err.contains("shop/{pod-template-hash=abc12} has no stable label to select it by"),
        "{err}"
    );
    assert!(
        err.contains("the suggestion on NetworkPolicy: would deny 1 of 2 observed connections"),
        "{err}"
    );
    assert!(stdout(&o).contains("{from: {tier: web}, to: {tier: api}"));
}

fn adoption(name: &str) -> String {
    format!("{}/examples/adoption/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn import_writes_the_appnetwork_of_docs_adoption_and_proves_it_on_every_backend() {
    for backend in ["networkpolicy", "calico", "cilium"] {
        let o = tierflow(&[
            "import",
            "-f",
            &adoption("shop-policies.yaml"),
            "--backend",
            backend,
        ]);
        assert_eq!(code(&o), 0, "{backend}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains("equivalent: the AppNetworks"),
            "{}",
            stderr(&o)
        );
        // What import writes, render and verify read.
        let out = stdout(&o);
        assert!(out.contains("kind: AppNetwork") && out.contains("# from NetworkPolicy shop/web"));
        let v = tierflow_stdin(&["verify", "-f", "-"], out.as_bytes());
        assert_eq!(code(&v), 0, "{}{}", stdout(&v), stderr(&v));
    }
}

#[test]
fn import_exits_1_and_names_the_rule_without_an_appnetwork_form() {
    let o = tierflow(&[
        "import",
        "-f",
        &adoption("legacy-l7.yaml"),
        "--backend",
        "cilium",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("NOT equivalent: 1 of"), "{err}");
    assert!(
        err.contains(
            "orders/kafka spec.ingress[0]: this Cilium L7 rule (kafka) has no AppNetwork form"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "orders/orders-0 -> orders/kafka-0 on 9092/TCP: originally allowed, imported denied"
        ),
        "{err}"
    );
    assert!(stdout(&o).contains("# NOT expressed"), "{}", stdout(&o));

    // Every difference, as data.
    let o = tierflow(&[
        "import",
        "-f",
        &adoption("legacy-l7.yaml"),
        "--backend",
        "cilium",
        "--report",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    let report: Value = serde_json::from_str(&stderr(&o)).unwrap();
    let d = &report["differences"][0];
    assert_eq!(
        (
            &d["from"],
            &d["to"],
            &d["port"],
            &d["original"],
            &d["imported"]
        ),
        (
            &Value::from("orders/orders-0"),
            &Value::from("orders/kafka-0"),
            &Value::from(9092),
            &Value::from(true),
            &Value::from(false)
        )
    );
    assert_eq!(d["kinds"], serde_json::json!(["l7"]));
    assert_eq!(d["decidedBy"][0]["name"], "kafka");
}

#[test]
fn import_of_an_unreadable_policy_names_file_document_and_field() {
    let o = tierflow(&["import", "-f", &fixture("broken-policy.yaml")]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("broken-policy.yaml: document 2 (NetworkPolicy shop/bad-port): spec.ingress[0].ports[0].port"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn import_of_a_namespace_without_policies_is_bad_input() {
    let o = tierflow(&[
        "import",
        "-f",
        &adoption("shop-policies.yaml"),
        "--namespace",
        "elsewhere",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("namespace \"elsewhere\" has no"),
        "{}",
        stderr(&o)
    );
}

/// The two-team fixture with ledger's AppNetwork declaring pay's calls too.
fn pay_ledger_fixed() -> String {
    std::fs::read_to_string(fixture("across/pay-ledger.yaml"))
        .expect("fixture")
        .replace(
            "    - {from: {tier: api}, to: {tier: db}}",
            "    - {from: {tier: api}, to: {tier: db}}\n    - {from: {namespace: pay, selector: {matchLabels: {app: worker}}}, to: {tier: api}}",
        )
}

#[test]
fn verify_across_namespaces_names_the_flow_and_the_object_that_blocks_it() {
    let file = fixture("across/pay-ledger.yaml");
    let o = tierflow(&["verify", "-f", &file, "--output", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["passed"], false);
    let blocked = v["acrossNamespaces"]["blocked"]
        .as_array()
        .expect("blocked");
    assert_eq!(blocked.len(), 1, "{v}");
    assert_eq!(blocked[0]["appNetwork"], "pay/pay");
    assert_eq!(blocked[0]["flow"], 0);
    let objects: Vec<&str> = blocked[0]["blockedBy"]
        .as_array()
        .expect("blockedBy")
        .iter()
        .filter_map(|b| b["object"]["name"].as_str())
        .collect();
    assert_eq!(objects, ["tierflow-ledger-api", "tierflow-baseline"]);
    let text = stdout(&tierflow(&["verify", "-f", &file]));
    assert!(
        text.contains(
            "at ingress: no policy allows it: default deny of NetworkPolicy ledger/tierflow-baseline \
             (tierflow's, from AppNetwork ledger/ledger)"
        ),
        "{text}"
    );
    // Declaring the connection on ledger's side too clears it.
    let o = tierflow_stdin(&["verify", "-f", "-"], pay_ledger_fixed().as_bytes());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("Across namespaces: ok, every declared flow can succeed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn verify_reads_the_users_own_policies_and_names_them() {
    let mut text = pay_ledger_fixed();
    text.push_str(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-from-monitoring, namespace: pay}\nspec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}]}\n",
    );
    // A user's NetworkPolicy only adds allows: the flow still succeeds.
    let o = tierflow_stdin(&["verify", "-f", "-"], text.as_bytes());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // A user's Calico deny does not.
    text.push_str(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: no-pay, namespace: ledger}\nspec: {order: 1, selector: all(), types: [Ingress], ingress: [{action: Deny, source: {namespaceSelector: \"kubernetes.io/metadata.name == 'pay'\"}}]}\n",
    );
    let o = tierflow_stdin(&["verify", "-f", "-"], text.as_bytes());
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(
            "at ingress: denied by rule spec.ingress[0] of projectcalico.org/v3 NetworkPolicy \
             ledger/no-pay (not tierflow's)"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn why_decides_one_connection_and_gives_the_flow_to_add() {
    let file = fixture("across/pay-ledger.yaml");
    let o = tierflow(&[
        "why",
        "-f",
        &file,
        "--from",
        "pay/app=worker",
        "--to",
        "ledger/app=ledger-api",
        "--port",
        "8080/TCP",
        "--output",
        "json",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["allowed"], false);
    assert_eq!(v["decision"]["egress"], true);
    assert_eq!(v["decision"]["ingress"], false);
    assert_eq!(v["declaredBy"][0], "AppNetwork pay/pay spec.flows[0]");
    let s = &v["suggestions"][0];
    assert_eq!(s["namespace"], "ledger");
    assert_eq!(s["appNetwork"], "ledger");
    assert_eq!(s["verified"], true);
    assert_eq!(s["flow"]["from"]["namespace"], "pay");
    assert_eq!(s["flow"]["to"]["tier"], "api");

    let o = tierflow(&[
        "why",
        "-f",
        &file,
        "--from",
        "ledger/app=ledger-api",
        "--to",
        "ledger/app=ledger-db",
        "--port",
        "5432",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("spec.ingress[0] allows"),
        "{}",
        stdout(&o)
    );
    // A pod named by name must be in the input.
    let o = tierflow(&[
        "why",
        "-f",
        &file,
        "--from",
        "pay/worker-0",
        "--to",
        "ledger/app=ledger-api",
        "--port",
        "8080",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no pod pay/worker-0 in the input"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_cluster_baseline_alone_in_the_destination_namespace_blocks_a_declared_flow() {
    let file = fixture("across/cluster-baseline.yaml");
    let o = tierflow(&["verify", "-f", &file]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "at ingress: no policy allows it: default deny of NetworkPolicy \
             ledger/tierflow-baseline (tierflow's, from ClusterBaseline default)"
        ),
        "{}",
        stdout(&o)
    );
    // why: no AppNetwork in ledger, so a whole new one, confirmed by the simulation.
    let o = tierflow(&[
        "why",
        "-f",
        &file,
        "--from",
        "pay/app=worker",
        "--to",
        "ledger/app=ledger-api",
        "--port",
        "8080",
        "--output",
        "json",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["suggestions"][0]["appNetwork"], Value::Null);
    assert_eq!(v["suggestions"][0]["tier"]["name"], "ledger-api");
    assert_eq!(v["suggestions"][0]["verified"], true);
}
