//! `tierflow suggest` and the flow audit (`tierflow suggest --against`, `tierflow verify
//! --flows`): reading flow files, the pods, writing the suggested AppNetworks as YAML with
//! comments, and the reports. The work is done in the core (`tierflow::adopt`): parsing
//! ([`crate::adopt::flows`]), the suggestion ([`crate::adopt::suggest`]) and the replay through
//! the planner and the engine ([`crate::adopt::replay`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::input::Input;
use super::CliError;
use crate::adopt::flows::{self, Format, Observations, Outcome};
use crate::adopt::replay::{replay, Replay};
use crate::adopt::suggest::{group, Known, LeftOut, Observed, Suggested, Suggestion};
use crate::core::Cidr;
use crate::model::{Backend, BackendRequest};
use crate::plan::AppInput;
use crate::vocab::API_VERSION;

/// Reads a flow file (`-`: standard input) in `format`, or in the format its first line shows:
/// the file's name for messages, the format and the flows.
pub fn read_flows(
    path: &Path,
    format: Option<Format>,
) -> Result<(String, Format, Observations), CliError> {
    let (name, text) = super::input::read_text(path)?;
    let format = format.unwrap_or_else(|| Format::detect(&text));
    let observations = flows::parse(format, &text).map_err(|e| CliError::Read {
        file: name.clone(),
        message: e.to_string(),
    })?;
    Ok((name, format, observations))
}

/// The pods and namespaces of an input (every other object is passed over).
pub fn known(input: &Input) -> Result<Known, CliError> {
    Known::from_values(input.values()).map_err(|e| input.locate(e).into())
}

/// Parses `--aggregate`: `/24` or `24`, at most `max`.
pub fn parse_prefix(s: &str, max: u8) -> Result<u8, String> {
    s.trim()
        .trim_start_matches('/')
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("{s:?} is not a prefix length (/0 to /{max})"))
}

/// Whether a string can be written as a plain YAML scalar in flow style and read back as
/// the same string.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !s.starts_with(['-', '.'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
}

/// The order keys are written in (the order people read an AppNetwork in); others after them,
/// alphabetically. An empty `ports` list is left out (the same as absent).
const KEY_ORDER: [&str; 15] = [
    "name",
    "namespace",
    "from",
    "to",
    "tier",
    "namespaceSelector",
    "allNamespaces",
    "selector",
    "matchLabels",
    "cidr",
    "except",
    "ports",
    "port",
    "endPort",
    "protocol",
];

/// A JSON value in YAML flow style (`{key: value, list: [a, b]}`).
fn flow_yaml(v: &Value) -> String {
    let scalar = |s: &str| {
        if plain(s) {
            s.to_string()
        } else {
            Value::from(s).to_string()
        }
    };
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m
                .iter()
                .filter(|(k, v)| {
                    !(k.as_str() == "ports" && v.as_array().is_some_and(Vec::is_empty))
                })
                .collect();
            entries.sort_by_key(|(k, _)| {
                (
                    KEY_ORDER
                        .iter()
                        .position(|o| o == k)
                        .unwrap_or(KEY_ORDER.len()),
                    k.as_str(),
                )
            });
            format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", scalar(k), flow_yaml(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(flow_yaml).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => scalar(s),
        other => other.to_string(),
    }
}

fn flows_word(n: u64) -> &'static str {
    if n == 1 {
        "flow"
    } else {
        "flows"
    }
}

/// One suggested AppNetwork as a YAML document with comments: per tier the observed pods it
/// selects, per flow how many observed flows it covers.
pub fn to_yaml(s: &Suggested, source: &str) -> Result<String, CliError> {
    let json = |v: &dyn erased::Ser| v.value().map_err(|e| CliError::Output(e.to_string()));
    let mut out = String::from("---\n");
    let _ = writeln!(
        out,
        "# Suggested by `tierflow suggest` from {source}: every flow below was observed; \
         nothing else is allowed."
    );
    let _ = writeln!(out, "apiVersion: {API_VERSION}");
    out.push_str("kind: AppNetwork\n");
    let _ = writeln!(
        out,
        "metadata: {}",
        flow_yaml(&serde_json::json!({"name": s.name, "namespace": s.namespace}))
    );
    out.push_str("spec:\n");
    out.push_str("  # baseline (default): deny ingress and egress of every pod of the namespace\n");
    if s.spec.dns.enabled {
        let _ = writeln!(
            out,
            "  dns: {{enabled: true}}  # {} observed DNS {} to kube-system/k8s-app=kube-dns",
            s.dns_count,
            flows_word(s.dns_count)
        );
    } else {
        out.push_str("  dns: {enabled: false}  # no DNS lookup from this namespace was observed\n");
    }
    out.push_str("  tiers:\n");
    for (i, t) in s.spec.tiers.iter().enumerate() {
        let pods: Vec<&String> = s.tier_pods.get(i).into_iter().flatten().collect();
        if !pods.is_empty() {
            let shown: Vec<&str> = pods.iter().take(5).map(|p| p.as_str()).collect();
            let more = pods.len().saturating_sub(shown.len());
            let _ = writeln!(
                out,
                "    # selects {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(out, "    - {}", flow_yaml(&json(t)?));
    }
    if s.spec.flows.is_empty() {
        out.push_str("  flows: []\n");
    } else {
        out.push_str("  flows:\n");
    }
    for (i, f) in s.spec.flows.iter().enumerate() {
        let n = s.flow_counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(out, "    # {n} observed {}", flows_word(n));
        let _ = writeln!(out, "    - {}", flow_yaml(&json(f)?));
    }
    Ok(out)
}

mod erased {
    /// Serialisation to a JSON value, object-safe.
    pub trait Ser {
        fn value(&self) -> Result<serde_json::Value, serde_json::Error>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}

/// The summary of a flow file for the report: what was read and what was passed over.
pub fn read_summary(file: &str, format: Format, o: &Observations) -> String {
    let flows: u64 = o.flows.iter().map(|f| f.count).sum();
    let mut s = format!(
        "read {file} as {}: {} flow records ({flows} flows)",
        format.as_str(),
        o.flows.len()
    );
    for (why, n) in &o.passed {
        let _ = write!(s, "; passed over {n} {}", why.describe());
    }
    s
}

fn connection(o: &Observed, known: &Known) -> String {
    let end = |e| match known.resolve(e).and_then(|i| known.pods.get(i)) {
        Some(p) => format!("{}/{}", p.namespace, p.name),
        None => e.to_string(),
    };
    format!(
        "{} -> {} on {}/{} ({} {}, first at record {})",
        end(&o.source),
        end(&o.destination),
        o.port,
        o.protocol,
        o.count,
        flows_word(o.count),
        o.first_record
    )
}

/// What the suggestion left out, for standard error: the flows denied when observed, listed
/// apart, and those that could not be expressed.
pub fn left_out_text(s: &Suggestion, known: &Known) -> String {
    let mut out = String::new();
    let denied: Vec<&Observed> = s
        .left_out
        .iter()
        .filter(|(_, w)| *w == LeftOut::Denied)
        .map(|(o, _)| o)
        .collect();
    if !denied.is_empty() {
        let _ = writeln!(
            out,
            "observed flows that were denied (not allowed by the suggestion):"
        );
        for o in denied {
            let _ = writeln!(out, "    {}", connection(o, known));
        }
    }
    let other: Vec<&(Observed, LeftOut)> = s
        .left_out
        .iter()
        .filter(|(_, w)| *w != LeftOut::Denied)
        .collect();
    if !other.is_empty() {
        let _ = writeln!(out, "observed flows left out of the suggestion:");
        for (o, why) in other {
            let _ = writeln!(out, "    {}: {}", connection(o, known), why.describe());
        }
    }
    out
}

/// One replay, for people: what would be denied, per flow, with the AppNetwork and why.
pub fn replay_text(r: &Replay, what: &str) -> String {
    let mut out = String::new();
    let checked = format!(
        "{} observed connections ({} {})",
        r.checked,
        r.flows,
        flows_word(r.flows)
    );
    if r.denied.is_empty() {
        let _ = writeln!(out, "{what} on {}: allows all {checked}", r.backend);
    } else {
        let _ = writeln!(
            out,
            "{what} on {}: would deny {} of {checked}:",
            r.backend,
            r.denied.len()
        );
    }
    for d in &r.denied {
        let apps = if d.app_networks.is_empty() {
            String::new()
        } else {
            format!(": AppNetwork {}", d.app_networks.join(", "))
        };
        let _ = writeln!(
            out,
            "    {} -> {} on {}/{} ({} {}, first at record {}){apps}",
            d.from,
            d.to,
            d.port,
            d.protocol,
            d.count,
            flows_word(d.count),
            d.record
        );
        for w in &d.why {
            let _ = writeln!(out, "        {w}");
        }
    }
    for u in &r.unchecked {
        let _ = writeln!(
            out,
            "    not checked: {} -> {} on {}/{}: {}",
            u.from, u.to, u.port, u.protocol, u.why
        );
    }
    for h in &r.held {
        let _ = writeln!(out, "    held (nothing of it would be written): {h}");
    }
    for n in &r.notes {
        let _ = writeln!(out, "    note: {n}");
    }
    out
}

/// The suggestion's AppNetworks as planner inputs.
pub fn inputs(s: &Suggestion) -> Vec<AppInput> {
    s.app_networks
        .iter()
        .map(|a| AppInput {
            name: a.name.clone(),
            namespace: a.namespace.clone(),
            uid: None,
            generation: None,
            spec: a.spec.clone(),
        })
        .collect()
}

/// Replays the observations against the suggestion on every backend tierflow writes
/// AppNetworks for.
pub fn check_suggestion(
    s: &Suggestion,
    observations: &Observations,
    known: &Known,
) -> Result<Vec<Replay>, CliError> {
    let observed = group(&observations.flows);
    let apps = inputs(s);
    [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium]
        .into_iter()
        .map(|b| {
            replay(&apps, &observed, known, b, &[]).map_err(|e| {
                CliError::Output(format!(
                    "the engine cannot read what the suggestion renders to on {}: {e}",
                    b.as_str()
                ))
            })
        })
        .collect()
}

/// The AppNetworks of an input, as planner inputs (validated, so errors name file, document
/// and field). Pods, Namespaces and Lists are passed over (they are read by [`known`]); any
/// other kind is an error.
pub fn app_inputs(input: &Input) -> Result<Vec<AppInput>, CliError> {
    let mut out = Vec::new();
    for doc in &input.documents {
        match doc.type_meta() {
            ("tierflow.dev/v1alpha1", "AppNetwork") => {
                let model = input.app_network(doc)?;
                let app: crate::crd::AppNetwork = input.typed(doc)?;
                out.push(AppInput {
                    name: model.name,
                    namespace: model.namespace,
                    uid: None,
                    generation: None,
                    spec: app.spec,
                });
            }
            ("v1", "Pod" | "Namespace") => {}
            (_, k) if k.ends_with("List") || doc.value.is_null() => {}
            (api_version, kind) => {
                return Err(input
                    .error(
                        doc,
                        None,
                        format!(
                            "the flow audit reads tierflow.dev/v1alpha1 AppNetwork, v1 Pod and \
                             Namespace, not {}",
                            super::input::type_text(api_version, kind)
                        ),
                    )
                    .into())
            }
        }
    }
    Ok(out)
}

/// The outcome of an audit: a replay per backend the AppNetworks are planned on, and the flows
/// that were denied when observed (not replayed).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// Whether no observed connection would be denied (and nothing is held).
    pub passed: bool,
    /// One per backend.
    pub replays: Vec<Replay>,
    /// Observed connections that were denied already, as `from -> to on port/protocol`.
    pub denied_when_observed: Vec<String>,
}

/// Replays observed flows against intended AppNetworks, each on its own backend (`Auto`
/// meaning NetworkPolicy offline) unless `backend` forces one.
pub fn audit(
    apps: &[AppInput],
    observations: &Observations,
    known: &Known,
    backend: Option<Backend>,
    cluster_cidrs: &[Cidr],
) -> Result<Audit, CliError> {
    let observed = group(&observations.flows);
    let mut by_backend: BTreeMap<&'static str, (Backend, Vec<AppInput>)> = BTreeMap::new();
    for a in apps {
        let b = backend.unwrap_or_else(|| {
            let request = crate::validate::app_network(&a.name, &a.namespace, &a.spec)
                .map_or(BackendRequest::Auto, |m| m.backend);
            crate::plan::Cluster::default()
                .resolve(request)
                .for_namespaces()
        });
        by_backend
            .entry(b.as_str())
            .or_insert_with(|| (b, Vec::new()))
            .1
            .push(a.clone());
    }
    let mut replays = Vec::new();
    for (b, group) in by_backend.into_values() {
        replays.push(
            replay(&group, &observed, known, b, cluster_cidrs).map_err(|e| {
                CliError::Output(format!(
                    "the engine cannot read what the AppNetworks render to on {}: {e}",
                    b.as_str()
                ))
            })?,
        );
    }
    let denied_when_observed = observed
        .iter()
        .filter(|o| o.outcome == Outcome::Denied)
        .map(|o| connection(o, known))
        .collect();
    Ok(Audit {
        passed: replays.iter().all(Replay::passed),
        replays,
        denied_when_observed,
    })
}

/// An audit, for people.
pub fn audit_text(a: &Audit) -> String {
    let mut out = String::new();
    for r in &a.replays {
        out.push_str(&replay_text(r, "the AppNetworks"));
    }
    if !a.denied_when_observed.is_empty() {
        out.push_str("observed flows that were denied already (not replayed):\n");
        for d in &a.denied_when_observed {
            let _ = writeln!(out, "    {d}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_style_yaml_quotes_what_would_read_back_as_something_else() {
        let v = serde_json::json!({
            "name": "web", "n": "8080", "b": "yes", "ip6": "2001:db8::1/128",
            "key": "app.kubernetes.io/name", "list": [1, "a b"], "empty": ""
        });
        let y = flow_yaml(&v);
        assert_eq!(
            y,
            "{name: web, b: \"yes\", empty: \"\", ip6: \"2001:db8::1/128\", \
             key: app.kubernetes.io/name, list: [1, \"a b\"], \"n\": \"8080\"}"
        );
        let back: Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn aggregate_prefixes_parse_with_or_without_a_slash() {
        assert_eq!(parse_prefix("/24", 32), Ok(24));
        assert_eq!(parse_prefix("16", 32), Ok(16));
        assert!(parse_prefix("/33", 32).is_err());
        assert!(parse_prefix("/x", 32).is_err());
    }
}
