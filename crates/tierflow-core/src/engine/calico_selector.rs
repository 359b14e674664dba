//! Calico's selector language: `all()`, `global()`, `has(k)`, `k == 'v'`, `k != 'v'`,
//! `k in {'a', 'b'}`, `k not in {...}`, `k contains 's'`, `k starts with 's'`, `k ends with 's'`,
//! `!`, `&&`, `||` and parentheses (`!` binds tightest, then `&&`, then `||`).
//!
//! Semantics follow Calico's documentation: `k != 'v'` and `k not in {...}` also match
//! endpoints without the label `k`; `==`, `in` and the string operators need the label.
//! An empty selector is `all()`. `global()` selects non-namespaced resources (global network
//! sets, host endpoints); the engine models neither, so it matches no pod and no namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A parsed Calico selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CalicoSelector {
    /// `all()`.
    All,
    /// `global()`.
    Global,
    /// `has(k)`.
    Has(String),
    /// `k == 'v'`.
    Eq(String, String),
    /// `k != 'v'` (true when the label is absent).
    Ne(String, String),
    /// `k in {...}`.
    In(String, BTreeSet<String>),
    /// `k not in {...}` (true when the label is absent).
    NotIn(String, BTreeSet<String>),
    /// `k contains 's'`.
    Contains(String, String),
    /// `k starts with 's'`.
    StartsWith(String, String),
    /// `k ends with 's'`.
    EndsWith(String, String),
    /// `!e`.
    Not(Box<CalicoSelector>),
    /// `a && b && ...`.
    And(Vec<CalicoSelector>),
    /// `a || b || ...`.
    Or(Vec<CalicoSelector>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    AndAnd,
    OrOr,
    Bang,
    EqEq,
    NotEq,
    Str(String),
    Ident(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::LBrace => f.write_str("'{'"),
            Tok::RBrace => f.write_str("'}'"),
            Tok::Comma => f.write_str("','"),
            Tok::AndAnd => f.write_str("'&&'"),
            Tok::OrOr => f.write_str("'||'"),
            Tok::Bang => f.write_str("'!'"),
            Tok::EqEq => f.write_str("'=='"),
            Tok::NotEq => f.write_str("'!='"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Ident(s) => write!(f, "{s:?}"),
        }
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '{' => {
                out.push(Tok::LBrace);
                i += 1
            }
            '}' => {
                out.push(Tok::RBrace);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '&' if next == Some('&') => {
                out.push(Tok::AndAnd);
                i += 2
            }
            '|' if next == Some('|') => {
                out.push(Tok::OrOr);
                i += 2
            }
            '=' if next == Some('=') => {
                out.push(Tok::EqEq);
                i += 2
            }
            '!' if next == Some('=') => {
                out.push(Tok::NotEq);
                i += 2
            }
            '!' => {
                out.push(Tok::Bang);
                i += 1
            }
            '\'' | '"' => {
                let quote = c;
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != quote {
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("unterminated string starting at offset {i}"));
                }
                out.push(Tok::Str(chars[start..j].iter().collect()));
                i = j + 1;
            }
            c if is_key_char(c) => {
                let start = i;
                while i < chars.len() && is_key_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            c => return Err(format!("unexpected character {c:?} at offset {i}")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.pos + 1)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, want: &Tok) -> Result<(), String> {
        match self.next() {
            Some(t) if &t == want => Ok(()),
            Some(t) => Err(format!("expected {want}, found {t}")),
            None => Err(format!("expected {want}, found the end")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            Some(t) => Err(format!("expected a quoted string, found {t}")),
            None => Err("expected a quoted string, found the end".into()),
        }
    }

    fn word(&mut self, w: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Ident(s)) if s == w => Ok(()),
            Some(t) => Err(format!("expected {w:?}, found {t}")),
            None => Err(format!("expected {w:?}, found the end")),
        }
    }

    fn or(&mut self) -> Result<CalicoSelector, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::OrOr) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            CalicoSelector::Or(parts)
        })
    }

    fn and(&mut self) -> Result<CalicoSelector, String> {
        let mut parts = vec![self.unary()?];
        while self.peek() == Some(&Tok::AndAnd) {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            CalicoSelector::And(parts)
        })
    }

    fn unary(&mut self) -> Result<CalicoSelector, String> {
        if self.peek() == Some(&Tok::Bang) {
            self.pos += 1;
            return Ok(CalicoSelector::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn set(&mut self) -> Result<BTreeSet<String>, String> {
        self.eat(&Tok::LBrace)?;
        let mut out = BTreeSet::new();
        if self.peek() == Some(&Tok::RBrace) {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            out.insert(self.string()?);
            match self.next() {
                Some(Tok::Comma) => continue,
                Some(Tok::RBrace) => return Ok(out),
                Some(t) => return Err(format!("expected ',' or '}}', found {t}")),
                None => return Err("expected ',' or '}', found the end".into()),
            }
        }
    }

    fn primary(&mut self) -> Result<CalicoSelector, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.or()?;
                self.eat(&Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Ident(word)) => {
                let call = self.peek() == Some(&Tok::LParen);
                match word.as_str() {
                    "all" | "global" if call => {
                        self.pos += 1;
                        self.eat(&Tok::RParen)?;
                        Ok(if word == "all" {
                            CalicoSelector::All
                        } else {
                            CalicoSelector::Global
                        })
                    }
                    "has" if call => {
                        self.pos += 1;
                        let key = match self.next() {
                            Some(Tok::Ident(k)) => k,
                            Some(t) => return Err(format!("expected a label key, found {t}")),
                            None => return Err("expected a label key, found the end".into()),
                        };
                        self.eat(&Tok::RParen)?;
                        Ok(CalicoSelector::Has(key))
                    }
                    _ => self.comparison(word),
                }
            }
            Some(t) => Err(format!("expected a selector term, found {t}")),
            None => Err("expected a selector term, found the end".into()),
        }
    }

    fn comparison(&mut self, key: String) -> Result<CalicoSelector, String> {
        match self.next() {
            Some(Tok::EqEq) => Ok(CalicoSelector::Eq(key, self.string()?)),
            Some(Tok::NotEq) => Ok(CalicoSelector::Ne(key, self.string()?)),
            Some(Tok::Ident(op)) => match op.as_str() {
                "in" => Ok(CalicoSelector::In(key, self.set()?)),
                "not" => {
                    self.word("in")?;
                    Ok(CalicoSelector::NotIn(key, self.set()?))
                }
                "contains" => Ok(CalicoSelector::Contains(key, self.string()?)),
                "starts" => {
                    self.word("with")?;
                    Ok(CalicoSelector::StartsWith(key, self.string()?))
                }
                "ends" => {
                    self.word("with")?;
                    Ok(CalicoSelector::EndsWith(key, self.string()?))
                }
                other => Err(format!(
                    "unknown operator {other:?} after label {key:?} (expected ==, !=, in, \
                     not in, contains, starts with or ends with)"
                )),
            },
            Some(t) => Err(format!(
                "expected an operator after label {key:?}, found {t}"
            )),
            None => Err(format!(
                "expected an operator after label {key:?}, found the end"
            )),
        }
    }
}

impl CalicoSelector {
    /// Parses a selector; the empty string is `all()`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let toks = tokenize(s)?;
        if toks.is_empty() {
            return Ok(CalicoSelector::All);
        }
        let mut p = Parser { toks, pos: 0 };
        let e = p.or()?;
        match p.peek() {
            None => Ok(e),
            Some(t) => {
                let t = t.clone();
                let hint = if p.peek2().is_none() {
                    ""
                } else {
                    " (and more)"
                };
                Err(format!("unexpected {t}{hint} after a complete selector"))
            }
        }
    }

    /// Whether a set of labels satisfies the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            CalicoSelector::All => true,
            CalicoSelector::Global => false,
            CalicoSelector::Has(k) => labels.contains_key(k),
            CalicoSelector::Eq(k, v) => labels.get(k) == Some(v),
            CalicoSelector::Ne(k, v) => labels.get(k) != Some(v),
            CalicoSelector::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            CalicoSelector::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            CalicoSelector::Contains(k, s) => labels.get(k).is_some_and(|v| v.contains(s)),
            CalicoSelector::StartsWith(k, s) => labels.get(k).is_some_and(|v| v.starts_with(s)),
            CalicoSelector::EndsWith(k, s) => labels.get(k).is_some_and(|v| v.ends_with(s)),
            CalicoSelector::Not(e) => !e.matches(labels),
            CalicoSelector::And(es) => es.iter().all(|e| e.matches(labels)),
            CalicoSelector::Or(es) => es.iter().any(|e| e.matches(labels)),
        }
    }

    /// True for `all()` (or an empty selector).
    pub fn is_all(&self) -> bool {
        matches!(self, CalicoSelector::All)
    }

    /// Labels that likely satisfy the selector, for building a representative pod: a guess,
    /// unlike [`Selector::example_labels`](crate::core::Selector::example_labels) for
    /// Kubernetes selectors. Only positive terms give labels (`has`, `==`, `in`, `contains`,
    /// `starts with`, `ends with`); negations (`!=`, `not in`, `!`) are ignored, and of an
    /// `||` only the first branch is followed, so the result may not match (callers check).
    /// `None` for `global()`, which selects no pod.
    pub fn likely_labels(&self) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        self.collect_example(&mut out).then_some(out)
    }

    fn collect_example(&self, out: &mut BTreeMap<String, String>) -> bool {
        match self {
            CalicoSelector::All => true,
            CalicoSelector::Global => false,
            CalicoSelector::Has(k) => {
                out.entry(k.clone()).or_insert_with(|| "x".to_string());
                true
            }
            CalicoSelector::Eq(k, v)
            | CalicoSelector::Contains(k, v)
            | CalicoSelector::StartsWith(k, v)
            | CalicoSelector::EndsWith(k, v) => {
                out.insert(k.clone(), v.clone());
                true
            }
            CalicoSelector::In(k, vs) => {
                if let Some(v) = vs.iter().next() {
                    out.insert(k.clone(), v.clone());
                }
                true
            }
            CalicoSelector::Ne(..) | CalicoSelector::NotIn(..) | CalicoSelector::Not(_) => true,
            CalicoSelector::And(es) => es.iter().all(|e| e.collect_example(out)),
            CalicoSelector::Or(es) => es.first().is_none_or(|e| e.collect_example(out)),
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

    fn m(sel: &str, pairs: &[(&str, &str)]) -> bool {
        CalicoSelector::parse(sel).unwrap().matches(&labels(pairs))
    }

    #[test]
    fn all_and_the_empty_selector_match_everything() {
        assert!(m("all()", &[]));
        assert!(m("", &[("a", "b")]));
        assert!(m("  ", &[]));
    }

    #[test]
    fn global_matches_no_pod() {
        assert!(!m("global()", &[]));
        assert!(!m("global()", &[("a", "b")]));
    }

    #[test]
    fn has_and_not_has_test_presence_only() {
        assert!(m("has(app)", &[("app", "")]));
        assert!(!m("has(app)", &[("tier", "x")]));
        assert!(m("!has(app)", &[("tier", "x")]));
        assert!(!m("!has(app)", &[("app", "api")]));
    }

    #[test]
    fn equality_needs_the_label_and_inequality_accepts_its_absence() {
        assert!(m("app == 'api'", &[("app", "api")]));
        assert!(m("app == \"api\"", &[("app", "api")]));
        assert!(!m("app == 'api'", &[("app", "web")]));
        assert!(!m("app == 'api'", &[]));
        assert!(m("app != 'api'", &[("app", "web")]));
        assert!(m("app != 'api'", &[]));
        assert!(!m("app != 'api'", &[("app", "api")]));
    }

    #[test]
    fn in_needs_the_label_and_not_in_accepts_its_absence() {
        assert!(m("env in {'prod', 'staging'}", &[("env", "staging")]));
        assert!(!m("env in {'prod','staging'}", &[("env", "dev")]));
        assert!(!m("env in {'prod'}", &[]));
        assert!(!m("env in {}", &[("env", "prod")]));
        assert!(m("env not in {'prod'}", &[("env", "dev")]));
        assert!(m("env not in {'prod'}", &[]));
        assert!(!m("env not in {'prod', 'x'}", &[("env", "prod")]));
    }

    #[test]
    fn string_operators_match_substrings_prefixes_and_suffixes() {
        assert!(m("name contains 'ap'", &[("name", "my-api")]));
        assert!(!m("name contains 'zz'", &[("name", "my-api")]));
        assert!(m("name starts with 'my-'", &[("name", "my-api")]));
        assert!(!m("name starts with 'api'", &[("name", "my-api")]));
        assert!(m("name ends with 'api'", &[("name", "my-api")]));
        assert!(!m("name ends with 'my'", &[("name", "my-api")]));
        assert!(!m("name contains 'a'", &[]));
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_regroup() {
        let l = &[("a", "1"), ("c", "3")];
        assert!(m("a == '1' || b == '2' && c == '9'", l));
        assert!(!m("(a == '1' || b == '2') && c == '9'", l));
        assert!(m("a == '1' && (b == '2' || c == '3')", l));
        assert!(m("!(a == '2') && !!has(c)", l));
    }

    #[test]
    fn keys_may_carry_prefixes_dots_and_dashes() {
        assert!(m(
            "projectcalico.org/namespace == 'prod' && app.kubernetes.io/name-x == 'a_b'",
            &[
                ("projectcalico.org/namespace", "prod"),
                ("app.kubernetes.io/name-x", "a_b")
            ]
        ));
    }

    #[test]
    fn syntax_errors_say_what_was_expected() {
        for bad in [
            "app ==",
            "app = 'x'",
            "app == 'x",
            "has(app",
            "app in {'a' 'b'}",
            "app like 'x'",
            "(all()",
            "all() all()",
            "app == 'x' &&",
            "#",
        ] {
            assert!(CalicoSelector::parse(bad).is_err(), "{bad} should fail");
        }
        let err = CalicoSelector::parse("app like 'x'").unwrap_err();
        assert!(err.contains("unknown operator \"like\""), "{err}");
    }

    #[test]
    fn likely_labels_satisfy_positive_selectors() {
        for sel in [
            "app == 'api' && has(team) && env in {'prod'}",
            "app == 'api' || app == 'web'",
            "name starts with 'x' && tier != 'db'",
        ] {
            let s = CalicoSelector::parse(sel).unwrap();
            let l = s.likely_labels().unwrap();
            assert!(s.matches(&l), "{sel}: {l:?}");
        }
        assert!(CalicoSelector::parse("global()")
            .unwrap()
            .likely_labels()
            .is_none());
    }
}
