//! What the linter reports: [`Finding`], its [`Severity`], and the table of stable codes
//! ([`CODES`]). A leaf: every lint module builds findings with [`finding`] and needs nothing
//! else from the others.

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Traffic that is meant to work is blocked, or the policy is invalid.
    Error,
    /// Probably not what was meant, or weaker than it looks.
    Warning,
    /// For information.
    Info,
}

/// One problem the linter found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// A stable code from [`CODES`].
    pub code: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// The object concerned: `ns/name` of a policy or pod, a cluster-scoped policy's `name`,
    /// or a namespace's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// What is wrong, with the field path where there is one.
    pub message: String,
}

/// Every finding code, its severity and what it means.
pub const CODES: &[(&str, Severity, &str)] = &[
    (
        "missing-dns-egress",
        Severity::Error,
        "a pod isolated for egress cannot reach kube-dns on UDP 53 or on TCP 53 (decided by \
         simulation, so a rule aimed at the wrong pods counts as missing)",
    ),
    (
        "dns-udp-only",
        Severity::Warning,
        "a pod isolated for egress reaches kube-dns on UDP 53 but not on TCP 53 (truncated \
         answers and large records need TCP)",
    ),
    (
        "dns-tcp-only",
        Severity::Warning,
        "a pod isolated for egress reaches kube-dns on TCP 53 but not on UDP 53",
    ),
    (
        "permissive-namespace-selector",
        Severity::Warning,
        "a peer uses an empty namespaceSelector (Calico: all()), which matches every namespace",
    ),
    (
        "unrestricted-peer",
        Severity::Warning,
        "an allow rule without from/to (or Calico source/destination, Cilium L3 peer), or with \
         the Cilium entity all: it opens its ports to every peer, in every namespace and outside \
         the cluster",
    ),
    (
        "missing-egress-policy",
        Severity::Warning,
        "a pod is isolated for ingress but not for egress",
    ),
    (
        "no-default-deny",
        Severity::Warning,
        "a namespace of the input has no deny-all baseline for ingress or egress (a policy \
         selecting every pod, for that direction, allowing nothing but DNS)",
    ),
    (
        "split-namespace-pod-peers",
        Severity::Warning,
        "a rule has a namespaceSelector-only peer and a podSelector-only peer: two peers are OR'ed \
         (every pod of those namespaces, plus those pods of the policy's namespace), where one \
         peer with both selectors (AND) was likely meant",
    ),
    (
        "ipblock-except-outside-cidr",
        Severity::Error,
        "an ipBlock (or Cilium CIDR set) except entry is not a strict subset of its cidr",
    ),
    (
        "selector-matches-nothing",
        Severity::Warning,
        "a policy's pod selector matches no pod of the input (only checked when pods are given)",
    ),
    (
        "cnp-same-priority-overlap",
        Severity::Warning,
        "two ClusterNetworkPolicies of the same tier and priority can select the same pods: \
         their relative order is undefined by the API",
    ),
    (
        "cnp-accept-all-networks",
        Severity::Warning,
        "a ClusterNetworkPolicy Accept to networks 0.0.0.0/0 or ::/0: networks match pod \
         addresses too, so it accepts traffic to every pod, not only to the outside world",
    ),
    (
        "cnp-deny-without-dns",
        Severity::Error,
        "an Admin or Baseline egress Deny matches DNS (kube-dns, UDP or TCP 53) with no Accept \
         before it: the pods it selects cannot resolve names (decided by simulation)",
    ),
    (
        "cnp-empty-namespaces",
        Severity::Warning,
        "a ClusterNetworkPolicy subject, or an Accept / Pass peer, is `namespaces: {}`: every \
         namespace, the system ones included (a Deny peer is exempt: it is how deny-all is \
         written)",
    ),
    (
        "cnp-over-limits",
        Severity::Error,
        "a ClusterNetworkPolicy past the API's limits: more than 25 rules in a direction, more \
         than 25 peers in a rule, or a rule name longer than 100 characters (the API server \
         rejects it)",
    ),
    (
        "calico-equal-order",
        Severity::Warning,
        "two Calico policies of one tier with the same order apply to the same pods in the \
         same direction, and Calico releases order them differently (felix breaks the tie by \
         name: v3.28 `ns/name`, v3.29-v3.31 `ns/tier.name`, v3.32+ `name/ns/kind`; Kubernetes \
         policies count as `knp.default.NAME`, order 1000): give them distinct orders",
    ),
    (
        "calico-tier-missing",
        Severity::Warning,
        "a Calico policy is in a tier the input has no Tier object for: it is evaluated after \
         every tier that has one, ending in Deny, as felix does for a tier it has no object for; \
         include the Tier (its order and defaultAction decide where it runs and how it ends)",
    ),
    (
        "cni-refuses-policy",
        Severity::Error,
        "a Calico or Cilium policy its CNI refuses (Calico's API server) or accepts and then does \
         not enforce at all (the Cilium agent), on every supported release: a label key too long \
         once Cilium rewrites it, an HTTP path that is not a Go regular expression, a Calico name \
         or limit (crate::admit). It is left out of every other check",
    ),
    (
        "cni-refuses-policy-on-some-releases",
        Severity::Warning,
        "a Calico policy some supported Calico releases refuse (a dotted name: v3.28 allows \
         none, v3.29-v3.31 only a `<tier>.` prefix)",
    ),
    (
        "ipv4-only-all-addresses",
        Severity::Warning,
        "on a dual-stack input (an IPv6 pod address or IPv6 network anywhere), a policy allows \
         0.0.0.0/0 in a direction without ::/0: IPv6 traffic to or from the same places is \
         denied",
    ),
    (
        "all-addresses-matches-pods",
        Severity::Warning,
        "an ipBlock (Calico: nets) of 0.0.0.0/0 or ::/0 without the cluster's ranges in except \
         (notNets): on NetworkPolicy and Calico it also matches every pod of the cluster, which \
         is rarely meant by \"the internet\" (tierflow's world peer leaves the cluster out)",
    ),
];

/// A finding with the severity its code has in [`CODES`].
pub(crate) fn finding(code: &'static str, object: Option<String>, message: String) -> Finding {
    let severity = CODES
        .iter()
        .find(|(c, ..)| *c == code)
        .map_or(Severity::Warning, |(_, s, _)| *s);
    Finding {
        code,
        severity,
        object,
        message,
    }
}
