//! What the per-CNI checks share: the violation type and Kubernetes name rules.

use std::fmt;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field (`metadata.name`, `spec.ingress[2].toPorts[0].ports`).
    pub path: String,
    /// What is wrong, naming the limit.
    pub message: String,
    /// Where the rule is upstream (file, line, commit).
    pub source: &'static str,
    /// `None`: every supported release refuses; otherwise the releases that do
    /// (`"Calico v3.28"`).
    pub releases: Option<&'static str>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(r) = self.releases {
            write!(f, " (on {r})")?;
        }
        Ok(())
    }
}

/// The name part of a Kubernetes qualified name (label key): at most 63 characters,
/// alphanumerics with `-`, `_`, `.` inside
/// (kubernetes `staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go`,
/// `IsQualifiedName`).
pub(crate) fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if name.contains('/') {
        return Some(format!("key {key:?} has more than one '/'"));
    }
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !is_subdomain(p) {
            return Some(format!(
                "key {key:?}: the prefix must be a DNS subdomain of at most 253 characters"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 {
        return Some(format!(
            "key {key:?}: the name part must be 1 to 63 characters (it is {})",
            name.len()
        ));
    }
    if !is_label_value(name) {
        return Some(format!(
            "key {key:?}: the name part must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    None
}

/// A label value: empty, or at most 63 alphanumerics with `-`, `_`, `.` inside.
pub(crate) fn is_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let b = v.as_bytes();
    v.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain (without the length check).
pub(crate) fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_dns_label)
}

/// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63).
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}
