//! Calico's admission rules for `projectcalico.org/v3` (Staged)(Global)NetworkPolicy.
//!
//! Sources (projectcalico/calico; `HEAD` = commit 87c15906f20c4ca1fda55af92295e7678b0cc0b2,
//! the first release with it is v3.32):
//! - names: `libcalico-go/lib/validator/v3/validator.go` `networkPolicyNameRegex` /
//!   `globalNetworkPolicyNameRegex` — v3.28.0 (413e6f55) lines 67-72: a DNS label, no dot (except
//!   `knp.default.` / `ossg.default.` names); v3.29.0 (26c4c71c) onwards lines 72-79: at most
//!   one dot. v3.29 also requires a dotted name to start with its tier and a dot
//!   (`libcalico-go/lib/names/policy.go` lines 67-80, `validateBackendTieredPolicyName`, called
//!   from `clientv3/networkpolicy.go` line 69); v3.30-v3.31 the same
//!   (`names/policy.go` line 107, `ValidateTieredPolicyName`, v3.31.0 b1f3c43f); HEAD dropped
//!   the tier prefix (commit 790c866c "Remove tier prefix naming requirement for policies").
//!   Names are at most 253 characters (validator.go HEAD line 1346).
//! - limits (`api/pkg/apis/projectcalico/v3`, HEAD): `networkpolicy.go` lines 70, 76 (at most
//!   1,024 ingress and egress rules), 105 and 128 (`selector`, `serviceAccountSelector` at most
//!   1,024 characters); `globalnetworkpolicy.go` lines 77, 82, 110, 148, 152 (the same, and
//!   `namespaceSelector`); `policy_common.go` lines 155, 173, 189, 208, 215, 219, 225 (entity
//!   rule `nets` at most 256, `selector` and `namespaceSelector` at most 1,024 characters,
//!   `ports` at most 50, `notNets` 256, `notSelector` 1,024, `notPorts` 50).
//! - `global()`: only in an entity rule's `namespaceSelector`, and there alone
//!   (`networkpolicy.go` lines 50-51, `globalnetworkpolicy.go` lines 58-60, `policy_common.go`
//!   line 144; validator.go HEAD lines 1104-1126).
//! - rules (validator.go HEAD lines 1012-1101 `validateRule`, 1299-1338 and 1451-1511 the
//!   specs): numeric ports need `protocol` TCP, UDP or SCTP; `services` only as an ingress
//!   source or an egress destination, with a namespace in a GlobalNetworkPolicy; a `types`
//!   entry at most once; nets of one family per rule; `action` one of Allow, Deny, Log, Pass.
//! - selectors must parse (validator.go HEAD line 453, `validateSelector`).

use serde_json::{Map, Value};

use super::common::{is_dns_label, is_subdomain, Violation};
use crate::engine::calico_selector::CalicoSelector;

/// Most rules per direction.
pub const MAX_RULES: usize = 1024;
/// Most ports (and notPorts) in one entity rule.
pub const MAX_PORTS: usize = 50;
/// Longest selector.
pub const MAX_SELECTOR: usize = 1024;
/// Most nets (and notNets) in one entity rule.
pub const MAX_NETS: usize = 256;
/// Longest name.
pub const MAX_NAME: usize = 253;

const SRC_NAME_328: &str =
    "libcalico-go/lib/validator/v3/validator.go lines 67-72 @ v3.28.0 (413e6f55)";
const SRC_NAME: &str = "libcalico-go/lib/validator/v3/validator.go lines 72-80 @ 87c15906";
const SRC_TIER_PREFIX: &str = "libcalico-go/lib/names/policy.go lines 67-80 @ v3.29.0 (26c4c71c), line 107 @ v3.31.0 (b1f3c43f)";
const SRC_LIMITS: &str = "api/pkg/apis/projectcalico/v3/policy_common.go lines 155-225 @ 87c15906";
const SRC_SPEC_LIMITS: &str =
    "api/pkg/apis/projectcalico/v3/networkpolicy.go lines 70-128, globalnetworkpolicy.go lines 77-152 @ 87c15906";
const SRC_GLOBAL: &str = "api/pkg/apis/projectcalico/v3/networkpolicy.go lines 50-51, policy_common.go line 144; validator.go lines 1104-1126 @ 87c15906";
const SRC_RULE: &str = "libcalico-go/lib/validator/v3/validator.go lines 1012-1101 @ 87c15906";
const SRC_SPEC: &str =
    "libcalico-go/lib/validator/v3/validator.go lines 1299-1338, 1451-1511 @ 87c15906";
const SRC_SELECTOR: &str = "libcalico-go/lib/validator/v3/validator.go line 453 @ 87c15906";

/// The Calico releases whose name rules differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// v3.28: no dot.
    V3_28,
    /// v3.29 to v3.31: at most one dot, and a dotted name starts with `<tier>.`.
    V3_29To3_31,
    /// v3.32 onwards: at most one dot.
    Current,
}

impl Release {
    /// Every supported release.
    pub const ALL: [Release; 3] = [Release::V3_28, Release::V3_29To3_31, Release::Current];

    /// Its name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Release::V3_28 => "Calico v3.28",
            Release::V3_29To3_31 => "Calico v3.29-v3.31",
            Release::Current => "Calico v3.32+",
        }
    }
}

/// Why `release` refuses the policy name `name` in `tier` (`global`: a (Staged)GlobalNetworkPolicy).
pub fn name_error(name: &str, tier: &str, global: bool, release: Release) -> Option<String> {
    if name.len() > MAX_NAME {
        return Some(format!(
            "name is too long by {} bytes (at most {MAX_NAME})",
            name.len() - MAX_NAME
        ));
    }
    let formatted = !global
        && ["knp.default.", "ossg.default."]
            .iter()
            .any(|p| name.strip_prefix(p).is_some_and(is_subdomain));
    if formatted {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if !labels.iter().all(|l| is_dns_label(l)) {
        return Some(format!(
            "name {name:?} must be lower case alphanumerics or '-' (a DNS label), optionally with one dot"
        ));
    }
    match (release, labels.len()) {
        (_, 1) => None,
        (Release::V3_28, _) => Some(format!("name {name:?} has a dot; Calico v3.28 allows none")),
        (_, 3..) => Some(format!("name {name:?} has more than one dot")),
        (Release::V3_29To3_31, _) if labels[0] != tier => Some(format!(
            "name {name:?} has a dot, so it must start with its tier \"{tier}.\""
        )),
        _ => None,
    }
}

/// Every violation of a Calico policy object.
pub fn check(obj: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let global = kind.contains("Global");
    let spec = obj.get("spec").and_then(Value::as_object);
    let empty = Map::new();
    let spec = spec.unwrap_or(&empty);
    let tier = spec
        .get("tier")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    // Names: one violation per distinct message, with the releases that refuse.
    let mut by_message: Vec<(String, Vec<Release>)> = Vec::new();
    for r in Release::ALL {
        if let Some(m) = name_error(name, tier, global, r) {
            match by_message.iter_mut().find(|(msg, _)| *msg == m) {
                Some((_, rs)) => rs.push(r),
                None => by_message.push((m, vec![r])),
            }
        }
    }
    for (message, releases) in by_message {
        let only = (releases.len() < Release::ALL.len()).then(|| releases_str(&releases));
        out.push(Violation {
            path: "metadata.name".into(),
            message,
            source: if releases == [Release::V3_28] {
                SRC_NAME_328
            } else if releases == [Release::V3_29To3_31] {
                SRC_TIER_PREFIX
            } else {
                SRC_NAME
            },
            releases: only,
        });
    }

    let mut v = |path: String, message: String, source: &'static str| {
        out.push(Violation {
            path,
            message,
            source,
            releases: None,
        })
    };
    for field in ["selector", "serviceAccountSelector", "namespaceSelector"] {
        if field == "namespaceSelector" && !global {
            continue;
        }
        if let Some(s) = spec.get(field).and_then(Value::as_str) {
            selector(&mut v, &format!("spec.{field}"), s, false);
        }
    }
    if let Some(types) = spec.get("types").and_then(Value::as_array) {
        let mut seen = Vec::new();
        for t in types.iter().filter_map(Value::as_str) {
            if seen.contains(&t) {
                v(
                    "spec.types".into(),
                    format!("{t:?} is listed more than once"),
                    SRC_SPEC,
                );
            }
            seen.push(t);
        }
    }
    for dir in ["ingress", "egress"] {
        let Some(rules) = spec.get(dir).and_then(Value::as_array) else {
            continue;
        };
        if rules.len() > MAX_RULES {
            v(
                format!("spec.{dir}"),
                format!("{} rules; Calico allows at most {MAX_RULES}", rules.len()),
                SRC_SPEC_LIMITS,
            );
        }
        for (i, r) in rules.iter().enumerate() {
            rule(
                &mut v,
                &format!("spec.{dir}[{i}]"),
                r,
                dir == "ingress",
                global,
            );
        }
    }
    out
}

fn releases_str(rs: &[Release]) -> &'static str {
    match rs {
        [Release::V3_28] => "Calico v3.28",
        [Release::V3_29To3_31] => "Calico v3.29-v3.31",
        [Release::Current] => "Calico v3.32+",
        [Release::V3_28, Release::V3_29To3_31] => "Calico v3.28-v3.31",
        [Release::V3_28, Release::Current] => "Calico v3.28 and v3.32+",
        _ => "Calico v3.29+",
    }
}

type Report<'a> = dyn FnMut(String, String, &'static str) + 'a;

/// A selector: at most 1,024 characters, parses, and `global()` only where `global_ok`
/// (an entity rule's namespaceSelector, alone).
fn selector(v: &mut Report<'_>, path: &str, s: &str, global_ok: bool) {
    if s.len() > MAX_SELECTOR {
        v(
            path.to_string(),
            format!(
                "selector of {} characters; Calico allows at most {MAX_SELECTOR}",
                s.len()
            ),
            SRC_SPEC_LIMITS,
        );
    }
    match CalicoSelector::parse(s) {
        Err(e) => v(
            path.to_string(),
            format!("selector {s:?} does not parse: {e}"),
            SRC_SELECTOR,
        ),
        Ok(parsed) => {
            if parsed.mentions_global() && !(global_ok && parsed == CalicoSelector::Global) {
                let why = if global_ok {
                    "global() cannot be combined with other selectors"
                } else {
                    "global() can only be used in an EntityRule namespaceSelector"
                };
                v(path.to_string(), why.to_string(), SRC_GLOBAL);
            }
        }
    }
}

fn rule(v: &mut Report<'_>, path: &str, r: &Value, ingress: bool, global: bool) {
    if let Some(a) = r.get("action").and_then(Value::as_str) {
        if !matches!(a, "Allow" | "Deny" | "Log" | "Pass") {
            v(
                format!("{path}.action"),
                format!("action {a:?} is not one of Allow, Deny, Log, Pass"),
                SRC_RULE,
            );
        }
    }
    let protocol = r.get("protocol").map(|p| match p {
        Value::String(s) => s.to_ascii_uppercase(),
        other => other.to_string(),
    });
    let supports_ports = protocol
        .as_deref()
        .map(|p| matches!(p, "TCP" | "UDP" | "SCTP" | "6" | "17" | "132" | "UDPLITE"));
    let mut families = (false, false);
    for side in ["source", "destination"] {
        let Some(e) = r.get(side).and_then(Value::as_object) else {
            continue;
        };
        let at = format!("{path}.{side}");
        for f in ["selector", "notSelector"] {
            if let Some(s) = e.get(f).and_then(Value::as_str) {
                selector(v, &format!("{at}.{f}"), s, false);
            }
        }
        if let Some(s) = e.get("namespaceSelector").and_then(Value::as_str) {
            selector(v, &format!("{at}.namespaceSelector"), s, true);
        }
        for f in ["ports", "notPorts"] {
            let Some(ports) = e.get(f).and_then(Value::as_array) else {
                continue;
            };
            if ports.len() > MAX_PORTS {
                v(
                    format!("{at}.{f}"),
                    format!(
                        "{} ports in one rule; Calico allows at most {MAX_PORTS}",
                        ports.len()
                    ),
                    SRC_LIMITS,
                );
            }
            let numeric = ports.iter().any(|p| !is_named_port(p));
            match supports_ports {
                None if numeric => v(
                    format!("{at}.{f}"),
                    "rules with numeric port or port range must set protocol to TCP or UDP or SCTP"
                        .into(),
                    SRC_RULE,
                ),
                Some(false) if !ports.is_empty() => v(
                    format!("{at}.{f}"),
                    "rules that specify ports must set protocol to TCP or UDP or SCTP".into(),
                    SRC_RULE,
                ),
                _ => {}
            }
        }
        for f in ["nets", "notNets"] {
            let Some(nets) = e.get(f).and_then(Value::as_array) else {
                continue;
            };
            if nets.len() > MAX_NETS {
                v(
                    format!("{at}.{f}"),
                    format!(
                        "{} networks in one rule; Calico allows at most {MAX_NETS}",
                        nets.len()
                    ),
                    SRC_LIMITS,
                );
            }
            for n in nets.iter().filter_map(Value::as_str) {
                // `cnet.ParseCIDR` also takes a bare address.
                let parsed = n
                    .parse::<ipnet::IpNet>()
                    .map(|net| net.addr())
                    .or_else(|_| n.parse::<std::net::IpAddr>());
                match parsed {
                    Ok(std::net::IpAddr::V4(_)) => families.0 = true,
                    Ok(std::net::IpAddr::V6(_)) => families.1 = true,
                    Err(_) => v(format!("{at}.{f}"), format!("invalid CIDR {n:?}"), SRC_RULE),
                }
            }
        }
        if let Some(services) = e.get("services") {
            let wrong_side = (ingress && side == "destination") || (!ingress && side == "source");
            if wrong_side {
                let msg = if ingress {
                    "services are not allowed in an ingress rule's destination"
                } else {
                    "services are not allowed in an egress rule's source"
                };
                v(format!("{at}.services"), msg.into(), SRC_SPEC);
            }
            if global
                && services
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                v(
                    format!("{at}.services.namespace"),
                    "a GlobalNetworkPolicy must name the service's namespace".into(),
                    SRC_SPEC,
                );
            }
        }
    }
    if families.0 && families.1 {
        v(
            path.to_string(),
            "rule contains both IPv4 and IPv6 CIDRs".into(),
            SRC_RULE,
        );
    }
}

/// A port entry that is a name (not a number or a `"first:last"` range).
fn is_named_port(p: &Value) -> bool {
    match p {
        Value::String(s) => !s.chars().next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn np(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": "shop"}, "spec": spec})
    }

    /// Our own table of names and which releases accept them (v3.28, v3.29-3.31, v3.32+).
    #[test]
    fn policy_names_follow_each_release() {
        let cases: &[(&str, &str, bool, [bool; 3])] = &[
            ("web", "default", false, [true, true, true]),
            ("payments.v2", "default", false, [false, false, true]),
            ("default.web", "default", false, [false, true, true]),
            ("security.web", "security", false, [false, true, true]),
            ("security.web", "default", false, [false, false, true]),
            ("a.b.c", "default", false, [false, false, false]),
            ("default.a.b", "default", false, [false, false, false]),
            ("knp.default.a.b", "default", false, [true, true, true]),
            ("knp.default.a.b", "default", true, [false, false, false]),
            ("Web", "default", false, [false, false, false]),
            ("-web", "default", false, [false, false, false]),
            ("web_1", "default", false, [false, false, false]),
            ("default.web", "default", true, [false, true, true]),
        ];
        for (name, tier, global, want) in cases {
            for (r, ok) in Release::ALL.iter().zip(want) {
                assert_eq!(
                    name_error(name, tier, *global, *r).is_none(),
                    *ok,
                    "{name} in {tier} on {r:?}"
                );
            }
        }
        assert!(name_error(&"a".repeat(254), "default", false, Release::Current).is_some());
    }

    #[test]
    fn a_dotted_name_is_reported_with_the_releases_that_refuse_it() {
        let v = check(&np("payments.v2", json!({"selector": "all()"})));
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].releases, Some("Calico v3.28"));
        assert_eq!(v[1].releases, Some("Calico v3.29-v3.31"));
        assert!(v[1].message.contains("must start with its tier"));
        assert!(super::super::refusal(&np("payments.v2", json!({}))).is_none());
        assert!(super::super::report(&np("payments.v2", json!({})))
            .unwrap()
            .starts_with("Calico refuses this policy: metadata.name: "));
    }

    #[test]
    fn limits_ports_selectors_and_rules() {
        let ports: Vec<u16> = (1..=51).collect();
        let long = format!("a in {{{}}}", vec!["'x'"; 300].join(", "));
        let mut rules = vec![json!({"action": "Allow"}); 1025];
        rules[0] = json!({"action": "Allow", "protocol": "TCP",
                          "source": {"selector": long},
                          "destination": {"ports": ports}});
        let v = check(&np("x", json!({"ingress": rules})));
        let paths: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.ingress",
                "spec.ingress[0].source.selector",
                "spec.ingress[0].destination.ports"
            ]
        );
        assert!(v.iter().all(|v| v.releases.is_none()));
        assert!(v[2].message.contains("at most 50"));
    }

    #[test]
    fn ports_need_a_protocol_that_has_ports() {
        let no_proto = np(
            "x",
            json!({"ingress": [{"action": "Allow", "destination": {"ports": [80]}}]}),
        );
        assert!(check(&no_proto)[0].message.contains("must set protocol"));
        let named = np(
            "x",
            json!({"ingress": [{"action": "Allow", "destination": {"ports": ["http"]}}]}),
        );
        assert!(check(&named).is_empty());
        let icmp = np(
            "x",
            json!({"ingress": [{"action": "Allow", "protocol": "ICMP", "destination": {"ports": [80]}}]}),
        );
        assert!(check(&icmp)[0].message.contains("rules that specify ports"));
    }

    #[test]
    fn global_only_alone_in_a_rule_namespace_selector() {
        let ok = np(
            "x",
            json!({"egress": [{"action": "Allow", "destination": {"namespaceSelector": "global()"}}]}),
        );
        assert!(check(&ok).is_empty());
        for (spec, why) in [
            (json!({"selector": "global()"}), "only be used"),
            (
                json!({"egress": [{"action": "Allow", "destination": {"selector": "global()"}}]}),
                "only be used",
            ),
            (
                json!({"egress": [{"action": "Allow", "destination": {"namespaceSelector": "global() && a == 'b'"}}]}),
                "cannot be combined",
            ),
        ] {
            let v = check(&np("x", spec.clone()));
            assert!(v[0].message.contains(why), "{spec}: {v:?}");
        }
    }

    #[test]
    fn services_sides_types_and_families() {
        let v = check(&np(
            "x",
            json!({
                "types": ["Ingress", "Ingress"],
                "ingress": [{"action": "Allow", "destination": {"services": {"name": "a"}}}],
                "egress": [{"action": "Bogus", "source": {"services": {"name": "a"}},
                            "destination": {"nets": ["10.0.0.0/8", "fd00::/8"]}}],
            }),
        ));
        let msgs: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("not one of Allow")));
        assert!(msgs[0].starts_with("spec.types"));
        assert!(msgs
            .iter()
            .any(|m| m.contains("ingress rule's destination")));
        assert!(msgs.iter().any(|m| m.contains("egress rule's source")));
        assert!(msgs.iter().any(|m| m.contains("both IPv4 and IPv6")));
    }
}
