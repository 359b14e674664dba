//! The CEL rules (`x-kubernetes-validations`) of the CRDs: what `validate` checks that CEL can
//! say, so `kubectl apply` (and a GitOps sync) refuses a bad spec instead of the operator
//! reporting it later in status. The messages are `validate`'s; the field paths are the same
//! where a rule can name the field (`fieldPath`), and the list field (`spec.tiers`,
//! `spec.flows`) where the rule compares entries with each other (CEL has no index there).
//!
//! What needs which Kubernetes: `messageExpression` (1.27) and `fieldPath` (1.28) are in every
//! rule, so the rules need 1.28 or later; rules using the network library (`isCIDR`, `cidr()`,
//! `isIP`) need 1.31 or later. [`Cel`] picks the set for a server; `tierflow crds` prints every
//! rule, `--no-cel` none (older servers, where `kubectl apply` refuses unknown schema fields).
//!
//! Left to `validate` (not expressible, or not worth the cost estimate): label selector syntax
//! (keys, values, operators), a `namespace` peer naming the AppNetwork's own namespace (rules on
//! `spec` cannot see `metadata.namespace`), and HTTP rules needing TCP ports (the ports may come
//! from the destination tier).

use schemars::Schema;
use serde::Serialize;
use serde_json::Value;

/// The JSON key of the rules.
pub const KEY: &str = "x-kubernetes-validations";

/// Which CEL rules to put in the CRDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cel {
    /// None (Kubernetes before 1.28).
    Off,
    /// Every rule but those of the network library (Kubernetes 1.28 to 1.30).
    NoNetworkLibrary,
    /// Every rule (Kubernetes 1.31 and later).
    All,
}

impl Cel {
    /// The rules a server of this version accepts.
    pub fn for_version(major: u32, minor: u32) -> Cel {
        match (major, minor) {
            (0, _) => Cel::Off,
            (1, m) if m < 28 => Cel::Off,
            (1, m) if m < 31 => Cel::NoNetworkLibrary,
            _ => Cel::All,
        }
    }

    /// Parses a Kubernetes version such as `1.31`, `v1.20.15` or `1.28+` (what
    /// `kubectl version` and the `/version` endpoint print).
    pub fn for_version_str(v: &str) -> Option<Cel> {
        let mut parts = v.trim().trim_start_matches('v').split('.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(Cel::for_version(major, minor.parse().ok()?))
    }
}

/// Whether a rule uses the Kubernetes network library (1.31+).
pub fn uses_network_library(rule: &str) -> bool {
    ["isCIDR(", "cidr(", "isIP(", "ip("]
        .iter()
        .any(|f| rule.contains(f))
}

/// Keeps the rules of `level` in a CRD (or any part of it), dropping the rest.
pub fn restrict(v: &mut Value, level: Cel) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(rules)) = m.get_mut(KEY) {
                rules.retain(|r| {
                    let text = ["rule", "messageExpression"]
                        .iter()
                        .filter_map(|k| r.get(k).and_then(Value::as_str))
                        .collect::<String>();
                    match level {
                        Cel::Off => false,
                        Cel::NoNetworkLibrary => !uses_network_library(&text),
                        Cel::All => true,
                    }
                });
                if rules.is_empty() {
                    m.remove(KEY);
                }
            }
            m.values_mut().for_each(|x| restrict(x, level));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| restrict(x, level)),
        _ => {}
    }
}

/// One `x-kubernetes-validations` entry.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Rule {
    rule: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field_path: Option<&'static str>,
}

fn rule(rule: impl Into<String>, message: impl Into<String>) -> Rule {
    Rule {
        rule: rule.into(),
        message: message.into(),
        message_expression: None,
        field_path: None,
    }
}

impl Rule {
    fn at(mut self, field: &'static str) -> Rule {
        self.field_path = Some(field);
        self
    }
    fn expr(mut self, e: impl Into<String>) -> Rule {
        self.message_expression = Some(e.into());
        self
    }
}

fn attach(schema: &mut Schema, rules: Vec<Rule>) {
    if let Ok(v) = serde_json::to_value(rules) {
        schema.insert(KEY.to_string(), v);
    }
}

/// `s` quoted as `validate` quotes names (`{:?}`): exact for the names the schema lets through.
fn quoted(s: &str) -> String {
    format!("'\"' + {s} + '\"'")
}

/// A label selector (CEL expression `s`) that selects something.
fn non_empty(s: &str) -> String {
    format!(
        "(has({s}.matchLabels) && size({s}.matchLabels) > 0) || (has({s}.matchExpressions) && size({s}.matchExpressions) > 0)"
    )
}

const DNS_LABEL: &str = "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'";
const DNS_LABEL_NAME: &str = "'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'";
const FQDN: &str =
    r"'^([*][.])?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$'";
const NOT_A_CIDR: &str = " is not a CIDR (expected address/prefix, for example 10.0.0.0/8)";

/// Rules of a port entry (`PortSpec`).
pub(crate) fn port(schema: &mut Schema) {
    let bad_name = "is not a port name (lower-case letters, digits and single '-' inside, at least one letter; IANA service name)";
    attach(
        schema,
        vec![
            rule(
                "has(self.port) || has(self.name)",
                "set port (a number, with endPort for a range) or name",
            ),
            rule(
                "!(has(self.port) && has(self.name))",
                "set port or name, not both (a name stands for the number each pod gives it)",
            ),
            rule(
                "has(self.port) || !has(self.name) || !has(self.endPort)",
                "endPort cannot be used with a named port (a range needs a numeric port)",
            )
            .at(".endPort"),
            rule(
                "has(self.name) || !has(self.port) || !has(self.endPort) || self.endPort >= self.port",
                "endPort is below port",
            )
            .expr("'endPort ' + string(self.endPort) + ' is below port ' + string(self.port)")
            .at(".endPort"),
            rule(
                format!("has(self.port) || has(self.endPort) || !has(self.name) || (self.name.matches({DNS_LABEL}) && self.name.matches('[a-z]') && !self.name.contains('--'))"),
                format!("the name {bad_name}"),
            )
            .expr(format!("{} + ' {}'", quoted("self.name"), bad_name.replace('\'', "\\'")))
            .at(".name"),
        ],
    );
}

/// Rules of an AppNetwork spec: tier names unique, flows naming tiers that exist.
pub(crate) fn app_network(schema: &mut Schema) {
    let unknown = |side: &str| {
        let bad = format!("has(f.{side}.tier) && !self.tiers.exists(t, t.name == f.{side}.tier)");
        rule(
            format!("!has(self.flows) || self.flows.all(f, !({bad}))"),
            "unknown tier",
        )
        .expr(format!(
            "'unknown tier ' + {}",
            quoted(&format!("self.flows.filter(f, {bad})[0].{side}.tier"))
        ))
        .at(".flows")
    };
    let portless = "!(has(f.ports) && size(f.ports) > 0) && has(f.to.tier) && self.tiers.exists(t, t.name == f.to.tier && !(has(t.ports) && size(t.ports) > 0))";
    attach(
        schema,
        vec![
            rule(
                "self.tiers.all(t, self.tiers.exists_one(u, u.name == t.name))",
                "duplicate tier name",
            )
            .expr(format!(
                "'duplicate tier name ' + {}",
                quoted("self.tiers.filter(t, !self.tiers.exists_one(u, u.name == t.name))[0].name")
            ))
            .at(".tiers"),
            unknown("from"),
            unknown("to"),
            rule(
                format!("!has(self.flows) || self.flows.all(f, !({portless}))"),
                "the flow gives no ports and its destination tier declares none; list the ports (tierflow never opens all ports by accident)",
            )
            .expr(format!(
                "'the flow gives no ports and tier ' + {} + ' declares none; list the ports (tierflow never opens all ports by accident)'",
                quoted(&format!("self.flows.filter(f, {portless})[0].to.tier"))
            ))
            .at(".flows"),
        ],
    );
}

/// Rules of a tier: a selector that selects something.
pub(crate) fn tier(schema: &mut Schema) {
    attach(
        schema,
        vec![rule(
            non_empty("self.selector"),
            "must not be empty: an empty selector selects every pod of the namespace",
        )
        .at(".selector")],
    );
}

/// Rules of a flow: fqdn and kubeAPIServer only as destinations, a tier on one side, ports
/// for destinations that are not tiers.
pub(crate) fn flow(schema: &mut Schema) {
    let api = |p: &str| format!("(has(self.{p}.kubeAPIServer) && self.{p}.kubeAPIServer)");
    attach(
        schema,
        vec![
            rule(
                format!("!has(self.from.fqdn) && !{}", api("from")),
                "fqdn and kubeAPIServer peers can only be destinations (to)",
            )
            .at(".from"),
            rule(
                format!("has(self.from.tier) || has(self.to.tier) || has(self.from.fqdn) || {}", api("from")),
                "at least one side of a flow must be a tier of this AppNetwork",
            ),
            rule(
                format!("(has(self.ports) && size(self.ports) > 0) || has(self.to.tier) || {}", api("to")),
                "a flow whose destination is not a tier must list its ports (tierflow never opens all ports by accident)",
            )
            .at(".ports"),
        ],
    );
}

/// Rules of an HTTP rule.
pub(crate) fn http(schema: &mut Schema) {
    attach(
        schema,
        vec![rule(
            "!has(self.path) || size(self.path) > 0",
            "must not be empty (omit it to allow any path)",
        )
        .at(".path")],
    );
}

/// The peer kinds of `PeerSpec`, each with the CEL test that it is set.
const PEER_KINDS: &[(&str, &str)] = &[
    ("tier", "has(self.tier)"),
    ("namespace", "has(self.namespace)"),
    ("namespaceSelector", "has(self.namespaceSelector)"),
    (
        "allNamespaces",
        "(has(self.allNamespaces) && self.allNamespaces)",
    ),
    ("cidr", "has(self.cidr)"),
    ("world", "(has(self.world) && self.world)"),
    ("fqdn", "has(self.fqdn)"),
    (
        "kubeAPIServer",
        "(has(self.kubeAPIServer) && self.kubeAPIServer)",
    ),
];

/// A cidr with its `except` list, as `validate` checks them (network library).
fn cidr_rules(cidr: &str, guard: &str, with_except: bool) -> Vec<Rule> {
    let c = format!("self.{cidr}");
    let mut out = vec![
        rule(
            format!("{guard} || isCIDR({c})"),
            "not a CIDR (expected address/prefix, for example 10.0.0.0/8)",
        )
        .expr(format!("{} + '{NOT_A_CIDR}'", quoted(&c)))
        .at(".cidr"),
        rule(
            format!("{guard} || !isCIDR({c}) || cidr({c}) == cidr({c}).masked()"),
            "the cidr has host bits set",
        )
        .expr(format!(
            "{} + ' has host bits set; did you mean ' + string(cidr({c}).masked()) + '?'",
            quoted(&c)
        ))
        .at(".cidr"),
    ];
    if with_except {
        let ok = |e: &str| format!("isCIDR({e}) && cidr({e}) == cidr({e}).masked()");
        let bad_inside = format!(
            "{} && !(cidr({c}).containsCIDR(e) && cidr(e) != cidr({c}))",
            ok("e")
        );
        let first = format!("self.except.filter(e, !({}))[0]", ok("e"));
        let guard = format!(
            "{guard} || !has(self.except) || !isCIDR({c}) || cidr({c}) != cidr({c}).masked()"
        );
        out.push(
            rule(
                format!("{guard} || self.except.all(e, {})", ok("e")),
                "an except entry is not a CIDR without host bits",
            )
            .expr(format!(
                "isCIDR({first}) ? {q} + ' has host bits set; did you mean ' + string(cidr({first}).masked()) + '?' : {q} + '{NOT_A_CIDR}'",
                first = first,
                q = quoted(&first),
            ))
            .at(".except"),
        );
        out.push(
            rule(
                format!(
                    "{guard} || !self.except.all(e, {}) || self.except.all(e, !({bad_inside}))",
                    ok("e")
                ),
                "an except entry is not strictly inside the cidr",
            )
            .expr(format!(
                "self.except.filter(e, {bad_inside})[0] + ' is not strictly inside ' + {c}"
            ))
            .at(".except"),
        );
    }
    out
}

/// Rules of an AppNetwork flow peer (`PeerSpec`).
pub(crate) fn peer(schema: &mut Schema) {
    let count = PEER_KINDS
        .iter()
        .map(|(_, t)| format!("({t} ? 1 : 0)"))
        .collect::<Vec<_>>()
        .join(" + ");
    let kinds = PEER_KINDS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ");
    let listed = PEER_KINDS
        .iter()
        .map(|(k, t)| format!("{t} ? '{k}' : ''"))
        .collect::<Vec<_>>()
        .join(", ");
    let one = format!("({count}) != 1");
    let kinds_or = kinds.replace(", kubeAPIServer", " or kubeAPIServer");
    let no_selector_kinds = ["tier", "cidr", "world", "fqdn", "kubeAPIServer"]
        .iter()
        .filter_map(|k| PEER_KINDS.iter().find(|(n, _)| n == k).map(|(_, t)| *t))
        .collect::<Vec<_>>()
        .join(" || ");
    let mut rules = vec![
        rule(
            format!("({count}) <= 1"),
            format!("set only one of {kinds} (they are different kinds of peer)"),
        )
        .expr(format!(
            "'set only one of ' + [{listed}].filter(k, k != '').join(', ') + ' (they are different kinds of peer)'"
        )),
        rule(
            format!("({count}) >= 1 || has(self.selector)"),
            format!("set one of {kinds_or}"),
        ),
        rule(
            format!("({count}) >= 1 || !has(self.selector)"),
            crate::vocab::OWN_NAMESPACE_PODS,
        ),
        rule(
            format!("({count}) > 1 || !has(self.except) || has(self.cidr)"),
            "except is only allowed together with cidr",
        )
        .at(".except"),
        rule(
            format!("{one} || !has(self.selector) || !({no_selector_kinds})"),
            "this kind of peer takes no pod selector",
        )
        .expr("has(self.tier) ? 'a tier peer takes no selector (the tier\\'s own selector applies)' : 'a ' + (has(self.cidr) ? 'cidr' : has(self.fqdn) ? 'fqdn' : has(self.world) ? 'world' : 'kubeAPIServer') + ' peer takes no pod selector'")
        .at(".selector"),
        rule(
            format!("{one} || !has(self.namespaceSelector) || {}", non_empty("self.namespaceSelector")),
            "an empty namespaceSelector selects every namespace of the cluster; set allNamespaces: true if that is really meant, or name the namespaces",
        )
        .at(".namespaceSelector"),
        rule(
            format!("{one} || !has(self.namespace) || self.namespace.matches({DNS_LABEL_NAME})"),
            "not a namespace name",
        )
        .expr(format!("{} + ' is not a namespace name'", quoted("self.namespace")))
        .at(".namespace"),
        rule(
            format!("{one} || !has(self.fqdn) || (size(self.fqdn) <= (self.fqdn.startsWith('*.') ? 255 : 253) && self.fqdn.matches({FQDN}))"),
            "not a DNS name or a wildcard of the form *.example.com",
        )
        .expr(format!("{} + ' is not a DNS name or a wildcard of the form *.example.com'", quoted("self.fqdn")))
        .at(".fqdn"),
    ];
    let guard = format!("{one} || !has(self.cidr) || has(self.selector)");
    rules.extend(cidr_rules("cidr", &guard, true));
    attach(schema, rules);
}

/// Rules of a DNS spec.
pub(crate) fn dns(schema: &mut Schema) {
    let off = "(has(self.enabled) && !self.enabled)";
    attach(
        schema,
        vec![
            rule(
                format!(
                    "{off} || !has(self.namespace) || self.namespace.matches({DNS_LABEL_NAME})"
                ),
                "not a namespace name",
            )
            .expr(format!(
                "{} + ' is not a namespace name'",
                quoted("self.namespace")
            ))
            .at(".namespace"),
            rule(
                format!("{off} || !has(self.nodeLocalAddress) || isIP(self.nodeLocalAddress)"),
                "not an IP address",
            )
            .expr(format!(
                "{} + ' is not an IP address'",
                quoted("self.nodeLocalAddress")
            ))
            .at(".nodeLocalAddress"),
        ],
    );
}

/// Rules of a ClusterBaseline spec: namespace names.
pub(crate) fn cluster_baseline(schema: &mut Schema) {
    let names = |field: &'static str, path: &'static str| {
        rule(
            format!("!has(self.{field}) || self.{field}.all(n, n.matches({DNS_LABEL_NAME}))"),
            "not a namespace name",
        )
        .expr(format!(
            "{} + ' is not a namespace name'",
            quoted(&format!(
                "self.{field}.filter(n, !n.matches({DNS_LABEL_NAME}))[0]"
            ))
        ))
        .at(path)
    };
    attach(
        schema,
        vec![
            names("excludeNamespaces", ".excludeNamespaces"),
            names("includeSystemNamespaces", ".includeSystemNamespaces"),
        ],
    );
}

/// Rules of the guardrails: rule names unique, at most 25 rules per direction.
pub(crate) fn guardrails(schema: &mut Schema) {
    let max = crate::vocab::CNP_MAX_RULES;
    let per_dir = |dir: &str| {
        rule(
            format!("!has(self.rules) || size(self.rules.filter(r, r.direction == '{dir}')) <= {max}"),
            format!("too many {dir} rules; at most {max} per direction"),
        )
        .expr(format!(
            "string(size(self.rules.filter(r, r.direction == '{dir}'))) + ' {dir} rules; at most {max} per direction'"
        ))
        .at(".rules")
    };
    attach(
        schema,
        vec![
            rule(
                "!has(self.rules) || self.rules.all(r, !r.name.matches(".to_string() + DNS_LABEL_NAME + ") || self.rules.exists_one(s, s.name == r.name))",
                "duplicate rule name",
            )
            .expr(format!(
                "'duplicate rule name ' + {}",
                quoted(&format!("self.rules.filter(r, r.name.matches({DNS_LABEL_NAME}) && !self.rules.exists_one(s, s.name == r.name))[0].name"))
            ))
            .at(".rules"),
            per_dir("Ingress"),
            per_dir("Egress"),
        ],
    );
}

/// Rules of one guardrail rule.
pub(crate) fn guardrail(schema: &mut Schema) {
    attach(
        schema,
        vec![
            rule(
                format!("self.name.matches({DNS_LABEL_NAME})"),
                "not a DNS label",
            )
            .expr(format!("{} + ' is not a DNS label'", quoted("self.name")))
            .at(".name"),
            rule("size(self.peers) > 0", "at least one peer is required").at(".peers"),
        ],
    );
}

/// Rules of a guardrail peer.
pub(crate) fn guardrail_peer(schema: &mut Schema) {
    let count = "(has(self.namespaceSelector) ? 1 : 0) + (has(self.allNamespaces) && self.allNamespaces ? 1 : 0) + (has(self.cidr) ? 1 : 0)";
    let one = format!("({count}) != 1");
    let mut rules = vec![
        rule(
            format!("({count}) == 1"),
            "set exactly one of namespaceSelector, allNamespaces and cidr",
        ),
        rule(
            format!(
                "{one} || !has(self.namespaceSelector) || {}",
                non_empty("self.namespaceSelector")
            ),
            "an empty selector matches every namespace: use allNamespaces: true",
        )
        .at(".namespaceSelector"),
        rule(
            format!("{one} || !has(self.cidr) || !has(self.podSelector)"),
            "a cidr peer takes no pod selector",
        )
        .at(".podSelector"),
    ];
    let guard = format!("{one} || !has(self.cidr) || has(self.podSelector)");
    rules.extend(cidr_rules("cidr", &guard, false));
    attach(schema, rules);
}

#[cfg(test)]
#[path = "cel_tests.rs"]
mod tests;
