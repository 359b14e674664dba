//! `calico-equal-order`: policies of one Calico tier with the same `order` that apply to the
//! same pods in the same direction, whose relative order depends on the Calico release
//! (felix breaks the tie by the policy key, which changed in v3.29 and v3.32:
//! [`TieBreak`]). The engine evaluates them as v3.32+ does; this says where an older release
//! would decide otherwise.

use std::collections::BTreeMap;

use crate::engine::{tier_name, Direction, Flavor, Mode, Policy, Scenario, TieBreak};

use super::finding::{finding, Finding};

fn calico_ordered(p: &Policy) -> bool {
    matches!(p.flavor, Flavor::Calico | Flavor::Kubernetes)
}

fn same_order(a: &Policy, b: &Policy) -> bool {
    a.order.unwrap_or(f64::INFINITY) == b.order.unwrap_or(f64::INFINITY)
}

/// Whether `a` and `b` can apply to one pod: with pods, a pod both select in `dir`; without,
/// scopes that meet (the same namespace, or one cluster-wide).
fn overlap(s: &Scenario, pods_given: bool, a: u32, b: u32, dir: Direction) -> bool {
    if pods_given {
        return (0..s.pods().len()).any(|pod| {
            let list = s.selecting(pod, dir);
            list.contains(&a) && list.contains(&b)
        });
    }
    let ps = s.policies();
    match (
        ps.get(a as usize).and_then(|p| p.namespace.as_deref()),
        ps.get(b as usize).and_then(|p| p.namespace.as_deref()),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Adds a `calico-equal-order` finding for every such pair (Calico mode only).
pub(super) fn equal_orders(s: &Scenario, pods_given: bool, out: &mut Vec<Finding>) {
    if s.mode() != Mode::Calico {
        return;
    }
    let ps = s.policies();
    // Policies by (tier, order): only those can tie.
    let mut groups: BTreeMap<(&str, u64), Vec<usize>> = BTreeMap::new();
    for (i, p) in ps.iter().enumerate() {
        if calico_ordered(p) {
            let order = p.order.unwrap_or(f64::INFINITY).to_bits();
            groups.entry((tier_name(p), order)).or_default().push(i);
        }
    }
    let keys: Vec<[String; 3]> = ps.iter().map(|p| TieBreak::ALL.map(|r| r.key(p))).collect();
    let pairs = groups.values().flat_map(|g| {
        g.iter()
            .enumerate()
            .flat_map(move |(n, &i)| g.iter().skip(n + 1).map(move |&j| (i, j)))
    });
    for (i, j) in pairs {
        let (Some(a), Some(b), Some(ka), Some(kb)) =
            (ps.get(i), ps.get(j), keys.get(i), keys.get(j))
        else {
            continue;
        };
        {
            if !same_order(a, b) {
                continue;
            }
            let firsts: Vec<(TieBreak, bool)> = TieBreak::ALL
                .iter()
                .zip(ka.iter().zip(kb))
                .map(|(&r, (x, y))| (r, x < y))
                .collect();
            if firsts.iter().all(|(_, f)| *f == firsts[0].1) {
                continue;
            }
            let (Ok(ia), Ok(ib)) = (u32::try_from(i), u32::try_from(j)) else {
                continue;
            };
            let dirs: Vec<&str> = [
                (
                    Direction::Ingress,
                    a.ingress.is_some() && b.ingress.is_some(),
                    "ingress",
                ),
                (
                    Direction::Egress,
                    a.egress.is_some() && b.egress.is_some(),
                    "egress",
                ),
            ]
            .into_iter()
            .filter(|(d, both, _)| *both && overlap(s, pods_given, ia, ib, *d))
            .map(|(_, _, n)| n)
            .collect();
            if dirs.is_empty() {
                continue;
            }
            let order = a
                .order
                .map_or_else(|| "none".to_string(), |o| o.to_string());
            let who = |first: bool| if first { &a.display } else { &b.display };
            let releases: Vec<String> = firsts
                .iter()
                .map(|(r, f)| format!("{} evaluates {} first", r.as_str(), who(*f)))
                .collect();
            out.push(finding(
                "calico-equal-order",
                Some(a.display.to_string()),
                format!(
                    "{} {} and {} {} are both order {order} in tier {} and apply to the same \
                     pods ({}): {}; give them distinct orders",
                    a.kind,
                    a.display,
                    b.kind,
                    b.display,
                    tier_name(a),
                    dirs.join(", "),
                    releases.join(", ")
                ),
            ));
        }
    }
}

/// Adds a `calico-tier-missing` finding for every Calico policy whose tier (not `default`)
/// has no `Tier` object in the input.
pub(super) fn missing_tiers(s: &Scenario, out: &mut Vec<Finding>) {
    if s.mode() != Mode::Calico {
        return;
    }
    for p in s.policies() {
        let tier = tier_name(p);
        if p.flavor != Flavor::Calico || tier == "default" || s.calico_tiers().contains_key(tier) {
            continue;
        }
        out.push(finding(
            "calico-tier-missing",
            Some(p.display.to_string()),
            format!(
                "{} {}: tier {tier:?} has no Tier object in the input, so it is evaluated after \
                 every tier that has one and ends in Deny; include the Tier",
                p.kind, p.display
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    fn lint(yaml: &str) -> Vec<crate::lint::Finding> {
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde_json::Value::deserialize(d).unwrap())
            .collect();
        crate::lint::lint(&docs, false)
            .unwrap()
            .into_iter()
            .filter(|f| f.code == "calico-equal-order")
            .collect()
    }

    #[test]
    fn equal_orders_that_releases_break_differently_are_reported() {
        // A Kubernetes policy (order 1000) and a Calico one at 1000 in one namespace: v3.28
        // and v3.32+ put `knp.default.alpha` / `alpha` first, v3.29-v3.31 `default.zeta`.
        let found = lint(
            "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: zeta, namespace: prod}
spec: {order: 1000, selector: app == 'api', ingress: [{action: Deny}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: alpha, namespace: prod}
spec: {podSelector: {}, ingress: [{}]}
",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let m = &found[0].message;
        assert!(
            m.contains("Calico v3.29-v3.31 evaluates prod/zeta first"),
            "{m}"
        );
        assert!(
            m.contains("Calico v3.32+ evaluates prod/alpha first"),
            "{m}"
        );
    }

    #[test]
    fn equal_orders_every_release_breaks_alike_are_not_reported() {
        // tierflow's own shape: order 100, one namespace, names without dots.
        let found = lint(
            "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: tierflow-shop-api, namespace: prod}
spec: {order: 100, selector: app == 'api', ingress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: tierflow-shop-web, namespace: prod}
spec: {order: 100, selector: app == 'web', ingress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: other, namespace: dev}
spec: {order: 100, selector: all(), ingress: [{action: Deny}]}
",
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_policy_in_a_tier_without_its_tier_object_is_reported() {
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(
            "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.p}
spec: {tier: security, selector: all(), ingress: [{action: Pass}]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: platform.p}
spec: {tier: platform, selector: all(), ingress: [{action: Pass}]}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 10}
",
        )
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .collect();
        let found: Vec<_> = crate::lint::lint(&docs, false)
            .unwrap()
            .into_iter()
            .filter(|f| f.code == "calico-tier-missing")
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("tier \"security\""), "{found:?}");
    }
}
