//! Every CEL rule of the CRDs, evaluated offline (`cel-interpreter`) on the cases `validate`
//! is tested with: where a rule applies, CEL's verdict and message agree with `validate`'s.
//!
//! `cel-interpreter` lacks the Kubernetes libraries; the tests register small stand-ins:
//! `join` (Kubernetes strings library) and the network library's `isCIDR`, `cidr()`,
//! `.masked()`, `.containsCIDR()` and `isIP` (1.31+), written on `ipnet` / `std::net` to
//! Kubernetes' semantics for the inputs used here (a `cidr` value is its text form).

use std::collections::HashMap;
use std::sync::Arc;

use cel_interpreter::extractors::This;
use cel_interpreter::{Context, ExecutionError, Program, Value};
use serde_json::Value as Json;

use super::{restrict, uses_network_library, Cel, KEY};
use crate::validate::tests::{case_spec, with_port, BASELINE_CASES, PORT_CASES, SPEC_CASES};

fn to_cel(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap())),
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(a) => Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Json::Object(m) => {
            let map: HashMap<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            map.into()
        }
    }
}

fn net(s: &str) -> Result<ipnet::IpNet, ExecutionError> {
    s.parse()
        .map_err(|_| ExecutionError::function_error("cidr", format!("{s:?} is not a CIDR")))
}

fn context(this: &Json) -> Context<'static> {
    let mut ctx = Context::default();
    ctx.add_variable_from_value("self", to_cel(this));
    ctx.add_function(
        "join",
        |This(list): This<Arc<Vec<Value>>>, sep: Arc<String>| -> String {
            list.iter()
                .map(|v| match v {
                    Value::String(s) => s.to_string(),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(&sep)
        },
    );
    // Kubernetes isCIDR: Go's netip.ParsePrefix (host bits allowed).
    ctx.add_function("isCIDR", |s: Arc<String>| s.parse::<ipnet::IpNet>().is_ok());
    ctx.add_function("isIP", |s: Arc<String>| {
        s.parse::<std::net::IpAddr>().is_ok()
    });
    ctx.add_function("cidr", |s: Arc<String>| -> Result<Value, ExecutionError> {
        Ok(Value::String(Arc::new(net(&s)?.to_string())))
    });
    ctx.add_function(
        "masked",
        |This(s): This<Arc<String>>| -> Result<Value, ExecutionError> {
            Ok(Value::String(Arc::new(net(&s)?.trunc().to_string())))
        },
    );
    ctx.add_function(
        "containsCIDR",
        |This(s): This<Arc<String>>, other: Arc<String>| -> Result<bool, ExecutionError> {
            Ok(net(&s)?.contains(&net(&other)?))
        },
    );
    ctx
}

/// Evaluates one CEL expression on `this`.
fn eval(expr: &str, this: &Json) -> Value {
    let program = Program::compile(expr).unwrap_or_else(|e| panic!("{expr}: {e:?}"));
    program
        .execute(&context(this))
        .unwrap_or_else(|e| panic!("{expr} on {this}: {e:?}"))
}

/// The errors the CEL rules of `schema` give for `value` (at `path`), as `field: message`.
fn cel_errors(schema: &Json, value: &Json, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    for r in schema
        .get(KEY)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let ok = eval(r["rule"].as_str().unwrap(), value);
        if ok == Value::Bool(true) {
            continue;
        }
        assert_eq!(ok, Value::Bool(false), "{r}: not a bool");
        let message = match r.get("messageExpression").and_then(Json::as_str) {
            Some(e) => match eval(e, value) {
                Value::String(s) => s.to_string(),
                other => panic!("{e}: {other:?}"),
            },
            None => r["message"].as_str().unwrap().to_string(),
        };
        let field = format!(
            "{path}{}",
            r.get("fieldPath").and_then(Json::as_str).unwrap_or("")
        );
        out.push(format!("{field}: {message}"));
    }
    if let (Some(props), Some(obj)) = (schema.get("properties"), value.as_object()) {
        for (k, v) in obj {
            if let Some(s) = props.get(k) {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                cel_errors(s, v, &p, out);
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            cel_errors(items, v, &format!("{path}[{i}]"), out);
        }
    }
}

fn schema(kind: &str) -> Json {
    let crd = super::super::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    serde_json::to_value(
        &crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema,
    )
    .unwrap()
}

/// `validate` errors no CEL rule gives, with where they are caught instead.
const NOT_CEL: &[(&str, &str)] = &[
    ("is not a port (1-65535)", "OpenAPI minimum / maximum"),
    ("is not a guardrail priority", "OpenAPI minimum / maximum"),
    (
        "needs at least one value",
        "validate: label selector syntax",
    ),
    (
        "HTTP rules need TCP ports",
        "validate: ports may come from the tier",
    ),
    (
        "pods of this AppNetwork's own namespace",
        "validate: rules on spec cannot see metadata.namespace",
    ),
];

/// Splits `validate`'s `InvalidSpec` text into its errors.
fn split(errors: &str) -> Vec<(String, String)> {
    if errors.is_empty() {
        return Vec::new();
    }
    errors
        .split("; spec.")
        .enumerate()
        .map(|(i, e)| {
            let e = if i == 0 {
                e.to_string()
            } else {
                format!("spec.{e}")
            };
            let (field, message) = e.split_once(": ").unwrap();
            (field.to_string(), message.to_string())
        })
        .collect()
}

/// CEL agrees with `validate` on one case: it refuses nothing `validate` accepts, every
/// message it gives is one of `validate`'s (its field the same, or the list that holds it),
/// and it gives every error of `validate` that is not listed in [`NOT_CEL`].
fn agree(case: &str, validate: &str, cel: &[String]) {
    let want = split(validate);
    if want.is_empty() {
        assert!(
            cel.is_empty(),
            "{case}: validate accepts it, CEL says {cel:?}"
        );
    }
    for c in cel {
        let (cf, cm) = c.split_once(": ").unwrap();
        assert!(
            want.iter().any(|(f, m)| m == cm && f.starts_with(cf)),
            "{case}: CEL says {c:?}, validate {validate:?}"
        );
    }
    for (f, m) in &want {
        if NOT_CEL.iter().any(|(n, _)| m.contains(n)) {
            continue;
        }
        assert!(
            cel.iter().any(|c| {
                let (cf, cm) = c.split_once(": ").unwrap();
                cm == m && f.starts_with(cf)
            }),
            "{case}: validate says {f}: {m}, CEL {cel:?}"
        );
    }
}

fn spec_errors(schema: &Json, spec: &str) -> Vec<String> {
    let spec: Json = serde_yaml::from_str(spec).unwrap();
    let mut out = Vec::new();
    cel_errors(schema, &serde_json::json!({ "spec": spec }), "", &mut out);
    out
}

#[test]
fn every_port_case_agrees_with_validate() {
    let schema = schema("AppNetwork");
    for (port, want) in PORT_CASES {
        agree(port, want, &spec_errors(&schema, &with_port(port)));
    }
}

#[test]
fn every_app_network_case_agrees_with_validate() {
    let schema = schema("AppNetwork");
    for (case, want) in SPEC_CASES {
        agree(case, want, &spec_errors(&schema, &case_spec(case)));
    }
}

#[test]
fn every_cluster_baseline_case_agrees_with_validate() {
    let schema = schema("ClusterBaseline");
    for (case, want) in BASELINE_CASES {
        agree(case, want, &spec_errors(&schema, case));
    }
}

#[test]
fn too_many_guardrail_rules_in_one_direction() {
    let rules: Vec<String> = (0..26)
        .map(|i| format!("{{name: r{i}, action: Deny, direction: Ingress, peers: [{{allNamespaces: true}}]}}"))
        .collect();
    let case = format!("{{guardrails: {{rules: [{}]}}}}", rules.join(", "));
    let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str(&case).unwrap();
    let want = crate::validate::cluster_baseline(&spec)
        .unwrap_err()
        .to_string();
    assert_eq!(
        want,
        "spec.guardrails.rules: 26 Ingress rules; at most 25 per direction"
    );
    agree(
        "26 rules",
        &want,
        &spec_errors(&schema("ClusterBaseline"), &case),
    );
}

#[test]
fn every_rule_compiles_and_uses_only_known_functions() {
    for crd in super::super::all() {
        let v = serde_json::to_value(&crd).unwrap();
        let mut rules = Vec::new();
        collect(&v, &mut rules);
        assert!(!rules.is_empty());
        for r in rules {
            for k in ["rule", "messageExpression"] {
                if let Some(e) = r.get(k).and_then(Json::as_str) {
                    Program::compile(e).unwrap_or_else(|err| panic!("{e}: {err:?}"));
                }
            }
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
        }
    }
}

fn collect(v: &Json, out: &mut Vec<Json>) {
    match v {
        Json::Object(m) => {
            if let Some(Json::Array(r)) = m.get(KEY) {
                out.extend(r.iter().cloned());
            }
            m.values().for_each(|x| collect(x, out));
        }
        Json::Array(a) => a.iter().for_each(|x| collect(x, out)),
        _ => {}
    }
}

#[test]
fn levels_keep_the_rules_each_server_accepts() {
    let count = |level| {
        let mut rules = Vec::new();
        for crd in super::super::all_with(level).unwrap() {
            collect(&serde_json::to_value(&crd).unwrap(), &mut rules);
        }
        rules
    };
    assert!(count(Cel::Off).is_empty());
    let base = count(Cel::NoNetworkLibrary);
    assert!(!base.is_empty());
    assert!(base.iter().all(|r| !uses_network_library(&r.to_string())));
    assert!(count(Cel::All).len() > base.len());
    let yaml = super::super::crds_yaml_with(Cel::Off).unwrap();
    assert!(!yaml.contains(KEY));
    assert_eq!(Cel::for_version_str("v1.20.15"), Some(Cel::Off));
    assert_eq!(Cel::for_version_str("1.27"), Some(Cel::Off));
    assert_eq!(Cel::for_version_str("1.30+"), Some(Cel::NoNetworkLibrary));
    assert_eq!(Cel::for_version_str("1.31"), Some(Cel::All));
    assert_eq!(Cel::for_version_str("2.0"), Some(Cel::All));
    let mut v = serde_json::json!({KEY: [{"rule": "isCIDR(self)", "message": "m"}]});
    restrict(&mut v, Cel::NoNetworkLibrary);
    assert_eq!(v, serde_json::json!({}));
}
