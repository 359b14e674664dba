//! Status conditions, kstatus-compatible: `Ready` and `Stalled`, `observedGeneration`, and a
//! `lastTransitionTime` that only moves when the condition's status does.

use crate::crd::Condition;

/// The condition every tierflow object carries.
pub const READY: &str = "Ready";
/// kstatus's "will not make progress without a change" condition.
pub const STALLED: &str = "Stalled";

/// RFC 3339 "now", second precision (the metav1.Time format).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A new condition.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        last_transition_time: now(),
        observed_generation: generation,
    }
}

/// Sets `new` in `conditions`, keeping the old `lastTransitionTime` when the status is unchanged.
pub fn set(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Removes the condition of `type_`.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Finds the condition of `type_`.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The condition saying which flows depend on a Cilium agent feature that is off.
pub const FEATURES_MISSING: &str = "FeaturesMissing";

/// Sets `FeaturesMissing=True` (reason `CiliumFeatureOff`, naming each flow and the
/// `cilium-config` key) while some flow of the plan depends on a feature that is off; removes
/// it otherwise.
pub fn features_missing(
    conditions: &mut Vec<Condition>,
    plan: &crate::plan::AppPlan,
    generation: Option<i64>,
) {
    if plan.missing_features.is_empty() {
        remove(conditions, FEATURES_MISSING);
    } else {
        set(
            conditions,
            condition(
                FEATURES_MISSING,
                true,
                "CiliumFeatureOff",
                crate::plan::features::message(&plan.missing_features),
                generation,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_is_stable_while_status_is_unchanged() {
        let mut cs = vec![Condition {
            last_transition_time: "2020-01-01T00:00:00Z".into(),
            ..condition(READY, true, "Applied", "a", Some(1))
        }];
        set(&mut cs, condition(READY, true, "Applied", "b", Some(2)));
        assert_eq!(cs[0].last_transition_time, "2020-01-01T00:00:00Z");
        assert_eq!(cs[0].message, "b");
        set(
            &mut cs,
            condition(READY, false, "InvalidSpec", "c", Some(3)),
        );
        assert_ne!(cs[0].last_transition_time, "2020-01-01T00:00:00Z");
    }
}
