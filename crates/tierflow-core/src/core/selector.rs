//! Label selectors: validation of keys and values, and matching.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A label selector operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SelectorOp {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is not one of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl SelectorOp {
    /// The spelling Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectorOp::In => "In",
            SelectorOp::NotIn => "NotIn",
            SelectorOp::Exists => "Exists",
            SelectorOp::DoesNotExist => "DoesNotExist",
        }
    }

    /// Parses the Kubernetes spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "In" => Some(SelectorOp::In),
            "NotIn" => Some(SelectorOp::NotIn),
            "Exists" => Some(SelectorOp::Exists),
            "DoesNotExist" => Some(SelectorOp::DoesNotExist),
            _ => None,
        }
    }
}

/// One `matchExpressions` requirement, values sorted and unique.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: SelectorOp,
    /// Values (empty for Exists / DoesNotExist).
    pub values: BTreeSet<String>,
}

/// A validated label selector. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`, in the order given.
    pub match_expressions: Vec<Requirement>,
}

/// Why a selector was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label key that Kubernetes would refuse.
    #[error("invalid label key {key:?}: {why}")]
    Key {
        /// The key.
        key: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A label value that Kubernetes would refuse.
    #[error("invalid label value {value:?} for key {key:?}: {why}")]
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// An unknown operator.
    #[error("unknown operator {0:?} (expected In, NotIn, Exists or DoesNotExist)")]
    Operator(String),
    /// In / NotIn without values, or Exists / DoesNotExist with values.
    #[error("operator {op} for key {key:?} {why}")]
    Values {
        /// The key.
        key: String,
        /// The operator.
        op: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Checks a label name segment or value: at most 63 characters of `[A-Za-z0-9_.-]`, starting and
/// ending alphanumeric. Empty is allowed only when `allow_empty`.
fn check_segment(s: &str, allow_empty: bool) -> Result<(), &'static str> {
    if s.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err("must not be empty")
        };
    }
    if s.len() > 63 {
        return Err("must be at most 63 characters");
    }
    if !s
        .chars()
        .all(|c| is_alnum(c) || c == '-' || c == '_' || c == '.')
    {
        return Err("may contain only letters, digits, '-', '_' and '.'");
    }
    let first = s.chars().next().unwrap_or('-');
    let last = s.chars().last().unwrap_or('-');
    if !is_alnum(first) || !is_alnum(last) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// Whether `s` is a DNS-1123 subdomain (lower case, at most 253 characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| is_dns1123_label_body(part, 253))
}

/// Whether `s` is a DNS-1123 label (lower case alphanumerics and '-', at most 63 characters).
pub fn is_dns1123_label(s: &str) -> bool {
    is_dns1123_label_body(s, 63)
}

fn is_dns1123_label_body(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Validates a label key (`[prefix/]name`).
pub fn check_key(key: &str) -> Result<(), SelectorError> {
    let err = |why| SelectorError::Key {
        key: key.to_string(),
        why,
    };
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if !is_dns1123_subdomain(p) {
            return Err(err("the prefix must be a lower-case DNS subdomain"));
        }
    }
    check_segment(name, false).map_err(err)
}

/// Validates a label value.
pub fn check_value(key: &str, value: &str) -> Result<(), SelectorError> {
    check_segment(value, true).map_err(|why| SelectorError::Value {
        key: key.to_string(),
        value: value.to_string(),
        why,
    })
}

impl Selector {
    /// Builds and validates a selector.
    pub fn new(
        match_labels: BTreeMap<String, String>,
        expressions: impl IntoIterator<Item = (String, String, Vec<String>)>,
    ) -> Result<Self, SelectorError> {
        for (k, v) in &match_labels {
            check_key(k)?;
            check_value(k, v)?;
        }
        let mut match_expressions = Vec::new();
        for (key, op, values) in expressions {
            check_key(&key)?;
            let op = SelectorOp::parse(&op).ok_or(SelectorError::Operator(op))?;
            let values: BTreeSet<String> = values.into_iter().collect();
            for v in &values {
                check_value(&key, v)?;
            }
            match op {
                SelectorOp::In | SelectorOp::NotIn if values.is_empty() => {
                    return Err(SelectorError::Values {
                        key,
                        op: op.as_str(),
                        why: "needs at least one value",
                    })
                }
                SelectorOp::Exists | SelectorOp::DoesNotExist if !values.is_empty() => {
                    return Err(SelectorError::Values {
                        key,
                        op: op.as_str(),
                        why: "takes no values",
                    })
                }
                _ => {}
            }
            match_expressions.push(Requirement { key, op, values });
        }
        Ok(Selector {
            match_labels,
            match_expressions,
        })
    }

    /// A selector of `matchLabels` only. Panics never; invalid input is the caller's to validate.
    pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Selector {
            match_labels: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }

    /// True when the selector has no requirement at all (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether a set of labels satisfies the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let got = labels.get(&r.key);
                match r.op {
                    SelectorOp::In => got.is_some_and(|v| r.values.contains(v)),
                    SelectorOp::NotIn => got.is_none_or(|v| !r.values.contains(v)),
                    SelectorOp::Exists => got.is_some(),
                    SelectorOp::DoesNotExist => got.is_none(),
                }
            })
    }

    /// Labels satisfying the selector's positive terms, for building a pod it selects:
    /// `matchLabels`, for each `In` a value that no `NotIn` on the same key excludes (and that
    /// every other `In` on the key allows), for each `Exists` a value, and no key that a
    /// `DoesNotExist` forbids. The result matches unless the selector contradicts itself
    /// (callers that care check with [`matches`](Self::matches)). This is the one example of
    /// a Kubernetes (or Cilium, prefixes removed) label selector used by `verify` and `lint`;
    /// Calico's selector expressions have their own, weaker
    /// `CalicoSelector::likely_labels`.
    pub fn example_labels(&self) -> BTreeMap<String, String> {
        let mut out = self.match_labels.clone();
        let excluded = |key: &str, value: &str| {
            self.match_expressions
                .iter()
                .any(|r| r.key == key && r.op == SelectorOp::NotIn && r.values.contains(value))
        };
        for r in &self.match_expressions {
            match r.op {
                SelectorOp::In => {
                    if out.get(&r.key).is_some_and(|v| r.values.contains(v)) {
                        continue;
                    }
                    let pick = r
                        .values
                        .iter()
                        .find(|v| {
                            !excluded(&r.key, v)
                                && self
                                    .match_expressions
                                    .iter()
                                    .filter(|o| o.key == r.key && o.op == SelectorOp::In)
                                    .all(|o| o.values.contains(*v))
                        })
                        .or_else(|| r.values.iter().next());
                    if let Some(v) = pick {
                        out.insert(r.key.clone(), v.clone());
                    }
                }
                SelectorOp::Exists => {
                    if !out.contains_key(&r.key) {
                        let v = ["x", "y", "z", "tierflow-example"]
                            .into_iter()
                            .find(|v| !excluded(&r.key, v))
                            .unwrap_or("x");
                        out.insert(r.key.clone(), v.to_string());
                    }
                }
                SelectorOp::NotIn | SelectorOp::DoesNotExist => {}
            }
        }
        for r in &self.match_expressions {
            if r.op == SelectorOp::DoesNotExist && !self.match_labels.contains_key(&r.key) {
                out.remove(&r.key);
            }
        }
        out
    }
}

impl fmt::Display for Selector {
    /// The `kubectl -l` form, for messages and tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            let vals = r.values.iter().cloned().collect::<Vec<_>>().join(",");
            parts.push(match r.op {
                SelectorOp::In => format!("{} in ({vals})", r.key),
                SelectorOp::NotIn => format!("{} notin ({vals})", r.key),
                SelectorOp::Exists => r.key.clone(),
                SelectorOp::DoesNotExist => format!("!{}", r.key),
            });
        }
        if parts.is_empty() {
            f.write_str("<all>")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let sel = Selector::new(
            labels(&[("app", "api")]),
            vec![
                ("tier".into(), "In".into(), vec!["a".into(), "b".into()]),
                ("env".into(), "NotIn".into(), vec!["dev".into()]),
                ("team".into(), "Exists".into(), vec![]),
                ("legacy".into(), "DoesNotExist".into(), vec![]),
            ],
        )
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "api"), ("tier", "a"), ("team", "x")])));
        assert!(!sel.matches(&labels(&[("app", "api"), ("tier", "c"), ("team", "x")])));
        assert!(!sel.matches(&labels(&[
            ("app", "api"),
            ("tier", "a"),
            ("team", "x"),
            ("env", "dev")
        ])));
        assert!(!sel.matches(&labels(&[("app", "api"), ("tier", "a")])));
        assert!(!sel.matches(&labels(&[
            ("app", "api"),
            ("tier", "a"),
            ("team", "x"),
            ("legacy", "1")
        ])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::default().matches(&labels(&[("x", "y")])));
        assert!(Selector::default().is_empty());
    }

    #[test]
    fn bad_keys_values_and_operators_are_named() {
        assert!(check_key("app.kubernetes.io/name").is_ok());
        assert!(check_key("-bad").is_err());
        assert!(check_key("UPPER.example/x").is_err());
        assert!(check_value("k", "").is_ok());
        assert!(check_value("k", "has space").is_err());
        let err =
            Selector::new(BTreeMap::new(), vec![("k".into(), "Has".into(), vec![])]).unwrap_err();
        assert!(err.to_string().contains("unknown operator \"Has\""));
        let err =
            Selector::new(BTreeMap::new(), vec![("k".into(), "In".into(), vec![])]).unwrap_err();
        assert!(err.to_string().contains("needs at least one value"));
    }

    #[test]
    fn dns_names_are_checked() {
        assert!(is_dns1123_label("frontend"));
        assert!(!is_dns1123_label("Frontend"));
        assert!(!is_dns1123_label("a-"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("a..b"));
    }

    #[test]
    fn example_labels_satisfy_in_exists_and_not_in() {
        let sel = Selector::new(
            BTreeMap::from([("app".to_string(), "web".to_string())]),
            [
                (
                    "tier".to_string(),
                    "In".to_string(),
                    vec!["a".into(), "b".into()],
                ),
                ("tier".to_string(), "NotIn".to_string(), vec!["a".into()]),
                ("canary".to_string(), "Exists".to_string(), vec![]),
                ("legacy".to_string(), "DoesNotExist".to_string(), vec![]),
            ],
        )
        .unwrap();
        let labels = sel.example_labels();
        assert!(sel.matches(&labels), "{labels:?}");
        assert_eq!(labels["tier"], "b");
    }
}
