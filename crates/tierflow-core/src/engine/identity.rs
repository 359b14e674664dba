//! Cilium's identity label filter: which of a pod's labels make up its security identity, and
//! so which labels a Cilium endpoint selector can select on.
//!
//! Modelled on cilium/cilium `pkg/labelsfilter/filter.go` @ 0b22469da6e3659b027ab2827de9f346c4db95cd
//! (`parseLabelPrefix`, `LabelPrefix.matches`, `ParseLabelPrefixCfg`, `defaultLabelPrefixCfg`,
//! `filterLabels`) and `Documentation/operations/performance/scalability/
//! identity-relevant-labels.rst` @ 019c1234ad2c8a8110423a1fd620d82e1233dadb:
//!
//! - The agent's `labels` option (the `cilium-config` key `labels`, Helm `labels=`) is a
//!   space-separated list of patterns. A pattern is `[source:][!]regex`: the part before the
//!   first `:` is the label source (`k8s`, `reserved`, `container`, ...; none: any source), a
//!   `!` makes it exclusive. The regular expression is implicitly anchored at the start of the
//!   key (`FindStringIndex` must match at 0) and the match length counts.
//! - The user's patterns are **appended** to the default list. The default list has only
//!   exclusive patterns besides a few inclusive ones, so by default every label counts except
//!   those excluded (hashes, ordinals, `kubernetes.io` and `k8s.io` keys, ...). Once any
//!   inclusive pattern is given by the user, only labels some inclusive pattern matches count
//!   (the defaults' inclusive ones stay: `reserved:.*`, `io.kubernetes.pod.namespace`,
//!   `io.cilium.k8s.namespace.labels`, `app.kubernetes.io`, `io.cilium.k8s.policy.cluster`).
//! - A label counts when no inclusive pattern is configured and no exclusive one matches, or
//!   when the longest inclusive match is longer than the shortest exclusive match (so
//!   `!foo foo.bar` keeps `foo.bar`).
//!
//! The default list is the union over the supported releases: `filter.go` above, plus the
//! exclusions the current documentation lists (`batch.kubernetes.io/controller-uid`,
//! `controller-uid`), so a label some supported release leaves out of identities is treated
//! as left out.

use regex::Regex;

/// The label source of a pod's Kubernetes labels (cilium/cilium `pkg/labels`,
/// `LabelSourceK8s`).
pub const SOURCE_K8S: &str = "k8s";

/// The default patterns, in `filter.go`'s order, then the documented later exclusions.
const DEFAULT_PATTERNS: &[&str] = &[
    r"reserved:.*",
    r"io\.kubernetes\.pod\.namespace",
    r"io\.cilium\.k8s\.namespace\.labels",
    r"app\.kubernetes\.io",
    r"io\.cilium\.k8s\.policy\.cluster",
    r"!io\.kubernetes",
    r"!kubernetes\.io",
    r"!statefulset\.kubernetes\.io/pod-name",
    r"!apps\.kubernetes\.io/pod-index",
    r"!batch\.kubernetes\.io/job-completion-index",
    r"!.*beta\.kubernetes\.io",
    r"!k8s\.io",
    r"!pod-template-generation",
    r"!pod-template-hash",
    r"!controller-revision-hash",
    r"!annotation.*",
    r"!etcd_node",
    // identity-relevant-labels.rst (current docs), not yet in filter.go at the commit above.
    r"!batch\.kubernetes\.io/controller-uid",
    r"!controller-uid",
];

/// A pattern of the `labels` option that cannot be used (the agent refuses to start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityFilterError {
    /// Nothing after the source (`k8s:`) or after `!`.
    #[error("label pattern {0:?} has an empty prefix")]
    EmptyPattern(String),
    /// Not a regular expression.
    #[error("label pattern {pattern:?} is not a regular expression: {error}")]
    BadRegex {
        /// The pattern as written.
        pattern: String,
        /// What the regular expression parser said.
        error: String,
    },
}

impl IdentityFilterError {
    /// A bounded CamelCase reason.
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityFilterError::EmptyPattern(_) => "EmptyPattern",
            IdentityFilterError::BadRegex { .. } => "BadRegex",
        }
    }
}

/// One pattern (`LabelPrefix`).
#[derive(Clone, Debug)]
struct Pattern {
    /// As written (for messages).
    text: String,
    ignore: bool,
    /// `None`: any source.
    source: Option<String>,
    expr: Regex,
}

impl Pattern {
    /// `parseLabelPrefix`: the source is what precedes the first `:`; a leading `!` after it
    /// excludes; the rest is a regular expression.
    fn parse(text: &str) -> Result<Pattern, IdentityFilterError> {
        let (source, prefix) = match text.split_once(':') {
            Some((s, p)) => (Some(s.to_string()), p),
            None => (None, text),
        };
        if prefix.is_empty() {
            return Err(IdentityFilterError::EmptyPattern(text.to_string()));
        }
        let (ignore, prefix) = match prefix.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, prefix),
        };
        let expr = Regex::new(prefix).map_err(|e| IdentityFilterError::BadRegex {
            pattern: text.to_string(),
            error: e.to_string(),
        })?;
        Ok(Pattern {
            text: text.to_string(),
            ignore,
            // `p.Source != "" && p.Source != l.Source`: an empty source matches any.
            source: source.filter(|s| !s.is_empty()),
            expr,
        })
    }

    /// `LabelPrefix.matches`: the length of the match when it starts at the key's start.
    fn matches(&self, source: &str, key: &str) -> Option<usize> {
        if self.source.as_deref().is_some_and(|s| s != source) {
            return None;
        }
        let m = self.expr.find(key)?;
        (m.start() == 0).then_some(m.end())
    }
}

/// Which labels are part of a Cilium identity: the default list plus the `labels` option.
#[derive(Clone, Debug)]
pub struct CiliumIdentityFilter {
    patterns: Vec<Pattern>,
    /// Some user pattern is inclusive: only labels an inclusive pattern matches count.
    inclusive: bool,
    /// The user's `labels` value, trimmed (empty: the default filter).
    user: String,
}

/// Cilium's default patterns, compiled once: every plan of the operator starts from the
/// default filter, and compiling its regular expressions each time was a tenth of the
/// operator's CPU at a cold start (a clone shares the compiled expressions).
static DEFAULT: std::sync::LazyLock<Vec<Pattern>> = std::sync::LazyLock::new(|| {
    DEFAULT_PATTERNS
        .iter()
        .filter_map(|p| Pattern::parse(p).ok())
        .collect()
});

impl Default for CiliumIdentityFilter {
    fn default() -> Self {
        CiliumIdentityFilter {
            patterns: DEFAULT.clone(),
            inclusive: false,
            user: String::new(),
        }
    }
}

impl PartialEq for CiliumIdentityFilter {
    fn eq(&self, other: &Self) -> bool {
        self.user == other.user
    }
}

impl Eq for CiliumIdentityFilter {}

impl CiliumIdentityFilter {
    /// The filter for a `labels` value (space-separated patterns, as in `cilium-config`):
    /// the default list with the user's patterns appended. An empty value is the default.
    pub fn from_labels(labels: &str) -> Result<Self, IdentityFilterError> {
        let mut f = CiliumIdentityFilter::default();
        for text in labels.split_whitespace() {
            let p = Pattern::parse(text)?;
            f.inclusive |= !p.ignore;
            f.patterns.push(p);
        }
        f.user = labels.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(f)
    }

    /// Whether this is Cilium's default filter (no `labels` configured).
    pub fn is_default(&self) -> bool {
        self.user.is_empty()
    }

    /// The configured `labels` value (empty for the default).
    pub fn labels(&self) -> &str {
        &self.user
    }

    /// `filterLabels` for one label: the longest inclusive match and the shortest exclusive
    /// match, with the patterns that gave them.
    fn judge(&self, source: &str, key: &str) -> (bool, Option<&Pattern>) {
        let mut included = 0;
        let mut ignored: Option<(usize, &Pattern)> = None;
        for p in &self.patterns {
            let Some(len) = p.matches(source, key) else {
                continue;
            };
            if p.ignore {
                if ignored.is_none_or(|(i, _)| i == 0 || len < i) {
                    ignored = Some((len, p));
                }
            } else if len > included {
                included = len;
            }
        }
        let ignored_len = ignored.map_or(0, |(i, _)| i);
        let keep = (!self.inclusive && ignored_len == 0) || included > ignored_len;
        (keep, ignored.map(|(_, p)| p))
    }

    /// Whether a label of `source` with `key` is part of the identity.
    pub fn keeps(&self, source: &str, key: &str) -> bool {
        self.judge(source, key).0
    }

    /// Whether a pod label `key` (source `k8s`) is part of the identity.
    pub fn relevant(&self, key: &str) -> bool {
        self.keeps(SOURCE_K8S, key)
    }

    /// Why a pod label `key` is not part of the identity (`None` when it is): the exclusive
    /// pattern that drops it as written, or that no inclusive pattern matches it.
    pub fn dropped_by(&self, key: &str) -> Option<String> {
        match self.judge(SOURCE_K8S, key) {
            (true, _) => None,
            (false, Some(p)) => Some(format!("drops keys matching {:?}", p.text)),
            (false, None) => Some("keeps only keys its inclusive patterns match".to_string()),
        }
    }

    /// How messages name this filter.
    pub fn describe(&self) -> String {
        if self.is_default() {
            "Cilium's default identity label filter".to_string()
        } else {
            format!(
                "Cilium's identity label filter (cilium-config labels: {:?})",
                self.user
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The label sets of cilium/cilium pkg/labelsfilter/filter_test.go
    // @ 0336d1949f4033dc8989047eb697240f853b90fc, as (source, key) pairs.
    const CONTAINER_LABELS: &[&str] = &[
        "io.kubernetes.container.hash",
        "io.kubernetes.container.name",
        "io.kubernetes.container.restartCount",
        "io.kubernetes.container.terminationMessagePath",
        "io.kubernetes.pod.name",
        "io.kubernetes.pod.namespace",
        "app.kubernetes.io",
        "kubernetes.io.foo",
        "beta.kubernetes.io.foo",
        "annotation.kubectl.kubernetes.io",
        "annotation.hello",
        "annotation.cilium-identity",
        "io.kubernetes.pod.terminationGracePeriod",
        "io.kubernetes.pod.uid",
        "ignore",
        "ignorE",
        "annotation.kubernetes.io/config.seen",
        "controller-revision-hash",
    ];

    fn kept<'a>(f: &CiliumIdentityFilter, labels: &[(&'a str, &'a str)]) -> Vec<&'a str> {
        let mut out: Vec<&str> = labels
            .iter()
            .filter(|(s, k)| f.keeps(s, k))
            .map(|(_, k)| *k)
            .collect();
        out.sort_unstable();
        out
    }

    fn container(extra: &[&'static str]) -> Vec<(&'static str, &'static str)> {
        CONTAINER_LABELS
            .iter()
            .chain(extra)
            .map(|k| ("container", *k))
            .collect()
    }

    #[test]
    fn user_inclusive_patterns_keep_only_what_they_and_the_default_inclusions_match() {
        // TestFilterLabels: `:!ignor[eE] id.* foo`.
        let f = CiliumIdentityFilter::from_labels(":!ignor[eE] id.* foo").unwrap();
        let mut labels = container(&[]);
        assert_eq!(
            kept(&f, &labels),
            ["app.kubernetes.io", "io.kubernetes.pod.namespace"]
        );
        labels.push(("container", "id.lizards"));
        labels.push(("k8s", "id.lizards.k8s"));
        assert_eq!(kept(&f, &labels).len(), 4);
        // `foo` is a prefix, not an exact match: foo2 counts.
        labels.push(("k8s", "foo2.lizards.k8s"));
        assert_eq!(kept(&f, &labels).len(), 5);
        // ... but only at the start of the key.
        labels.push(("k8s", "lizards.foo.lizards.k8s"));
        assert_eq!(
            kept(&f, &labels),
            [
                "app.kubernetes.io",
                "foo2.lizards.k8s",
                "id.lizards",
                "id.lizards.k8s",
                "io.kubernetes.pod.namespace"
            ]
        );
    }

    #[test]
    fn the_default_filter_keeps_every_label_but_the_excluded_ones() {
        // TestDefaultFilterLabels.
        let f = CiliumIdentityFilter::default();
        assert!(f.is_default());
        let mut labels = container(&["ioXkubernetes"]);
        labels.push(("reserved", "host"));
        labels.push(("container", "id.lizards"));
        labels.push(("k8s", "id.lizards.k8s"));
        assert_eq!(
            kept(&f, &labels),
            [
                "app.kubernetes.io",
                "host",
                "id.lizards",
                "id.lizards.k8s",
                "ignorE",
                "ignore",
                "io.kubernetes.pod.namespace",
                "ioXkubernetes"
            ]
        );
        // An empty `labels` value is the default.
        assert!(CiliumIdentityFilter::from_labels("  ")
            .unwrap()
            .is_default());
    }

    #[test]
    fn the_documented_example_keeps_its_prefixes_reserved_labels_and_the_namespace() {
        // TestFilterLabelsDocExample.
        let f = CiliumIdentityFilter::from_labels(
            r"k8s:io.kubernetes.pod.namespace k8s:k8s-app k8s:app k8s:name",
        )
        .unwrap();
        let labels = [
            ("k8s", "io.cilium.k8s.namespace.labels"),
            ("k8s", "k8s-app-team"),
            ("k8s", "app-production"),
            ("k8s", "name-defined"),
            ("reserved", "host"),
            ("any", "io.kubernetes.pod.namespace"),
            // Not source k8s: not matched by `k8s:k8s-app`.
            ("container", "k8s-app-role"),
        ];
        assert_eq!(
            kept(&f, &labels),
            [
                "app-production",
                "host",
                "io.cilium.k8s.namespace.labels",
                "io.kubernetes.pod.namespace",
                "k8s-app-team",
                "name-defined"
            ]
        );
    }

    #[test]
    fn a_longer_inclusive_match_wins_over_a_shorter_exclusive_one() {
        // filterLabels' comment: `{!foo, foo.bar}` keeps foo.bar.
        let f = CiliumIdentityFilter::from_labels(r"!foo foo\.bar").unwrap();
        assert!(f.relevant("foo.bar"));
        assert!(!f.relevant("foo.baz"));
        assert!(!f.relevant("app"), "an inclusive pattern drops the rest");
        let d = CiliumIdentityFilter::default();
        assert!(!d.relevant("statefulset.kubernetes.io/pod-name"));
        assert_eq!(
            d.dropped_by("statefulset.kubernetes.io/pod-name").unwrap(),
            r#"drops keys matching "!statefulset\\.kubernetes\\.io/pod-name""#
        );
        // An inclusive pattern must match a longer part of the key than the exclusion: a key
        // the default list excludes in full (the StatefulSet pod name, pod-template-hash) cannot
        // be brought back with `labels` (only a label prefix file, which replaces the defaults),
        // while one excluded by a shorter prefix (`!k8s\.io`) can.
        let f = CiliumIdentityFilter::from_labels(
            r"k8s:app k8s:statefulset\.kubernetes\.io/pod-name k8s:k8s\.io/role",
        )
        .unwrap();
        assert!(!f.relevant("statefulset.kubernetes.io/pod-name"));
        assert!(!d.relevant("k8s.io/role") && f.relevant("k8s.io/role"));
        assert!(f.relevant("app"));
        assert!(!f.relevant("tier"));
        assert_eq!(
            f.dropped_by("tier").unwrap(),
            "keeps only keys its inclusive patterns match"
        );
        // Exclusions only: the rest of the labels stay.
        let f = CiliumIdentityFilter::from_labels("k8s:!app").unwrap();
        assert!(!f.relevant("app") && !f.relevant("app-x") && f.relevant("tier"));
    }

    #[test]
    fn patterns_the_agent_refuses_are_errors() {
        for (labels, reason) in [("k8s:", "EmptyPattern"), ("k8s:(", "BadRegex")] {
            let e = CiliumIdentityFilter::from_labels(labels).unwrap_err();
            assert_eq!(e.reason(), reason, "{labels}");
        }
    }
}
