//! The Cilium agent's `Rule.Sanitize()` for CiliumNetworkPolicy and
//! CiliumClusterwideNetworkPolicy (`spec` and every entry of `specs`).
//!
//! Sources (cilium/cilium):
//! - `pkg/policy/api/rule_validation.go` @ 3e1bfb8ffd6fea658e03186d4c3688834d0f8bed:
//!   `maxPorts = 40` (line 18); `Rule.Sanitize` (lines 25-80: one of endpointSelector or
//!   nodeSelector); `IngressRule.sanitize` (lines 94-175: one kind of L3 peer per rule, no DNS
//!   rules on ingress); `EgressRule.sanitize` (lines 177-270: one kind of L3 peer per rule,
//!   `toServices` without `toPorts`); `L7Rules.sanitize` (one L7 type, DNS rules need a port);
//!   `PortRule.sanitize` (at most 40 ports, L7 rules on TCP only, ports parse);
//!   `CIDRRule.sanitize` (`except` inside the CIDR).
//! - `pkg/policy/api/selector.go` (`EndpointSelector.Sanitize`, Cilium 1.15-1.19): every key is
//!   first rewritten to Cilium's extended form (`pkg/labels` `GetExtendedKeyFrom`:
//!   `k8s:KEY` → `k8s.KEY`, a key without source → `any.KEY`) and then validated as a Kubernetes
//!   label selector, so the NAME part of the rewritten key must fit 63 characters: a namespace
//!   label key (`k8s:io.cilium.k8s.namespace.labels.KEY`) of more than 28 characters, or a pod
//!   label key of more than 59, makes the whole policy invalid (cilium/cilium#43771 on 1.18,
//!   #47817 on 1.20).
//! - `pkg/policy/api/http.go` @ dcf50aef0db1b40b851b2701f1b6d955c7f945f7 lines 113-127: `path`
//!   and `method` are compiled as Go regular expressions ([`super::re2`]).

use serde_json::Value;

use super::common::{is_label_value, qualified_name_error, Violation};
use super::re2;

/// Most ports in one `toPorts` entry.
pub const MAX_PORTS: usize = 40;

const SRC_RULE: &str = "pkg/policy/api/rule_validation.go lines 25-80 @ 3e1bfb8f";
const SRC_INGRESS: &str = "pkg/policy/api/rule_validation.go lines 94-175 @ 3e1bfb8f";
const SRC_EGRESS: &str = "pkg/policy/api/rule_validation.go lines 177-270 @ 3e1bfb8f";
const SRC_PORTS: &str = "pkg/policy/api/rule_validation.go lines 18, 330-420 @ 3e1bfb8f";
const SRC_CIDR: &str = "pkg/policy/api/rule_validation.go CIDRRule.sanitize @ 3e1bfb8f";
const SRC_SELECTOR: &str =
    "pkg/policy/api/selector.go EndpointSelector.Sanitize (1.15-1.19), pkg/labels GetExtendedKeyFrom";
const SRC_HTTP: &str = "pkg/policy/api/http.go lines 113-127 @ dcf50aef";

/// The entities Cilium knows (`pkg/policy/api/entity.go`, `EntitySelectorMapping`).
pub const ENTITIES: [&str; 13] = [
    "all",
    "world",
    "world-ipv4",
    "world-ipv6",
    "cluster",
    "host",
    "init",
    "ingress",
    "unmanaged",
    "remote-node",
    "health",
    "none",
    "kube-apiserver",
];

/// The key Cilium validates for a selector key: `k8s:KEY` → `k8s.KEY`, `KEY` → `any.KEY`.
pub fn extended_key(key: &str) -> String {
    match key.split_once(':') {
        Some((src, rest)) if !src.is_empty() => format!("{src}.{rest}"),
        Some((_, rest)) => format!("any.{rest}"),
        None => format!("any.{key}"),
    }
}

/// Why Cilium refuses a selector key (`None`: it accepts it).
pub fn key_error(key: &str) -> Option<String> {
    let ext = extended_key(key);
    qualified_name_error(&ext).map(|e| format!("{e} (Cilium validates {key:?} as {ext:?})"))
}

/// Every violation of a Cilium policy object.
pub fn check(obj: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut v = |path: String, message: String, source: &'static str| {
        out.push(Violation {
            path,
            message,
            source,
            releases: None,
        })
    };
    if let Some(spec) = obj.get("spec").filter(|s| !s.is_null()) {
        rule(&mut v, "spec", spec);
    }
    if let Some(specs) = obj.get("specs").and_then(Value::as_array) {
        for (i, s) in specs.iter().enumerate() {
            rule(&mut v, &format!("specs[{i}]"), s);
        }
    }
    out
}

type Report<'a> = dyn FnMut(String, String, &'static str) + 'a;

fn rule(v: &mut Report<'_>, path: &str, r: &Value) {
    let es = r.get("endpointSelector").filter(|s| !s.is_null());
    let ns = r.get("nodeSelector").filter(|s| !s.is_null());
    match (es, ns) {
        (None, None) => v(
            path.to_string(),
            "rule must have one of EndpointSelector or NodeSelector".into(),
            SRC_RULE,
        ),
        (Some(_), Some(_)) => v(
            path.to_string(),
            "rule cannot have both EndpointSelector and NodeSelector".into(),
            SRC_RULE,
        ),
        _ => {}
    }
    if let Some(s) = es {
        selector(v, &format!("{path}.endpointSelector"), s);
    }
    if let Some(s) = ns {
        selector(v, &format!("{path}.nodeSelector"), s);
    }
    for dir in ["ingress", "ingressDeny"] {
        for (i, rule) in items(r, dir) {
            ingress(v, &format!("{path}.{dir}[{i}]"), rule);
        }
    }
    for dir in ["egress", "egressDeny"] {
        for (i, rule) in items(r, dir) {
            egress(v, &format!("{path}.{dir}[{i}]"), rule);
        }
    }
}

fn items<'a>(v: &'a Value, field: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn count(v: &Value, field: &str) -> usize {
    v.get(field).and_then(Value::as_array).map_or(0, Vec::len)
}

fn one_l3(v: &mut Report<'_>, path: &str, r: &Value, fields: &[&str], source: &'static str) {
    let present: Vec<&str> = fields.iter().copied().filter(|f| count(r, f) > 0).collect();
    if present.len() > 1 {
        v(
            path.to_string(),
            format!(
                "Combining {} and {} is not supported",
                present[0], present[1]
            ),
            source,
        );
    }
}

fn ingress(v: &mut Report<'_>, path: &str, r: &Value) {
    one_l3(
        v,
        path,
        r,
        &["fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities"],
        SRC_INGRESS,
    );
    peers(
        v,
        path,
        r,
        "fromEndpoints",
        "fromRequires",
        "fromCIDRSet",
        "fromEntities",
    );
    for (i, p) in items(r, "toPorts") {
        port_rule(v, &format!("{path}.toPorts[{i}]"), p, true);
    }
}

fn egress(v: &mut Report<'_>, path: &str, r: &Value) {
    one_l3(
        v,
        path,
        r,
        &[
            "toCIDR",
            "toCIDRSet",
            "toEndpoints",
            "toEntities",
            "toServices",
            "toFQDNs",
            "toGroups",
        ],
        SRC_EGRESS,
    );
    if count(r, "toServices") > 0 && count(r, "toPorts") > 0 {
        v(
            path.to_string(),
            "Combining ToServices and ToPorts is not supported".into(),
            SRC_EGRESS,
        );
    }
    peers(
        v,
        path,
        r,
        "toEndpoints",
        "toRequires",
        "toCIDRSet",
        "toEntities",
    );
    for (i, f) in items(r, "toFQDNs") {
        let name = f.get("matchName").and_then(Value::as_str).unwrap_or("");
        let pattern = f.get("matchPattern").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() == pattern.is_empty() {
            v(
                format!("{path}.toFQDNs[{i}]"),
                "exactly one of matchName and matchPattern must be set".into(),
                SRC_EGRESS,
            );
        }
    }
    for (i, p) in items(r, "toPorts") {
        port_rule(v, &format!("{path}.toPorts[{i}]"), p, false);
    }
}

fn peers(
    v: &mut Report<'_>,
    path: &str,
    r: &Value,
    endpoints: &str,
    requires: &str,
    cidr_set: &str,
    entities: &str,
) {
    for field in [endpoints, requires] {
        for (i, s) in items(r, field) {
            selector(v, &format!("{path}.{field}[{i}]"), s);
        }
    }
    for (i, c) in items(r, cidr_set) {
        cidr_rule(v, &format!("{path}.{cidr_set}[{i}]"), c);
    }
    for (i, e) in items(r, entities) {
        let e = e.as_str().unwrap_or("");
        if !ENTITIES.contains(&e) {
            v(
                format!("{path}.{entities}[{i}]"),
                format!("unsupported entity: {e}"),
                SRC_INGRESS,
            );
        }
    }
}

fn cidr_rule(v: &mut Report<'_>, path: &str, c: &Value) {
    // A CIDR group reference or selector is not a prefix to check.
    let Some(cidr) = c.get("cidr").and_then(Value::as_str) else {
        return;
    };
    let Ok(net) = cidr.parse::<ipnet::IpNet>() else {
        v(
            path.to_string(),
            format!("Unable to parse CIDRRule {cidr:?}"),
            SRC_CIDR,
        );
        return;
    };
    for e in c
        .get("except")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match e.parse::<ipnet::IpNet>() {
            Ok(x) if net.contains(&x.addr()) => {}
            _ => v(
                format!("{path}.except"),
                format!("allow CIDR prefix {cidr} does not contain exclude CIDR prefix {e}"),
                SRC_CIDR,
            ),
        }
    }
}

/// An endpoint selector: keys as Cilium rewrites them, values, operators.
fn selector(v: &mut Report<'_>, path: &str, s: &Value) {
    if let Some(labels) = s.get("matchLabels").and_then(Value::as_object) {
        for (k, val) in labels {
            if let Some(e) = key_error(k) {
                v(format!("{path}.matchLabels"), e, SRC_SELECTOR);
            }
            let val = val.as_str().unwrap_or("");
            if !is_label_value(val) {
                v(
                    format!("{path}.matchLabels"),
                    format!("invalid label value {val:?} for key {k:?}"),
                    SRC_SELECTOR,
                );
            }
        }
    }
    for (i, e) in items(s, "matchExpressions") {
        let at = format!("{path}.matchExpressions[{i}]");
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        if let Some(err) = key_error(key) {
            v(at.clone(), err, SRC_SELECTOR);
        }
        let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
        let values = count(e, "values");
        match op {
            "In" | "NotIn" if values == 0 => v(
                at.clone(),
                format!("operator {op} needs values"),
                SRC_SELECTOR,
            ),
            "Exists" | "DoesNotExist" if values > 0 => v(
                at.clone(),
                format!("operator {op} takes no values"),
                SRC_SELECTOR,
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => v(
                at.clone(),
                format!("{op:?} is not a valid selector operator"),
                SRC_SELECTOR,
            ),
        }
        for val in e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let val = val.as_str().unwrap_or("");
            if !is_label_value(val) {
                v(
                    at.clone(),
                    format!("invalid label value {val:?}"),
                    SRC_SELECTOR,
                );
            }
        }
    }
}

fn port_rule(v: &mut Report<'_>, path: &str, p: &Value, ingress: bool) {
    let rules = p.get("rules").filter(|r| !r.is_null());
    let has = |f: &str| rules.is_some_and(|r| r.get(f).is_some_and(|x| !x.is_null()));
    let l7_types = ["http", "kafka", "dns", "l7proto"]
        .iter()
        .filter(|f| has(f))
        .count();
    if l7_types > 1 {
        v(
            format!("{path}.rules"),
            "multiple L7 protocol rule types specified in single rule".into(),
            SRC_PORTS,
        );
    }
    let dns = has("dns") && rules.is_some_and(|r| count(r, "dns") > 0);
    if ingress && dns {
        v(
            format!("{path}.rules.dns"),
            "DNS rules are not allowed on ingress".into(),
            SRC_PORTS,
        );
    }
    let ports = p.get("ports").and_then(Value::as_array);
    let n = ports.map_or(0, Vec::len);
    if n > MAX_PORTS {
        v(
            format!("{path}.ports"),
            format!("too many ports, the max is {MAX_PORTS} (there are {n})"),
            SRC_PORTS,
        );
    }
    if has("dns") && n == 0 {
        v(
            format!("{path}.rules.dns"),
            "Port 53 must be specified for DNS rules".into(),
            SRC_PORTS,
        );
    }
    let l7 = l7_types > 0;
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let at = format!("{path}.ports[{i}]");
        let value = match port.get("port") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        if value.is_empty() {
            v(at.clone(), "Port must be specified".into(), SRC_PORTS);
        } else if !is_svc_name(&value) && parse_go_uint16(&value).is_none() {
            v(
                at.clone(),
                format!("Unable to parse port {value:?}"),
                SRC_PORTS,
            );
        }
        let proto = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("ANY")
            .to_ascii_uppercase();
        if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP" | "ANY") {
            v(at.clone(), format!("invalid protocol {proto:?}"), SRC_PORTS);
        }
        if l7 && !dns && proto != "TCP" {
            v(
                at.clone(),
                format!("L7 rules can only apply to TCP (not {proto}) except for DNS rules"),
                SRC_PORTS,
            );
        }
        if l7 && parse_go_uint16(&value) == Some(0) {
            v(
                at,
                "L7 rules can not be used when a port is 0".into(),
                SRC_PORTS,
            );
        }
    }
    if let Some(http) = rules.and_then(|r| r.get("http")).and_then(Value::as_array) {
        for (i, h) in http.iter().enumerate() {
            for f in ["path", "method"] {
                if let Some(re) = h.get(f).and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    if let Some(e) = re2::check(re) {
                        v(
                            format!("{path}.rules.http[{i}].{f}"),
                            format!("{f} {re:?} is not a Go regular expression ({e})"),
                            SRC_HTTP,
                        );
                    }
                }
            }
        }
    }
}

/// An IANA service name (`pkg/iana`): 1-15 of `[a-z0-9-]`, at least one letter, no leading,
/// trailing or double hyphen (Cilium compares case-insensitively).
pub fn is_svc_name(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    !l.is_empty()
        && l.len() <= 15
        && l.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && l.bytes().any(|c| c.is_ascii_lowercase())
        && !l.starts_with('-')
        && !l.ends_with('-')
        && !l.contains("--")
}

/// `strconv.ParseUint(s, 0, 16)`: decimal, `0x` hex, `0o`/`0` octal, `0b` binary.
fn parse_go_uint16(s: &str) -> Option<u16> {
    let s = s.replace('_', "");
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (h.to_string(), 16)
    } else if let Some(b) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (b.to_string(), 2)
    } else if let Some(o) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
        (o.to_string(), 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (s[1..].to_string(), 8)
    } else {
        (s.clone(), 10)
    };
    u16::from_str_radix(&digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cnp(spec: Value) -> Value {
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
               "metadata": {"name": "x", "namespace": "shop"}, "spec": spec})
    }

    #[test]
    fn keys_are_validated_after_cilium_rewrites_them() {
        // Our own table: (selector key, accepted).
        let ns = "k8s:io.cilium.k8s.namespace.labels.";
        let cases: Vec<(String, bool)> = vec![
            ("k8s:app".into(), true),
            (format!("k8s:{}", "a".repeat(59)), true),
            (format!("k8s:{}", "a".repeat(60)), false),
            (format!("{ns}{}", "b".repeat(28)), true),
            (format!("{ns}{}", "b".repeat(29)), false),
            (format!("{ns}tierflow.dev/baseline"), true),
            (format!("k8s:example.com/{}", "c".repeat(63)), true),
            (format!("k8s:example.com/{}", "c".repeat(64)), false),
            ("app".into(), true),
            ("d".repeat(60), false),
            ("k8s:io.kubernetes.pod.namespace".into(), true),
            ("reserved:host".into(), true),
            ("k8s:a/b/c".into(), false),
        ];
        for (key, ok) in cases {
            assert_eq!(
                key_error(&key).is_none(),
                ok,
                "{key}: {:?}",
                key_error(&key)
            );
        }
        assert_eq!(extended_key("k8s:app"), "k8s.app");
        assert_eq!(extended_key("app"), "any.app");
    }

    #[test]
    fn a_long_namespace_label_key_invalidates_the_policy() {
        let key = format!("k8s:io.cilium.k8s.namespace.labels.{}", "t".repeat(30));
        let v = check(&cnp(json!({"endpointSelector": {},
            "ingress": [{"fromEndpoints": [{"matchLabels": {key.clone(): "x"}}]}]})));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "spec.ingress[0].fromEndpoints[0].matchLabels");
        assert!(v[0].message.contains("63"), "{}", v[0].message);
        let r = super::super::refusal(&cnp(
            json!({"endpointSelector": {"matchLabels": {key.clone(): "x"}}}),
        ))
        .unwrap();
        assert!(
            r.starts_with("Cilium will not enforce this policy: spec.endpointSelector"),
            "{r}"
        );
    }

    #[test]
    fn http_paths_must_be_go_regular_expressions() {
        let rule = |path: &str| {
            cnp(
                json!({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}],
            "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"path": path}]}}]}]}),
            )
        };
        assert!(check(&rule("/api/.*")).is_empty());
        for bad in ["*.js", "/(?=x)", "(a)\\1"] {
            let v = check(&rule(bad));
            assert_eq!(v.len(), 1, "{bad}");
            assert_eq!(v[0].path, "spec.ingress[0].toPorts[0].rules.http[0].path");
        }
    }

    #[test]
    fn ports_l3_combinations_cidrs_and_entities() {
        let ports: Vec<Value> = (1..=41)
            .map(|p| json!({"port": p.to_string(), "protocol": "TCP"}))
            .collect();
        let v = check(&cnp(json!({"endpointSelector": {},
            "ingress": [{"fromEndpoints": [{}], "fromEntities": ["world"], "toPorts": [{"ports": ports}]},
                        {"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}]},
                        {"fromEntities": ["moon"]},
                        {"fromEndpoints": [{}], "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}], "rules": {"dns": [{"matchPattern": "*"}]}}]}],
            "egress": [{"toServices": [{"k8sService": {"serviceName": "a"}}], "toPorts": [{"ports": [{"port": "80"}]}]},
                       {"toEndpoints": [{}], "toPorts": [{"ports": [{"port": "80", "protocol": "UDP"}], "rules": {"http": [{}]}}]},
                       {"toEndpoints": [{}], "toPorts": [{"ports": [{"port": "99999"}]}]}]})));
        let msgs: Vec<String> = v.iter().map(ToString::to_string).collect();
        for want in [
            "Combining",
            "too many ports",
            "does not contain",
            "unsupported entity",
            "not allowed on ingress",
            "ToServices and ToPorts",
            "only apply to TCP",
            "Unable to parse port",
        ] {
            assert!(msgs.iter().any(|m| m.contains(want)), "{want}: {msgs:#?}");
        }
        assert!(check(&cnp(json!({"ingress": []})))[0]
            .message
            .contains("one of EndpointSelector"));
        assert!(is_svc_name("http") && !is_svc_name("8080") && !is_svc_name("a--b"));
        assert_eq!(parse_go_uint16("0x10"), Some(16));
    }
}
