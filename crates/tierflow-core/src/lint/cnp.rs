//! ClusterNetworkPolicy findings (codes `cnp-*` in [`CODES`](super::finding::CODES)). Structure and
//! limits are read off the objects as written; whether DNS survives a Deny is decided by the
//! engine, on a made-up pod each policy selects.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use super::finding::{finding, Finding};
use crate::core::{Protocol, Selector};
use crate::engine::{ContainerPort, Direction, Effect, Endpoint, Pod, Scenario};
use crate::vocab::{CNP_MAX_PEERS, CNP_MAX_RULES, CNP_MAX_RULE_NAME, NAMESPACE_NAME_LABEL};

const API_VERSION: &str = "policy.networking.k8s.io/v1alpha2";

struct Cnp<'a> {
    name: String,
    tier: &'a str,
    priority: i64,
    spec: &'a Value,
}

fn cnps(objects: &[Value]) -> Vec<Cnp<'_>> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = objects.iter().collect();
    while let Some(o) = stack.pop() {
        if let Some(items) = o.get("items").and_then(Value::as_array) {
            stack.extend(items);
            continue;
        }
        if o["apiVersion"] != API_VERSION || o["kind"] != "ClusterNetworkPolicy" {
            continue;
        }
        out.push(Cnp {
            name: o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            tier: o["spec"]["tier"].as_str().unwrap_or_default(),
            priority: o["spec"]["priority"].as_i64().unwrap_or_default(),
            spec: &o["spec"],
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A LabelSelector as written (`None` when absent or unreadable: the engine reports those).
fn selector(v: &Value) -> Option<Selector> {
    let m = v.as_object()?;
    let labels: BTreeMap<String, String> = m
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let exprs: Vec<(String, String, Vec<String>)> = m
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|e| {
                    Some((
                        e["key"].as_str()?.to_string(),
                        e["operator"].as_str()?.to_string(),
                        e["values"]
                            .as_array()
                            .map(|vs| {
                                vs.iter()
                                    .filter_map(|v| v.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Selector::new(labels, exprs).ok()
}

fn is_empty_selector(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        m.values().all(|x| match x {
            Value::Object(o) => o.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Null => true,
            _ => false,
        })
    })
}

/// The subject as (namespace selector, pod selector).
fn subject(c: &Cnp) -> Option<(Selector, Option<Selector>)> {
    let s = &c.spec["subject"];
    if let Some(ns) = s.get("namespaces") {
        return Some((selector(ns)?, None));
    }
    let pods = s.get("pods")?;
    let ns = match pods.get("namespaceSelector") {
        Some(v) => selector(v)?,
        None => Selector::default(),
    };
    Some((ns, Some(selector(&pods["podSelector"])?)))
}

fn union(a: &Selector, b: &Selector) -> BTreeMap<String, String> {
    let mut l = a.example_labels();
    l.extend(b.example_labels());
    l
}

/// Whether two subjects can select the same pod: an example built from both satisfies both
/// (a "may overlap" that is exact for matchLabels and In).
fn may_overlap(a: &(Selector, Option<Selector>), b: &(Selector, Option<Selector>)) -> bool {
    let ns = union(&a.0, &b.0);
    let ns_ok = (a.0.matches(&ns) && b.0.matches(&ns)) || {
        let ns = union(&b.0, &a.0);
        a.0.matches(&ns) && b.0.matches(&ns)
    };
    let pods_ok = match (&a.1, &b.1) {
        (Some(pa), Some(pb)) => {
            let l = union(pa, pb);
            pa.matches(&l) && pb.matches(&l)
        }
        _ => true,
    };
    ns_ok && pods_ok
}

fn rules<'a>(c: &'a Cnp) -> impl Iterator<Item = (&'static str, usize, &'a Value)> {
    [("ingress", "from"), ("egress", "to")]
        .into_iter()
        .flat_map(move |(dir, _)| {
            c.spec[dir]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(move |(i, r)| (dir, i, r))
        })
}

fn peers_key(dir: &str) -> &'static str {
    if dir == "ingress" {
        "from"
    } else {
        "to"
    }
}

/// Every `cnp-*` finding for the ClusterNetworkPolicies among `objects`.
pub(super) fn lint(objects: &[Value], base: &Scenario, out: &mut Vec<Finding>) {
    let all = cnps(objects);
    for c in &all {
        let obj = Some(c.name.clone());
        structure(c, &obj, out);
        dns(c, base, &obj, out);
    }
    for (i, a) in all.iter().enumerate() {
        for b in all.iter().skip(i + 1) {
            if a.tier != b.tier || a.priority != b.priority {
                continue;
            }
            let (Some(sa), Some(sb)) = (subject(a), subject(b)) else {
                continue;
            };
            if may_overlap(&sa, &sb) {
                out.push(finding(
                    "cnp-same-priority-overlap",
                    Some(a.name.clone()),
                    format!(
                        "{} and {} are both {} tier at priority {} and can select the same \
                         pods: their order is undefined (each implementation may pick either); \
                         give them different priorities",
                        a.name, b.name, a.tier, a.priority
                    ),
                ));
            }
        }
    }
}

fn structure(c: &Cnp, obj: &Option<String>, out: &mut Vec<Finding>) {
    if is_empty_selector(&c.spec["subject"]["namespaces"]) {
        out.push(finding(
            "cnp-empty-namespaces",
            obj.clone(),
            "spec.subject.namespaces: {} selects every namespace, kube-system included; name \
             the namespaces (or exclude the system ones with a NotIn)"
                .to_string(),
        ));
    }
    for dir in ["ingress", "egress"] {
        let n = c.spec[dir].as_array().map_or(0, Vec::len);
        if n > CNP_MAX_RULES {
            out.push(finding(
                "cnp-over-limits",
                obj.clone(),
                format!("spec.{dir} has {n} rules; the API allows at most {CNP_MAX_RULES}"),
            ));
        }
    }
    for (dir, i, r) in rules(c) {
        let at = format!("spec.{dir}[{i}]");
        let action = r["action"].as_str().unwrap_or_default();
        if let Some(name) = r["name"].as_str() {
            if name.chars().count() > CNP_MAX_RULE_NAME {
                out.push(finding(
                    "cnp-over-limits",
                    obj.clone(),
                    format!(
                        "{at}.name has {} characters; the API allows at most {CNP_MAX_RULE_NAME}",
                        name.chars().count()
                    ),
                ));
            }
        }
        let key = peers_key(dir);
        let peers = r[key].as_array().map(Vec::as_slice).unwrap_or_default();
        if peers.len() > CNP_MAX_PEERS {
            out.push(finding(
                "cnp-over-limits",
                obj.clone(),
                format!(
                    "{at}.{key} has {} peers; the API allows at most {CNP_MAX_PEERS}",
                    peers.len()
                ),
            ));
        }
        for (j, p) in peers.iter().enumerate() {
            // A Deny from every namespace is how a deny-all is written (ingress has no other
            // spelling); an Accept or Pass from every namespace opens or skips everything.
            if action != "Deny" && is_empty_selector(&p["namespaces"]) {
                out.push(finding(
                    "cnp-empty-namespaces",
                    obj.clone(),
                    format!(
                        "{at}.{key}[{j}].namespaces: {{}} matches every pod of every namespace, \
                         so this {action} applies to all of them"
                    ),
                ));
            }
            if action == "Accept" {
                for (k, n) in p["networks"].as_array().into_iter().flatten().enumerate() {
                    let n = n.as_str().unwrap_or_default();
                    if n.ends_with("/0") {
                        out.push(finding(
                            "cnp-accept-all-networks",
                            obj.clone(),
                            format!(
                                "{at}.{key}[{j}].networks[{k}]: {n} with Accept also accepts \
                                 every pod (networks match pod addresses), not only the outside \
                                 world"
                            ),
                        ));
                    }
                }
            }
        }
    }
}

const DNS_NAMESPACE: &str = "kube-system";

/// A made-up pod the policy selects, and kube-dns unless the input has one: if DNS egress is
/// denied by a ClusterNetworkPolicy rule, that is the finding.
fn dns(c: &Cnp, base: &Scenario, obj: &Option<String>, out: &mut Vec<Finding>) {
    let denies_egress = c.spec["egress"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["action"] == "Deny"));
    if !denies_egress {
        return;
    }
    let Some((ns_sel, pod_sel)) = subject(c) else {
        return;
    };
    let mut s = base.clone();
    let ns_labels = ns_sel.example_labels();
    let ns = ns_labels
        .get(NAMESPACE_NAME_LABEL)
        .cloned()
        .unwrap_or_else(|| format!("lint-cnp-{}", c.name));
    s.add_namespace(&ns, ns_labels);
    let pod_name = format!("lint-cnp-{}", c.name);
    s.add_pod(Pod {
        namespace: ns.clone(),
        name: pod_name.clone(),
        labels: pod_sel.map(|p| p.example_labels()).unwrap_or_default(),
        ips: vec![IpAddr::V4(Ipv4Addr::new(10, 244, 255, 254))],
        ports: Vec::new(),
        service_account: None,
    });
    let dns_label = (crate::vocab::DNS_LABEL_KEY, crate::vocab::DNS_LABEL_VALUE);
    let has_dns = s.pods().iter().any(|p| {
        p.namespace == DNS_NAMESPACE
            && p.labels.get(dns_label.0).map(String::as_str) == Some(dns_label.1)
    });
    if !has_dns {
        s.add_pod(Pod {
            namespace: DNS_NAMESPACE.to_string(),
            name: "lint-kube-dns".to_string(),
            labels: BTreeMap::from([(dns_label.0.to_string(), dns_label.1.to_string())]),
            ips: vec![IpAddr::V4(Ipv4Addr::new(10, 244, 255, 253))],
            ports: vec![
                ContainerPort {
                    name: Some("dns".into()),
                    port: 53,
                    protocol: Protocol::Udp,
                },
                ContainerPort {
                    name: Some("dns-tcp".into()),
                    port: 53,
                    protocol: Protocol::Tcp,
                },
            ],
            service_account: None,
        });
    }
    let find = |name: &str, nsn: &str| {
        s.pods()
            .iter()
            .position(|p| p.name == name && p.namespace == nsn)
    };
    let Some(from) = find(&pod_name, &ns) else {
        return;
    };
    let Some(to) = s.pods().iter().position(|p| {
        p.namespace == DNS_NAMESPACE
            && p.labels.get(dns_label.0).map(String::as_str) == Some(dns_label.1)
    }) else {
        return;
    };
    for proto in [Protocol::Udp, Protocol::Tcp] {
        let denied_here = s
            .explain(Endpoint::Pod(from), Endpoint::Pod(to), 53, proto)
            .into_iter()
            .find(|r| {
                r.direction == Direction::Egress && r.effect == Effect::Deny && r.policy == c.name
            });
        if let Some(r) = denied_here {
            out.push(finding(
                "cnp-deny-without-dns",
                obj.clone(),
                format!(
                    "{}: this {} tier egress Deny matches DNS (kube-dns in {DNS_NAMESPACE}, {} 53) \
                     and no Accept comes before it, so every pod it selects loses name \
                     resolution; put an Accept to kube-dns on UDP and TCP 53 first",
                    r.field.unwrap_or_default(),
                    c.tier,
                    proto.as_str()
                ),
            ));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lint;

    fn codes(yaml: &str) -> Vec<(&'static str, Option<String>, String)> {
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        lint(&docs, false)
            .unwrap()
            .into_iter()
            .filter(|f| f.code.starts_with("cnp-"))
            .map(|f| (f.code, f.object, f.message))
            .collect()
    }

    fn cnp(name: &str, tier: &str, priority: u32, body: &str) -> String {
        format!(
            "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n\
             metadata: {{name: {name}}}\nspec:\n  tier: {tier}\n  priority: {priority}\n{body}\n"
        )
    }

    const SUBJECT_SHOP: &str = "  subject: {namespaces: {matchLabels: {team: shop}}}";

    #[test]
    fn tierflows_own_cluster_baseline_gives_no_cnp_findings() {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str("{}").unwrap();
        let model = crate::validate::cluster_baseline(&spec).unwrap();
        let o = crate::render::cnp::cluster_baseline(
            "default",
            &model,
            "tierflow-system",
            None,
            &crate::render::Env::default(),
        )
        .unwrap();
        let findings = lint(&[o.into_value()], false).unwrap();
        assert!(
            findings.iter().all(|f| !f.code.starts_with("cnp-")),
            "{findings:?}"
        );
    }

    #[test]
    fn an_egress_deny_without_dns_first_is_an_error_and_with_it_is_not() {
        let without = cnp(
            "no-dns",
            "Baseline",
            5,
            &format!(
                "{SUBJECT_SHOP}\n  egress:\n  - {{action: Deny, to: [{{networks: [0.0.0.0/0]}}]}}"
            ),
        );
        let c = codes(&without);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "cnp-deny-without-dns");
        assert!(c[0].2.contains("spec.egress[0]"), "{}", c[0].2);
        let with = cnp(
            "dns",
            "Admin",
            5,
            &format!(
                "{SUBJECT_SHOP}\n  egress:\n  - action: Accept\n    to: [{{pods: {{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}, podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}}}}}]\n    protocols: [{{udp: {{destinationPort: {{number: 53}}}}}}, {{tcp: {{destinationPort: {{number: 53}}}}}}]\n  - {{action: Deny, to: [{{networks: [0.0.0.0/0]}}]}}"
            ),
        );
        assert_eq!(codes(&with), vec![]);
        // UDP only: TCP 53 is still denied.
        let udp_only = with.replace(", {tcp: {destinationPort: {number: 53}}}", "");
        assert_eq!(codes(&udp_only)[0].0, "cnp-deny-without-dns");
    }

    #[test]
    fn overlapping_policies_at_one_priority_are_flagged_and_disjoint_ones_are_not() {
        let a = cnp("a", "Admin", 7, &format!("{SUBJECT_SHOP}\n  ingress: [{{action: Deny, from: [{{namespaces: {{matchLabels: {{x: y}}}}}}]}}]"));
        let b = cnp("b", "Admin", 7, "  subject: {pods: {namespaceSelector: {matchLabels: {team: shop}}, podSelector: {matchLabels: {app: web}}}}\n  ingress: [{action: Accept, from: [{namespaces: {matchLabels: {x: y}}}]}]");
        let c = codes(&format!("{a}{b}"));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "cnp-same-priority-overlap");
        let other = b.replace("team: shop", "team: bank");
        assert_eq!(codes(&format!("{a}{other}")), vec![]);
        let later = b.replace("priority: 7", "priority: 8");
        assert_eq!(codes(&format!("{a}{later}")), vec![]);
    }

    #[test]
    fn empty_namespaces_and_accept_all_networks_are_flagged() {
        let y = cnp(
            "wide",
            "Admin",
            1,
            "  subject: {namespaces: {}}\n  ingress: [{action: Accept, from: [{namespaces: {}}]}, {action: Deny, from: [{namespaces: {}}]}]\n  egress: [{action: Accept, to: [{networks: [0.0.0.0/0, 10.0.0.0/8]}]}]",
        );
        let got: Vec<(&str, String)> = codes(&y).into_iter().map(|(c, _, m)| (c, m)).collect();
        let codes_only: Vec<&str> = got.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            codes_only,
            [
                "cnp-accept-all-networks",
                "cnp-empty-namespaces",
                "cnp-empty-namespaces"
            ],
            "{got:?}"
        );
        assert!(got[0].1.contains("spec.egress[0].to[0].networks[0]"));
    }

    #[test]
    fn rules_past_the_limits_are_errors() {
        let rule = "  - {action: Deny, from: [{namespaces: {matchLabels: {a: b}}}]}\n";
        let many = format!("{SUBJECT_SHOP}\n  ingress:\n{}", rule.repeat(26));
        let c = codes(&cnp("many", "Admin", 1, &many));
        assert!(
            c.iter()
                .any(|(code, _, m)| *code == "cnp-over-limits" && m.contains("26 rules")),
            "{c:?}"
        );
        let peers = vec!["{namespaces: {matchLabels: {a: b}}}"; 26].join(", ");
        let long = "n".repeat(101);
        let y = format!(
            "{SUBJECT_SHOP}\n  ingress:\n  - {{name: {long}, action: Deny, from: [{peers}]}}"
        );
        let msgs: Vec<String> = codes(&cnp("wide", "Admin", 1, &y))
            .into_iter()
            .filter(|(c, ..)| *c == "cnp-over-limits")
            .map(|(.., m)| m)
            .collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
    }
}
