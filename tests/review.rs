//! The review tools, run as the binary: `tierflow diff` (files and `--git-base`, text /
//! Markdown / JSON, exit codes) and the diagrams of `explain --output mermaid|dot|markdown`.
//!
//! Diagrams are checked by the real renderers: the Mermaid text is parsed and rendered by the
//! `mermaid` npm package in headless Chromium (`support::mermaid`), the Graphviz text by
//! `dot -Tsvg`. Where those tools are missing the tests say so and skip, except on CI
//! (`CI=true`), where they fail: `.ci/run` installs them.

#[path = "review/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shop.yaml");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tierflow_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tierflow"));
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.args(args)
        .env("KUBECONFIG", "/nonexistent/tierflow-test-kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run tierflow")
}

fn tierflow(args: &[&str]) -> Output {
    tierflow_in(None, args)
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
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// One connection of a JSON diff: `(app, backend, sign, from, to, port, flows)`.
type Change = (String, String, char, String, String, String, Vec<u64>);

/// Every connection of the JSON diff's AppNetworks.
fn changes(v: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    for a in v["appNetworks"].as_array().expect("appNetworks") {
        for b in a["backends"].as_array().expect("backends") {
            for (key, sign) in [("allowed", '+'), ("denied", '-')] {
                for c in b[key].as_array().expect(key) {
                    out.push((
                        a["appNetwork"].as_str().unwrap_or_default().to_string(),
                        b["backend"].as_str().unwrap_or_default().to_string(),
                        sign,
                        c["from"].as_str().unwrap_or_default().to_string(),
                        c["to"].as_str().unwrap_or_default().to_string(),
                        format!(
                            "{}/{}",
                            c["port"],
                            c["protocol"].as_str().unwrap_or_default()
                        ),
                        c["flows"]
                            .as_array()
                            .map(|f| f.iter().filter_map(Value::as_u64).collect())
                            .unwrap_or_default(),
                    ));
                }
            }
        }
    }
    out
}

/// A fresh directory under the test target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("review-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const BACKENDS: [&str; 3] = ["NetworkPolicy", "Calico", "Cilium"];

#[test]
fn a_changed_app_network_lists_each_connection_with_the_flow_that_causes_it_on_every_backend() {
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("diff/shop-new.yaml"),
        "--output",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["equal"], false);
    assert_eq!(v["appNetworks"][0]["change"], "changed");
    let got = changes(&v);
    for backend in BACKENDS {
        let mine: Vec<_> = got
            .iter()
            .filter(|c| c.1 == backend)
            .map(|c| (c.2, c.3.as_str(), c.4.as_str(), c.5.as_str(), c.6.clone()))
            .collect();
        // Allowed: tied to the new version's flows; denied: to the old version's.
        assert_eq!(
            mine,
            [
                ('+', "api", "database", "5433/TCP", vec![1]),
                ('+', "database", "database", "5433/TCP", vec![2]),
                ('+', "batch/reports", "api", "8080/TCP", vec![5]),
                ('-', "api", "203.0.113.1", "443/TCP", vec![5]),
            ],
            "{backend}"
        );
    }
    // The text names the flows too.
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("diff/shop-new.yaml"),
    ]);
    let text = stdout(&o);
    assert!(
        text.contains(
            "+ batch/reports -> api on 8080/TCP: declared by spec.flows[5] [every backend]"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "- api -> 203.0.113.1 on 443/TCP: was declared by spec.flows[5] of the old version"
        ),
        "{text}"
    );
}

#[test]
fn reordered_flows_renamed_keys_and_equivalent_selectors_diff_empty_and_exit_0() {
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("diff/shop-reordered.yaml"),
        "--exit-code",
        "--output",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["equal"], true);
    assert_eq!(v["appNetworks"], serde_json::json!([]));
    assert_eq!(v["coverage"], serde_json::json!([]));
    assert_eq!(v["baselines"], serde_json::json!([]));
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("diff/shop-reordered.yaml"),
        "--output",
        "markdown",
    ]);
    assert!(stdout(&o).contains("No semantic change"), "{}", stdout(&o));
}

#[test]
fn a_cluster_baseline_change_alone_changes_coverage_and_reachability() {
    let o = tierflow(&[
        "diff",
        "-f",
        &fixture("diff/platform-old.yaml"),
        "--against",
        &fixture("diff/platform-new.yaml"),
        "--output",
        "json",
        "--exit-code",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["clusterBaselines"],
        serde_json::json!([{"name": "platform", "change": "changed"}])
    );
    assert_eq!(
        v["coverage"],
        serde_json::json!([{"clusterBaseline": "platform", "namespace": "sandbox",
                            "before": "not selected", "after": "covered"}])
    );
    assert_eq!(
        v["baselines"],
        serde_json::json!([
            {"namespace": "payments", "before": {"denyIngress": true, "denyEgress": false},
             "after": {"denyIngress": true, "denyEgress": true}},
            {"namespace": "sandbox", "before": {"denyIngress": false, "denyEgress": false},
             "after": {"denyIngress": true, "denyEgress": true}},
            {"namespace": "shop", "before": {"denyIngress": true, "denyEgress": false},
             "after": {"denyIngress": true, "denyEgress": true}},
        ])
    );
    // The AppNetwork did not change, but its namespace's egress did: the pod of shop in no
    // tier may no longer reach outside, on every backend, ClusterNetworkPolicy included.
    let got = changes(&v);
    for backend in ["NetworkPolicy", "Calico", "Cilium", "ClusterNetworkPolicy"] {
        assert!(
            got.iter().any(|c| c.0 == "shop/shop"
                && c.1 == backend
                && c.2 == '-'
                && c.3 == "shop/other"
                && c.4 == "0.0.0.1"
                && c.5 == "22/TCP"
                && c.6.is_empty()),
            "{backend}: {got:?}"
        );
        assert!(
            !got.iter().any(|c| c.2 == '+'),
            "nothing becomes allowed: {got:?}"
        );
    }
    // DNS stays open.
    assert!(!got
        .iter()
        .any(|c| c.4.contains("kube-dns") && c.5.starts_with("53/")));
    // In the namespaces without AppNetworks: sandbox is newly isolated, payments loses egress.
    let namespaces = v["namespaces"].as_array().expect("namespaces");
    assert_eq!(namespaces.len(), 4, "one entry per backend");
    for b in namespaces {
        let denied: Vec<String> = b["denied"]
            .as_array()
            .expect("denied")
            .iter()
            .map(|c| format!("{} -> {} {}", c["from"], c["to"], c["port"]))
            .collect();
        for want in [
            "\"tierflow-diff-peer/peer\" -> \"sandbox/probe\" 80",
            "\"payments/probe\" -> \"192.0.2.1\" 443",
        ] {
            assert!(
                denied.iter().any(|d| d == want),
                "{}: {want} in {denied:?}",
                b["backend"]
            );
        }
    }
}

#[test]
fn namespaces_named_by_namespace_labels_count_for_coverage_in_both_versions() {
    let v = json(&tierflow(&[
        "diff",
        "-f",
        &fixture("diff/platform-old.yaml"),
        "--against",
        &fixture("diff/platform-new.yaml"),
        "--namespace-labels",
        "legacy:env=dev",
        "--output",
        "json",
    ]));
    let covered: Vec<(&str, &str, &str)> = v["coverage"]
        .as_array()
        .expect("coverage")
        .iter()
        .map(|c| {
            (
                c["namespace"].as_str().unwrap_or_default(),
                c["before"].as_str().unwrap_or_default(),
                c["after"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        covered,
        [
            ("legacy", "not selected", "covered"),
            ("sandbox", "not selected", "covered")
        ]
    );
}

#[test]
fn added_and_removed_app_networks_are_tied_to_the_version_that_has_them() {
    let dir = scratch("added");
    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "").expect("write");
    let empty = empty.display().to_string();
    let added = json(&tierflow(&[
        "diff",
        "-f",
        &empty,
        "--against",
        SHOP,
        "--output",
        "json",
    ]));
    assert_eq!(added["appNetworks"][0]["change"], "added");
    let got = changes(&added);
    // Without a baseline before, the app's own flows were already allowed; what the new
    // AppNetwork changes is everything it now denies, and nothing is tied to a flow.
    assert!(got.iter().all(|c| c.2 == '-' && c.6.is_empty()), "{got:?}");
    assert!(got
        .iter()
        .any(|c| c.3 == "frontend" && c.4 == "database" && c.5 == "5432/TCP"));
    let removed = json(&tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &empty,
        "--output",
        "json",
    ]));
    assert_eq!(removed["appNetworks"][0]["change"], "removed");
    let got = changes(&removed);
    assert!(got.iter().all(|c| c.2 == '+'), "{got:?}");
}

#[test]
fn exit_codes_follow_git_diff() {
    let new = fixture("diff/shop-new.yaml");
    assert_eq!(code(&tierflow(&["diff", "-f", SHOP, "--against", &new])), 0);
    assert_eq!(
        code(&tierflow(&[
            "diff",
            "-f",
            SHOP,
            "--against",
            &new,
            "--exit-code"
        ])),
        1
    );
    assert_eq!(
        code(&tierflow(&[
            "diff",
            "-f",
            SHOP,
            "--against",
            SHOP,
            "--exit-code"
        ])),
        0
    );
    // Bad input: not YAML, and an invalid spec (with the validator's message and field).
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("broken-appnetwork.yaml"),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("invalid-appnetwork.yaml"),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("spec.flows[0].from.tier: unknown tier \"frontend\""),
        "{}",
        stderr(&o)
    );
    // Usage: --against is required with -f, and PATHS only go with --git-base.
    assert_eq!(code(&tierflow(&["diff", "-f", SHOP])), 2);
    assert_eq!(
        code(&tierflow(&[
            "diff",
            "-f",
            SHOP,
            "--against",
            SHOP,
            "x.yaml"
        ])),
        2
    );
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn git_base_compares_a_revision_with_the_work_tree() {
    let dir = scratch("git");
    git(&dir, &["init", "-q"]);
    std::fs::create_dir_all(dir.join("deploy")).expect("mkdir");
    std::fs::copy(SHOP, dir.join("deploy/shop.yaml")).expect("copy");
    std::fs::copy(fixture("diff/platform-old.yaml"), dir.join("platform.yaml")).expect("copy");
    // Files that are not intent, one of them not even YAML, are passed over.
    std::fs::write(
        dir.join("deploy/chart.yaml"),
        "{{ .Values.x }}\nkind: Service\n",
    )
    .expect("w");
    std::fs::write(dir.join("README.md"), "kind: AppNetwork\n").expect("w");
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "base"]);

    // Nothing changed: empty, exit 0 even with --exit-code.
    let o = tierflow_in(Some(&dir), &["diff", "--git-base", "HEAD", "--exit-code"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("No semantic change"), "{}", stdout(&o));

    std::fs::copy(fixture("diff/shop-new.yaml"), dir.join("deploy/shop.yaml")).expect("copy");
    let o = tierflow_in(
        Some(&dir),
        &[
            "diff",
            "--git-base",
            "HEAD",
            "--exit-code",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let got = changes(&json(&o));
    assert!(got
        .iter()
        .any(|c| c.2 == '+' && c.3 == "batch/reports" && c.6 == [5]));

    // PATHS limit the comparison (relative to the current directory).
    let o = tierflow_in(
        Some(&dir.join("deploy")),
        &[
            "diff",
            "--git-base",
            "HEAD",
            "--exit-code",
            "../platform.yaml",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // A file deleted in the work tree removes its AppNetwork; an untracked one adds.
    std::fs::remove_file(dir.join("deploy/shop.yaml")).expect("rm");
    std::fs::copy(fixture("diff/peers.yaml"), dir.join("deploy/peers.yaml")).expect("copy");
    let v = json(&tierflow_in(
        Some(&dir),
        &["diff", "--git-base", "HEAD", "--output", "json"],
    ));
    let apps: Vec<(String, String)> = v["appNetworks"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|a| {
            (
                a["appNetwork"].as_str().unwrap_or_default().to_string(),
                a["change"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        apps,
        [
            ("pay/payments".to_string(), "added".to_string()),
            ("production/shop".to_string(), "removed".to_string())
        ]
    );

    // A revision that does not exist is bad input.
    let o = tierflow_in(Some(&dir), &["diff", "--git-base", "no-such-branch"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a commit"), "{}", stderr(&o));
}

#[test]
fn the_markdown_comment_has_a_summary_a_table_and_a_diagram_of_the_change() {
    let o = tierflow(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &fixture("diff/shop-new.yaml"),
        "--output",
        "markdown",
    ]);
    let md = stdout(&o);
    assert!(md.starts_with("### tierflow diff\n\n**1 AppNetwork changed: 3 connections become allowed, 1 becomes denied**"), "{md}");
    assert!(
        md.contains("| **+ allowed** | `batch/reports` | `api` | 8080/TCP | `spec.flows[5]` | every backend |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| **− denied** | `api` | `203.0.113.1` | 443/TCP | `spec.flows[5]` | every backend |"
        ),
        "{md}"
    );
    let diagrams = support::mermaid::blocks(&md);
    assert_eq!(diagrams.len(), 1, "{md}");
    let d = &diagrams[0];
    assert!(d.contains("==>|\"+ 8080/TCP\"|"), "{d}");
    assert!(d.contains("-.->|\"- 443/TCP\"|"), "{d}");
    assert!(d.contains("linkStyle"), "{d}");
}

#[test]
fn explain_draws_tiers_peers_dns_and_the_api_server_once() {
    let o = tierflow(&[
        "explain",
        "-f",
        &fixture("diff/peers.yaml"),
        "--output",
        "mermaid",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = stdout(&o);
    for want in [
        "subgraph g0[\"namespace pay\"]",
        "(\"gateway\")",
        "{{\"world (outside the cluster)\"}}",
        "{{\"*.stripe.com\"}}",
        "{{\"10.20.0.0/16 except 10.20.5.0/24\"}}",
        "[(\"kube-apiserver\")]",
        "subgraph g1[\"namespaces team in (a,b)\"]",
        "subgraph g2[\"every namespace\"]",
        "|\"30000-30010/TCP (HTTP rules)\"|",
    ] {
        assert!(m.contains(want), "{want} in\n{m}");
    }
    assert_eq!(m.matches("kube-apiserver").count(), 1, "{m}");
    assert_eq!(
        m.matches("DNS app.kubernetes.io/name=coredns").count(),
        1,
        "{m}"
    );
    assert_eq!(m.matches("|\"53/UDP, 53/TCP\"|").count(), 1, "{m}");
    // Markdown embeds the same diagram after the truth table.
    let md = stdout(&tierflow(&["explain", "-f", SHOP, "--output", "markdown"]));
    let blocks = support::mermaid::blocks(&md);
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        blocks[0],
        stdout(&tierflow(&["explain", "-f", SHOP, "--output", "mermaid"]))
    );
}

/// Every diagram the commands print, as Mermaid.
fn mermaid_diagrams() -> Vec<(String, String, Vec<&'static str>)> {
    let run = |args: &[&str]| {
        let o = tierflow(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let shop_new = fixture("diff/shop-new.yaml");
    let platform_old = fixture("diff/platform-old.yaml");
    let platform_new = fixture("diff/platform-new.yaml");
    let peers = fixture("diff/peers.yaml");
    let diff_md = run(&[
        "diff",
        "-f",
        SHOP,
        "--against",
        &shop_new,
        "--output",
        "markdown",
    ]);
    let platform_md = run(&[
        "diff",
        "-f",
        &platform_old,
        "--against",
        &platform_new,
        "--output",
        "markdown",
    ]);
    let mut out = vec![
        (
            "explain shop".to_string(),
            run(&["explain", "-f", SHOP, "--output", "mermaid"]),
            vec![
                "frontend",
                "api",
                "database",
                "pods app=prometheus",
                "8080/TCP",
                "DNS k8s-app=kube-dns",
            ],
        ),
        (
            "explain peers".to_string(),
            run(&["explain", "-f", &peers, "--output", "mermaid"]),
            vec![
                "gateway",
                "worker",
                "*.stripe.com",
                "kube-apiserver",
                "every pod",
                "10.20.0.0/16 except 10.20.5.0/24",
            ],
        ),
    ];
    let empty = scratch("mermaid-empty").join("empty.yaml");
    std::fs::write(&empty, "").expect("write");
    let added_md = run(&[
        "diff",
        "-f",
        &empty.display().to_string(),
        "--against",
        &peers,
        "--output",
        "markdown",
    ]);
    for (name, md, labels) in [
        ("diff added", added_md, vec!["gateway", "worker"]),
        (
            "diff shop",
            diff_md,
            vec![
                "reports",
                "database",
                "203.0.113.1",
                "+ 8080/TCP",
                "- 443/TCP",
            ],
        ),
        ("diff platform", platform_md, vec!["web", "other"]),
    ] {
        let blocks = support::mermaid::blocks(&md);
        assert!(!blocks.is_empty(), "{name}: no diagram in\n{md}");
        for (i, b) in blocks.into_iter().enumerate() {
            out.push((format!("{name} #{i}"), b, labels.clone()));
        }
    }
    out
}

#[test]
fn every_mermaid_diagram_is_parsed_and_rendered_by_mermaid_in_chromium() {
    let Some(tools) = support::mermaid::Tools::find() else {
        return;
    };
    let diagrams = mermaid_diagrams();
    let mut inputs: Vec<(String, String)> = diagrams
        .iter()
        .map(|(n, t, _)| (n.clone(), t.clone()))
        .collect();
    // The harness itself must see an error: a diagram Mermaid cannot parse.
    inputs.push(("broken".into(), "flowchart LR\n  a -->|\"x| b[\n".into()));
    let rendered = tools.render(&scratch("mermaid"), &inputs);
    assert_eq!(rendered.len(), inputs.len());
    let broken = rendered.last().expect("broken");
    assert!(
        broken.error.is_some(),
        "a broken diagram must fail: {broken:?}"
    );
    for ((name, _, labels), r) in diagrams.iter().zip(&rendered) {
        assert_eq!(
            r.error,
            None,
            "{name} did not render:\n{}",
            inputs
                .iter()
                .find(|i| &i.0 == name)
                .map_or("", |i| i.1.as_str())
        );
        assert!(r.svg.starts_with("<svg"), "{name}: {}", r.svg);
        for l in labels {
            assert!(
                r.svg.contains(&support::mermaid::html_text(l)),
                "{name}: {l:?} not in the SVG"
            );
        }
    }
}

#[test]
fn every_dot_diagram_is_read_by_graphviz() {
    let Some(dot) = support::require("dot", "Graphviz (apt install graphviz)") else {
        return;
    };
    for file in [SHOP.to_string(), fixture("diff/peers.yaml")] {
        let text = stdout(&tierflow(&["explain", "-f", &file, "--output", "dot"]));
        let dir = scratch("dot");
        let input = dir.join("in.dot");
        std::fs::write(&input, &text).expect("write");
        let o = Command::new(&dot)
            .arg("-Tsvg")
            .arg(&input)
            .output()
            .expect("run dot");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.trim().is_empty(),
            "{file}: {err}\n{text}"
        );
        let svg = String::from_utf8_lossy(&o.stdout);
        assert!(svg.contains("<svg"), "{svg}");
        for l in ["api", "DNS", "53/UDP, 53/TCP"] {
            if file == SHOP || l != "api" {
                assert!(svg.contains(l), "{file}: {l} in {svg}");
            }
        }
    }
}

#[test]
fn the_documented_diff_example_is_what_the_command_prints() {
    let out = stdout(&tierflow_in(
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
        &[
            "diff",
            "-f",
            "examples/shop.yaml",
            "--against",
            "tests/fixtures/diff/shop-new.yaml",
        ],
    ));
    for doc in ["README.md", "docs/cli.md"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc))
            .expect("read the doc");
        for line in out.lines() {
            assert!(
                text.contains(line),
                "{doc} lacks {line:?}; the command prints:\n{out}"
            );
        }
    }
}

#[test]
fn the_documented_suggest_and_flow_audit_examples_are_what_the_commands_print() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flows");
    let suggest = tierflow_in(
        Some(&dir),
        &[
            "suggest",
            "--from-hubble",
            "shop.hubble.jsonl",
            "-f",
            "shop-pods.yaml",
        ],
    );
    let audit = tierflow_in(
        Some(&dir),
        &[
            "verify",
            "-f",
            "shop-intended.yaml",
            "-f",
            "shop-pods.yaml",
            "--flows",
            "shop.hubble.jsonl",
        ],
    );
    let read = |doc: &str| {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc))
            .expect("read the doc")
    };
    // docs/cli.md shows all three outputs whole, each as one block.
    let cli = read("docs/cli.md");
    for out in [stderr(&suggest), stdout(&suggest), stdout(&audit)] {
        assert!(!out.is_empty());
        assert!(
            cli.contains(&out),
            "docs/cli.md lacks this output, whole:\n{out}"
        );
    }
    // docs/adoption.md shows the check whole, and lines of the YAML in their order.
    let adoption = read("docs/adoption.md");
    let err = stderr(&suggest);
    let check = &err[err
        .find("the suggestion on NetworkPolicy")
        .expect("the check")..];
    assert!(adoption.contains(check), "docs/adoption.md lacks:\n{check}");
    let yaml = stdout(&suggest);
    let start = adoption
        .find("# selects shop/api-0")
        .expect("the review excerpt");
    let excerpt = &adoption[start..start + adoption[start..].find("```").expect("its end")];
    let mut at = 0;
    for line in excerpt.lines().map(str::trim).filter(|l| *l != "...") {
        let found = yaml[at..]
            .find(line)
            .unwrap_or_else(|| panic!("docs/adoption.md: {line:?} is not next in:\n{yaml}"));
        at += found + line.len();
    }
}
