//! The ClusterNetworkPolicy CRD's CEL rules, evaluated by a CEL interpreter on every object
//! this backend renders.
//!
//! The standard-channel CRD of kubernetes-sigs/network-policy-api v0.2.0
//! (`policy.networking.k8s.io_clusternetworkpolicies.standard.yaml`) has exactly two
//! `x-kubernetes-validations` rules, written here with the places they sit in the schema:
//! `isCIDR(self)` on every item of an egress peer's `networks`, and `self.start < self.end` on
//! every `destinationPort.range` (tcp, udp, sctp; ingress and egress). A 1.20 API server skips
//! `x-kubernetes-validations`, so they are checked offline; `cel-interpreter` lacks the
//! Kubernetes network library, so `isCIDR` is a stand-in, as in `crd/cel_tests.rs` (Go's
//! `netip.ParsePrefix`: an address, a slash, a prefix length; host bits allowed).
//!
//! When `../shared/crds/network-policy-api/` is present (a development checkout), the test also
//! reads the CRD and checks that these two rules, at these places, are all it has.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use cel_interpreter::{Context, Program};
use serde_json::{json, Value};

/// The CRD's rules: (where, rule, message).
const RULES: [(Place, &str, &str); 2] = [
    (
        Place::NetworksItem,
        "isCIDR(self)",
        "Invalid CIDR format provided",
    ),
    (
        Place::PortRange,
        "self.start < self.end",
        "Start port must be less than End port",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// An item of `networks`.
    NetworksItem,
    /// A `range` object (of `destinationPort`).
    PortRange,
}

/// Evaluates `rule` with `self` bound to `this`.
fn eval(rule: &str, this: &Value) -> bool {
    let program = Program::compile(rule).unwrap();
    let mut ctx = Context::default();
    ctx.add_variable_from_value("self", cel_interpreter::to_value(this).unwrap());
    ctx.add_function("isCIDR", |s: Arc<String>| s.parse::<ipnet::IpNet>().is_ok());
    match program.execute(&ctx) {
        Ok(cel_interpreter::Value::Bool(b)) => b,
        other => panic!("{rule} on {this}: {other:?}"),
    }
}

/// Every value of `object` a rule applies to, with its path.
fn targets(v: &Value, path: &str, out: &mut Vec<(Place, String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                if k == "networks" {
                    for (i, n) in x.as_array().unwrap().iter().enumerate() {
                        out.push((Place::NetworksItem, format!("{p}[{i}]"), n.clone()));
                    }
                } else if k == "range" && path.ends_with(".destinationPort") {
                    out.push((Place::PortRange, p.clone(), x.clone()));
                }
                targets(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                targets(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn check(object: &Value) -> Vec<String> {
    let mut found = Vec::new();
    targets(object, "", &mut found);
    let mut failures = Vec::new();
    for (place, path, this) in &found {
        for (p, rule, message) in RULES {
            if p == *place && !eval(rule, this) {
                failures.push(format!("{path}: {message} ({rule} on {this})"));
            }
        }
    }
    failures
}

#[test]
fn every_rendered_object_passes_the_crds_cel_rules() {
    let objects = super::tests::rendered_objects();
    let mut places = BTreeSet::new();
    for o in &objects {
        assert_eq!(o["kind"], "ClusterNetworkPolicy");
        let failures = check(o);
        assert!(
            failures.is_empty(),
            "{}: {failures:?}",
            o["metadata"]["name"]
        );
        let mut found = Vec::new();
        targets(o, "", &mut found);
        places.extend(found.into_iter().map(|(p, ..)| p));
    }
    // Both rules were exercised, not vacuously passed.
    assert_eq!(
        places,
        BTreeSet::from([Place::NetworksItem, Place::PortRange])
    );
}

/// The check bites: what the API server would refuse, it refuses.
#[test]
fn the_cel_check_rejects_a_bad_cidr_and_an_empty_range() {
    let bad = json!({"spec": {
        "egress": [{"to": [{"networks": ["10.0.0.0/8", "10.0.0.1", "fd00::/129"]}],
                    "protocols": [{"tcp": {"destinationPort": {"range": {"start": 80, "end": 80}}}},
                                  {"udp": {"destinationPort": {"range": {"start": 53, "end": 5353}}}}]}]
    }});
    assert_eq!(
        check(&bad),
        [
            ".spec.egress[0].protocols[0].tcp.destinationPort.range: Start port must be less than End port (self.start < self.end on {\"end\":80,\"start\":80})",
            ".spec.egress[0].to[0].networks[1]: Invalid CIDR format provided (isCIDR(self) on \"10.0.0.1\")",
            ".spec.egress[0].to[0].networks[2]: Invalid CIDR format provided (isCIDR(self) on \"fd00::/129\")",
        ]
    );
    // Host bits are allowed, as by Kubernetes' isCIDR.
    assert!(eval("isCIDR(self)", &json!("10.0.0.1/8")));
}

/// The rules above are all the CRD has, where it has them (skipped without the CRD).
#[test]
fn the_crd_has_exactly_these_rules() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/crds/network-policy-api/policy.networking.k8s.io_clusternetworkpolicies.standard.yaml",
    );
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} not present", path.display());
        return;
    };
    let crd: Value = serde_yaml::from_str(&text).unwrap();
    fn walk(schema: &Value, path: &str, out: &mut BTreeSet<(Place, String, String)>) {
        let Some(m) = schema.as_object() else { return };
        if let Some(rules) = m.get("x-kubernetes-validations").and_then(Value::as_array) {
            let place = if path.ends_with(".networks[]") {
                Place::NetworksItem
            } else if path.ends_with(".destinationPort.range") {
                Place::PortRange
            } else {
                panic!("a CEL rule at an unexpected place: {path}: {rules:?}")
            };
            for r in rules {
                out.insert((
                    place,
                    r["rule"].as_str().unwrap().to_string(),
                    r["message"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if let Some(props) = m.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                walk(v, &format!("{path}.{k}"), out);
            }
        }
        if let Some(items) = m.get("items") {
            walk(items, &format!("{path}[]"), out);
        }
    }
    let mut found = BTreeSet::new();
    for version in crd["spec"]["versions"].as_array().unwrap() {
        walk(&version["schema"]["openAPIV3Schema"], "", &mut found);
    }
    let expected: BTreeSet<_> = RULES
        .iter()
        .map(|(p, r, m)| (*p, r.to_string(), m.to_string()))
        .collect();
    assert_eq!(found, expected);
}
