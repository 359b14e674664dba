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
