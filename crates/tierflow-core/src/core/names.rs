//! Deterministic, valid object names and label values.

use sha2::{Digest, Sha256};

pub use crate::vocab::{BASELINE_NAME, NAMESPACE_NAME_LABEL};

/// Maximum length of an object name (DNS-1123 subdomain).
pub const MAX_NAME: usize = 253;

/// Maximum length of a label value.
pub const MAX_LABEL_VALUE: usize = 63;

/// A short, stable hash of `s` (8 hex characters).
pub fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Cuts `s` to at most `max` bytes, replacing the tail with `-<hash of s>` when it is too long,
/// and keeps the result a valid name (never ends in '-' or '.').
pub fn fit(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let hash = short_hash(s);
    let keep = max.saturating_sub(hash.len() + 1);
    let head: String = s.chars().take(keep).collect();
    let head = head.trim_end_matches(['-', '.', '_']);
    format!("{head}-{hash}")
}

/// Name of the policy for one tier of one AppNetwork: `tierflow-<appnetwork>-<tier>`.
pub fn tier_policy_name(app: &str, tier: &str) -> String {
    fit(&format!("tierflow-{app}-{tier}"), MAX_NAME)
}

/// A policy name every supported Calico release accepts: Calico v3.28 allows no dot in a
/// policy name, v3.29-v3.31 only a `<tier>.` prefix, v3.32+ one dot
/// (projectcalico/calico `libcalico-go/lib/validator/v3/validator.go`, see
/// `crate::admit::calico`). A name with dots gets them as `-` plus a hash of the original
/// name, so `payments.v2` and `payments-v2` stay distinct; other names are unchanged.
pub fn calico_policy_name(name: &str) -> String {
    if !name.contains('.') {
        return name.to_string();
    }
    fit(
        &format!("{}-{}", name.replace('.', "-"), short_hash(name)),
        MAX_NAME,
    )
}

/// A label value naming an object (names may be longer than label values allow).
pub fn label_value(s: &str) -> String {
    fit(s, MAX_LABEL_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(tier_policy_name("shop", "api"), "tierflow-shop-api");
    }

    #[test]
    fn calico_names_never_have_a_dot_and_stay_distinct() {
        assert_eq!(calico_policy_name("tierflow-shop-api"), "tierflow-shop-api");
        let dotted = calico_policy_name("tierflow-payments.v2-api");
        assert!(dotted.starts_with("tierflow-payments-v2-api-") && !dotted.contains('.'));
        assert_ne!(dotted, calico_policy_name("tierflow-payments-v2-api"));
        assert_eq!(dotted, calico_policy_name("tierflow-payments.v2-api"));
        let long = calico_policy_name(&format!("tierflow-{}.x-api", "a".repeat(260)));
        assert!(long.len() <= MAX_NAME && !long.contains('.'));
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash() {
        let app = "a".repeat(250);
        let name = tier_policy_name(&app, "frontend");
        assert_eq!(name.len(), MAX_NAME);
        assert_eq!(name, tier_policy_name(&app, "frontend"));
        assert_ne!(name, tier_policy_name(&app, "backend"));
        let v = label_value(&"x.".repeat(40));
        assert!(v.len() <= MAX_LABEL_VALUE);
        assert!(!v.contains(".-"));
    }
}
