//! The Argo CD health check in docs/argocd-health.lua, run by a real Lua interpreter against
//! the statuses tierflow writes. Skipped (with a message) where no `lua5.4`/`lua` is installed.

use std::process::Command;

use serde_json::{json, Value};

fn lua() -> Option<&'static str> {
    ["lua5.4", "lua"]
        .into_iter()
        .find(|l| Command::new(l).arg("-v").output().is_ok())
}

/// JSON → a Lua table constructor.
fn to_lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "{{{}}}",
            a.iter().map(to_lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("[{k:?}] = {}", to_lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn health(obj: Value) -> (String, String) {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/argocd-health.lua"
    ))
    .unwrap();
    let program = format!(
        "obj = {}\nlocal hs = (function()\n{script}\nend)()\nprint(hs.status)\nprint(hs.message)\n",
        to_lua(&obj)
    );
    let out = Command::new(lua().unwrap())
        .arg("-e")
        .arg(program)
        .output()
        .expect("lua");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    (
        lines.next().unwrap_or_default().to_string(),
        lines.next().unwrap_or_default().to_string(),
    )
}

fn app(generation: i64, status: Value) -> Value {
    json!({"metadata": {"name": "shop", "generation": generation}, "status": status})
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

#[test]
fn argo_cd_reads_tierflow_status_as_healthy_progressing_or_degraded() {
    if lua().is_none() {
        eprintln!("SKIPPED: no Lua interpreter (apt-get install lua5.4)");
        return;
    }
    let ready = condition(
        "Ready",
        "True",
        "Applied",
        "3 NetworkPolicy objects for 6 flows applied",
    );
    assert_eq!(
        health(app(
            2,
            json!({"observedGeneration": 2, "conditions": [ready]})
        ))
        .0,
        "Healthy"
    );
    assert_eq!(
        health(app(
            3,
            json!({"observedGeneration": 2, "conditions": [ready]})
        ))
        .0,
        "Progressing"
    );
    assert_eq!(health(app(1, json!(null))).0, "Progressing");
    let invalid = condition(
        "Ready",
        "False",
        "InvalidSpec",
        "spec.flows[1].to.tier: unknown tier \"db\"",
    );
    let stalled = condition(
        "Stalled",
        "True",
        "InvalidSpec",
        "spec.flows[1].to.tier: unknown tier \"db\"",
    );
    let (status, message) = health(app(
        2,
        json!({"observedGeneration": 2, "conditions": [invalid, stalled]}),
    ));
    assert_eq!(status, "Degraded");
    assert!(message.contains("unknown tier"), "{message}");
    let unsupported = condition(
        "Ready",
        "False",
        "UnsupportedOnBackend",
        "fqdn needs Cilium",
    );
    assert_eq!(
        health(app(
            2,
            json!({"observedGeneration": 2, "conditions": [unsupported]})
        ))
        .0,
        "Degraded"
    );
}
