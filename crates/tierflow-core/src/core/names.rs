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
