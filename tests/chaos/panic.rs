//! A panic in any task takes the whole process down (exit code 101, from the panic hook
//! `src/main.rs` installs), so Kubernetes restarts it instead of leaving a live-but-dead
//! controller that still answers `/healthz`.
//!
//! tierflow itself has no panic reachable from API data (see `tests/fuzz.rs` for the validator
//! and renderers), so the panic is provoked through a library it uses, without test-only code in
//! `src/`: a fake API server (plain HTTP, a few lines below) lists a Namespace without
//! `metadata.name`, something a real API server never sends. kube-runtime's reflector panics on
//! it (`.metadata.name missing`) inside the Namespace watch task, a spawned tokio task: without
//! the hook tokio would only end that task and the process would live on.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::harness::{self, Operator, OperatorOptions};

/// One response of the fake API server, by request path.
fn respond(path: &str) -> (u16, String) {
    let list = |items: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{"resourceVersion":"1"}},"items":[{items}]}}"#
        )
    };
    if path.starts_with("/api/v1/namespaces?") && !path.contains("watch=") {
        // No metadata.name: the one thing a real API server always sets.
        let ns = r#"{"apiVersion":"v1","kind":"Namespace",
            "metadata":{"uid":"00000000-0000-0000-0000-000000000001","resourceVersion":"1"}}"#;
        return (200, list(ns));
    }
    if path.starts_with("/apis/projectcalico.org") {
        return (
            404,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#.into(),
        );
    }
    (200, list(""))
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 2 {
            line.clear();
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        if path.contains("watch=") {
            // A watch that never has anything to say.
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        let (code, body) = respond(&path);
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body.as_bytes()).is_err()
        {
            return;
        }
    }
}

#[tokio::test]
async fn a_panic_in_a_spawned_task_exits_the_process_with_101() {
    let name = "panic";
    let logs = harness::logs_dir(name);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    let kubeconfig = logs.join("fake.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \
             'http://127.0.0.1:{port}'}}\nusers:\n- name: u\n  user: {{token: x}}\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\n\
             current-context: fake\n"
        ),
    )
    .expect("kubeconfig");
    let opts = OperatorOptions {
        kubeconfig: Some(kubeconfig.clone()),
        ..OperatorOptions::default()
    };
    let mut op = Operator::start_in(&logs, &kubeconfig, "tierflow", &opts);
    let status = op.wait_exit(Duration::from_secs(30)).await;
    let log = op.log_text();
    let panic_line = log
        .lines()
        .find(|l| l.contains("panicked"))
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "CHAOS-REPORT {name}: exit {:?} ({status:?}); panic: {panic_line}",
        status.and_then(|s| s.code())
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(101),
        "the operator did not exit with 101; log {}:\n{log}",
        op.log.display()
    );
    // Every task runs on the main thread (a current-thread runtime), so the thread's name
    // cannot tell; the backtrace can: the panic unwound through the harness tokio polls a
    // spawned task in, not the main future.
    assert!(
        log.contains("tokio::runtime::task::harness"),
        "the panic was not in a spawned task: {panic_line}\n{log}"
    );
    assert!(log.contains(".metadata.name missing"), "{log}");
}
