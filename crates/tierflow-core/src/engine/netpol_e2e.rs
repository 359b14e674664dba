//! The upstream Kubernetes NetworkPolicy e2e cases whose policies use named ports (issue 17:
//! "the upstream NetworkPolicy e2e cases that use `endPort` and named ports agree in
//! `simulate`"), written here as our own table and checked against [`Scenario`].
//!
//! Source read (not copied): kubernetes/kubernetes
//! `test/e2e/network/netpol/network_policy.go` at commit
//! 008b3652959ca58af8be3fb5b6ecfe9ae7638282, with its model (`model.go`, e.g. at
//! 05c351a9037bd79bf88c56171a951c3097b658da) and policy helpers (`policies.go`).
//!
//! What we take from the model: namespaces `x`, `y`, `z` (selected through
//! `kubernetes.io/metadata.name`); each test names the pods it creates (`x/a`, `y/b`, ...),
//! labelled `pod: <name>`; every pod has one container per probed (port, protocol), whose
//! container port is named `serve-<port>-<protocol in lower case>`. `SetSpecIngressRules` /
//! `SetSpecEgressRules` put the direction in `policyTypes` explicitly. Reachability starts
//! all-allowed and is then narrowed as the test states; loopback (a pod to itself) is not
//! judged upstream (`ignoreLoopback`), so it is not judged here either.
//!
//! At that commit no case in the file uses `endPort`; the cases using a named port are the
//! three "... one named port" tests. The protocol-only case ("... any port traffic to a
//! server on a specific protocol") was asked for as well and is included: its port has a
//! protocol and no number.

use serde_json::{json, Value};

use super::*;

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;
const SCTP: Protocol = Protocol::Sctp;

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

/// A pod of the model as a `v1` Pod: label `pod: <name>`, one container per (port, protocol)
/// with the model's port name, and an address unique to the pod.
fn model_pod(id: &str, ports: &[u16], protocols: &[Protocol]) -> Value {
    let (ns, name) = id.split_once('/').unwrap();
    let ns_octet = match ns {
        "x" => 1,
        "y" => 2,
        "z" => 3,
        _ => panic!("the model has namespaces x, y, z only: {id}"),
    };
    let pod_octet = match name {
        "a" => 1,
        "b" => 2,
        "c" => 3,
        _ => panic!("the model has pods a, b, c only: {id}"),
    };
    let mut containers = Vec::new();
    for &port in ports {
        for &proto in protocols {
            let lower = proto_name(proto).to_lowercase();
            containers.push(json!({
                "name": format!("cont-{port}-{lower}"),
                "ports": [{
                    "containerPort": port,
                    "name": format!("serve-{port}-{lower}"),
                    "protocol": proto_name(proto),
                }],
            }));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": {"pod": name}},
        "spec": {"containers": containers},
        "status": {"podIP": format!("10.0.{ns_octet}.{pod_octet}")},
    })
}

/// A peer of an expectation: `""` any pod, `"x"` any pod of namespace x, `"x/a"` that pod.
fn peer_matches(peer: &str, pod: &str) -> bool {
    peer.is_empty() || peer == pod || pod.split_once('/').is_some_and(|(ns, _)| ns == peer)
}

/// One probe of a case: a port and protocol, and the narrowing of the all-allowed matrix,
/// applied in order: `(from peer, to peer, allowed)`.
struct Probe {
    port: u16,
    protocol: Protocol,
    expect: &'static [(&'static str, &'static str, bool)],
}

struct Case {
    /// The upstream test's name.
    name: &'static str,
    pods: &'static [&'static str],
    ports: &'static [u16],
    protocols: &'static [Protocol],
    policies: Vec<Value>,
    probes: Vec<Probe>,
}

fn netpol(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
    })
}

fn expected(probe: &Probe, from: &str, to: &str) -> bool {
    let mut allowed = true;
    for &(f, t, v) in probe.expect {
        if peer_matches(f, from) && peer_matches(t, to) {
            allowed = v;
        }
    }
    allowed
}

/// Builds the case's world and compares every (from, to) pair of its pods, loopback aside,
/// on every probe; reports all disagreements of the case at once.
fn run(case: &Case) -> Vec<String> {
    let mut objects: Vec<Value> = ["x", "y", "z"]
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    objects.extend(
        case.pods
            .iter()
            .map(|p| model_pod(p, case.ports, case.protocols)),
    );
    objects.extend(case.policies.iter().cloned());
    let s = Scenario::from_values(objects).unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
    assert_eq!(s.mode(), Mode::Kubernetes, "{}", case.name);
    let index = |id: &str| {
        let (ns, name) = id.split_once('/').unwrap();
        let i = s
            .pods()
            .iter()
            .position(|p| p.namespace == ns && p.name == name)
            .unwrap();
        Endpoint::Pod(i)
    };
    let mut bad = Vec::new();
    for probe in &case.probes {
        for &from in case.pods {
            for &to in case.pods {
                if from == to {
                    continue;
                }
                let want = expected(probe, from, to);
                let v = s.check(index(from), index(to), probe.port, probe.protocol);
                let fast = s.allows(index(from), index(to), probe.port, probe.protocol);
                if v.allowed != fast {
                    bad.push(format!(
                        "{}: check and allows disagree on {from} -> {to} {}/{}",
                        case.name,
                        probe.port,
                        proto_name(probe.protocol)
                    ));
                }
                if v.allowed != want {
                    bad.push(format!(
                        "{}: {from} -> {to} {}/{}: upstream expects {}, engine says {} ({:?})",
                        case.name,
                        probe.port,
                        proto_name(probe.protocol),
                        if want { "allowed" } else { "denied" },
                        if v.allowed { "allowed" } else { "denied" },
                        v.decided_by
                    ));
                }
            }
        }
    }
    bad
}

/// Every case as the objects it is built from (namespaces, pods, policies), by name: what
/// `adopt::import`'s round trip reads.
pub(crate) fn case_objects() -> Vec<(&'static str, Vec<Value>)> {
    cases()
        .into_iter()
        .map(|case| {
            let mut objects: Vec<Value> = ["x", "y", "z"]
                .iter()
                .map(
                    |ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
                .collect();
            objects.extend(
                case.pods
                    .iter()
                    .map(|p| model_pod(p, case.ports, case.protocols)),
            );
            objects.extend(case.policies.iter().cloned());
            (case.name, objects)
        })
        .collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "should allow ingress access on one named port",
            pods: &["x/a", "x/b", "y/a"],
            ports: &[80, 81],
            protocols: &[TCP],
            // Every pod of x admits ingress on the port named serve-81-tcp only (no protocol
            // given, so TCP).
            policies: vec![netpol(
                "x",
                "allow-all",
                json!({
                    "podSelector": {"matchLabels": {}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"ports": [{"port": "serve-81-tcp"}]}],
                }),
            )],
            probes: vec![
                Probe {
                    port: 81,
                    protocol: TCP,
                    expect: &[],
                },
                Probe {
                    port: 80,
                    protocol: TCP,
                    expect: &[("", "x", false)],
                },
            ],
        },
        Case {
            name: "should allow ingress access from namespace on one named port",
            pods: &["x/a", "x/b", "y/a", "z/a"],
            ports: &[80, 81],
            protocols: &[TCP],
            // x/a admits namespace y on the port named serve-80-tcp, protocol TCP stated.
            policies: vec![netpol(
                "x",
                "allow-client-a-via-ns-selector-80",
                json!({
                    "podSelector": {"matchLabels": {"pod": "a"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{
                        "from": [{"namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "y"}
                        }}],
                        "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}],
                    }],
                }),
            )],
            probes: vec![
                Probe {
                    port: 80,
                    protocol: TCP,
                    expect: &[("x", "x/a", false), ("z", "x/a", false)],
                },
                Probe {
                    port: 81,
                    protocol: TCP,
                    expect: &[("", "x/a", false)],
                },
            ],
        },
        Case {
            name: "should allow egress access on one named port",
            pods: &["x/a", "y/a"],
            ports: &[80, 81],
            protocols: &[TCP],
            // Every pod of x may send only to the port named serve-80-tcp (resolved on the
            // destination pod).
            policies: vec![netpol(
                "x",
                "allow-egress",
                json!({
                    "podSelector": {"matchLabels": {}},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": [{"port": "serve-80-tcp"}]}],
                }),
            )],
            probes: vec![
                Probe {
                    port: 80,
                    protocol: TCP,
                    expect: &[],
                },
                Probe {
                    port: 81,
                    protocol: TCP,
                    expect: &[("x", "", false)],
                },
            ],
        },
        Case {
            name: "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
            pods: &["x/a", "y/a"],
            ports: &[80],
            protocols: &[TCP, UDP],
            // x/a admits any TCP port from anywhere: a port entry with a protocol and no port.
            policies: vec![netpol(
                "x",
                "allow-ingress-by-proto",
                json!({
                    "podSelector": {"matchLabels": {"pod": "a"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"ports": [{"protocol": "TCP"}]}],
                }),
            )],
            probes: vec![
                Probe {
                    port: 80,
                    protocol: TCP,
                    expect: &[],
                },
                Probe {
                    port: 80,
                    protocol: UDP,
                    expect: &[("", "x/a", false)],
                },
            ],
        },
    ]
}

#[test]
fn upstream_named_port_cases_agree() {
    let all = cases();
    assert_eq!(all.len(), 4);
    let bad: Vec<String> = all.iter().flat_map(run).collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The model itself: the names resolve as upstream's pods declare them (a named port is
/// per protocol, so serve-80-tcp names nothing on UDP).
#[test]
fn model_pods_carry_the_upstream_port_names() {
    let s = Scenario::from_values(vec![model_pod("y/b", &[80, 81], &[TCP, UDP, SCTP])]).unwrap();
    let pod = &s.pods()[0];
    assert_eq!(pod.ports.len(), 6);
    for (name, port, proto) in [
        ("serve-80-tcp", 80, TCP),
        ("serve-81-udp", 81, UDP),
        ("serve-80-sctp", 80, SCTP),
    ] {
        assert!(
            pod.ports
                .iter()
                .any(|c| c.name.as_deref() == Some(name) && c.port == port && c.protocol == proto),
            "{name}"
        );
    }
}
