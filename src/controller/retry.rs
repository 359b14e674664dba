//! Per-object exponential backoff: a persistent error (403, 422, a webhook that refuses) is
//! retried after 1 s, 2 s, 4 s … up to 5 minutes instead of every 2 s forever; the first
//! success resets it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first delay after an error.
const FIRST: Duration = Duration::from_secs(1);
/// The longest delay.
const MAX: Duration = Duration::from_secs(300);

/// Consecutive failures per object key.
#[derive(Clone, Debug, Default)]
pub struct Retries(Arc<Mutex<HashMap<String, u32>>>);

impl Retries {
    /// The delay before retrying `key` after one more failure.
    pub fn next(&self, key: &str) -> Duration {
        let n = self
            .0
            .lock()
            .map(|mut m| {
                let n = m.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        delay(n)
    }

    /// Forgets the failures of `key` once a reconcile of it succeeded.
    pub fn settle<T, E>(&self, key: &str, result: &Result<T, E>) {
        if result.is_ok() {
            if let Ok(mut m) = self.0.lock() {
                m.remove(key);
            }
        }
    }

    /// How many consecutive failures `key` has had.
    pub fn failures(&self, key: &str) -> u32 {
        self.0
            .lock()
            .map(|m| m.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// The delay after `n` consecutive failures (n ≥ 1).
pub fn delay(n: u32) -> Duration {
    let factor = 2u32.saturating_pow(n.saturating_sub(1).min(16));
    FIRST.saturating_mul(factor).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_one_second_up_to_five_minutes() {
        assert_eq!(delay(1), Duration::from_secs(1));
        assert_eq!(delay(2), Duration::from_secs(2));
        assert_eq!(delay(4), Duration::from_secs(8));
        assert_eq!(delay(9), Duration::from_secs(256));
        assert_eq!(delay(10), MAX);
        assert_eq!(delay(1000), MAX);
    }

    #[test]
    fn a_success_resets_the_backoff_of_that_object_only() {
        let r = Retries::default();
        assert_eq!(r.next("a"), Duration::from_secs(1));
        assert_eq!(r.next("a"), Duration::from_secs(2));
        assert_eq!(r.next("b"), Duration::from_secs(1));
        r.settle::<(), ()>("a", &Ok(()));
        assert_eq!(r.failures("a"), 0);
        assert_eq!(r.failures("b"), 1);
        assert_eq!(r.next("a"), Duration::from_secs(1));
    }
}
