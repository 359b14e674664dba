//! Calico's selector language: `all()`, `global()`, `has(k)`, `k == 'v'`, `k != 'v'`,
//! `k in {'a', 'b'}`, `k not in {...}`, `k contains 's'`, `k starts with 's'`, `k ends with 's'`,
//! `!`, `&&`, `||` and parentheses (`!` binds tightest, then `&&`, then `||`).
//!
//! The grammar is Calico's own (projectcalico/calico @ 87c15906,
//! `libcalico-go/lib/selector/tokenizer/tokenizer.go` and `parser/parser.go`), down to its
//! corners: operators after a label are words, and `not in`, `starts with` and `ends with`
//! may be written as one word (`notin`, `startswith`, `endswith`) or with any run of spaces;
//! `contains`/`in` need a word boundary, so `a in"x"` tokenises but `a inf "x"` does not; only
//! spaces and tabs separate tokens (a newline is an error); strings have no escapes; labels
//! are at most 512 characters; a set may be empty or end with a comma (`{'a',}`);
//! `has(`, `all(` and `global(` take no space before the parenthesis. The tests transcribe the
//! upstream parser and tokenizer tables (`parser_test.go`, `tokenizer_test.go`).
//!
//! Semantics follow Calico's documentation: `k != 'v'` and `k not in {...}` also match
//! endpoints without the label `k`; `==`, `in` and the string operators need the label.
//! An empty selector is `all()`. `global()` selects non-namespaced resources (global network
//! sets, host endpoints): Calico rewrites it to `!has(projectcalico.org/namespace)`
//! (`libcalico-go/lib/backend/syncersv1/updateprocessors/rules.go` lines 75-78 @ 87c15906),
//! which no pod satisfies; the engine models neither, so it matches no pod and no namespace.
//! Where `global()` may appear is a property of the field, not of the grammar: the readers
//! (`calico.rs`) and `admit::calico` accept it only as the whole of an entity rule's
//! `namespaceSelector`.

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

/// Calico's tokens (`tokenizer.go` `Kind`). Operators after a label are words that the
/// tokenizer recognises only there, so a label may itself be called `contains` or `in`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    And,
    Or,
    Not,
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Global,
    Has(String),
    Label(String),
    Str(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::LBrace => f.write_str("'{'"),
            Tok::RBrace => f.write_str("'}'"),
            Tok::Comma => f.write_str("','"),
            Tok::And => f.write_str("'&&'"),
            Tok::Or => f.write_str("'||'"),
            Tok::Not => f.write_str("'!'"),
            Tok::Eq => f.write_str("'=='"),
            Tok::Ne => f.write_str("'!='"),
            Tok::In => f.write_str("'in'"),
            Tok::NotIn => f.write_str("'not in'"),
            Tok::Contains => f.write_str("'contains'"),
            Tok::StartsWith => f.write_str("'starts with'"),
            Tok::EndsWith => f.write_str("'ends with'"),
            Tok::All => f.write_str("'all()'"),
            Tok::Global => f.write_str("'global()'"),
            Tok::Has(k) => write!(f, "'has({k})'"),
            Tok::Label(s) => write!(f, "label {s:?}"),
            Tok::Str(s) => write!(f, "string {s:?}"),
        }
    }
}

/// Longest label Calico's tokenizer accepts (`tokenizer.go` `MaxLabelLength`).
pub(crate) const MAX_LABEL_LENGTH: usize = 512;

/// `identifierChar` in `tokenizer.go`: ASCII letters, digits, `_`, `.`, `/` and `-`.
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

/// Calico trims only spaces and tabs (`trimWhitespace`): a newline is an error.
fn trim_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// `isWordBoundary`: the end, or a character that cannot continue a label.
fn word_boundary(rest: &str) -> bool {
    rest.bytes().next().is_none_or(|c| !is_key_char(c))
}

/// `cutPrefixCheckBreak`.
fn cut_word<'a>(input: &'a str, word: &str) -> Option<&'a str> {
    input.strip_prefix(word).filter(|rest| word_boundary(rest))
}

/// `cutMultiWordPrefixCheckBreak`: the words may be separated by any run of spaces and tabs,
/// including none (`notin`, `startswith`, `endswith` are accepted as one word); only the last
/// word needs a boundary after it.
fn cut_words<'a>(input: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = input;
    for w in words {
        rest = trim_ws(rest.strip_prefix(w)?);
    }
    word_boundary(rest).then_some(rest)
}

/// `cutIdentifier`: a non-empty run of label characters, at most [`MAX_LABEL_LENGTH`].
fn cut_ident(input: &str) -> Result<(String, &str), String> {
    let end = input
        .bytes()
        .position(|c| !is_key_char(c))
        .unwrap_or(input.len());
    let (ident, rest) = input.split_at(end);
    if ident.is_empty() {
        let what = rest
            .chars()
            .next()
            .map_or_else(|| "the end".to_string(), |c| format!("{c:?}"));
        return Err(format!("expected a label, found {what}"));
    }
    if ident.len() > MAX_LABEL_LENGTH {
        return Err(format!(
            "label of {} characters; Calico allows at most {MAX_LABEL_LENGTH}",
            ident.len()
        ));
    }
    Ok((ident.to_string(), rest))
}

/// A call such as `all(` / `global(`: spaces may precede the `)`.
fn close_call<'a>(input: &'a str, name: &str) -> Result<&'a str, String> {
    trim_ws(input)
        .strip_prefix(')')
        .ok_or_else(|| format!("no closing ')' after {name}("))
}

/// Calico's tokenizer (projectcalico/calico `libcalico-go/lib/selector/tokenizer/tokenizer.go`
/// `AppendTokens`, lines 68-205 @ 87c15906).
fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut input = s;
    loop {
        input = trim_ws(input);
        let Some(c) = input.bytes().next() else {
            return Ok(out);
        };
        let last_is_label = matches!(out.last(), Some(Tok::Label(_)));
        let simple = match c {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = simple {
            out.push(t);
            input = &input[1..];
            continue;
        }
        match c {
            b'"' | b'\'' => {
                let body = &input[1..];
                let end = body
                    .find(c as char)
                    .ok_or_else(|| "unterminated string".to_string())?;
                out.push(Tok::Str(body[..end].to_string()));
                input = &body[end + 1..];
            }
            b'=' => {
                input = input.strip_prefix("==").ok_or("expected ==")?;
                out.push(Tok::Eq);
            }
            b'!' => match input.strip_prefix("!=") {
                Some(rest) => {
                    out.push(Tok::Ne);
                    input = rest;
                }
                None => {
                    out.push(Tok::Not);
                    input = &input[1..];
                }
            },
            b'&' => {
                input = input.strip_prefix("&&").ok_or("expected &&")?;
                out.push(Tok::And);
            }
            b'|' => {
                input = input.strip_prefix("||").ok_or("expected ||")?;
                out.push(Tok::Or);
            }
            _ if last_is_label => {
                let ops: [(&[&str], Tok); 5] = [
                    (&["contains"], Tok::Contains),
                    (&["starts", "with"], Tok::StartsWith),
                    (&["ends", "with"], Tok::EndsWith),
                    (&["not", "in"], Tok::NotIn),
                    (&["in"], Tok::In),
                ];
                let found = ops.into_iter().find_map(|(words, tok)| {
                    let rest = match words {
                        [w] => cut_word(input, w),
                        _ => cut_words(input, words),
                    };
                    rest.map(|r| (r, tok))
                });
                let Some((rest, tok)) = found else {
                    let label = match out.last() {
                        Some(Tok::Label(l)) => l.as_str(),
                        _ => "",
                    };
                    return Err(format!(
                        "expected an operator after label {label:?} (==, !=, in, not in, \
                         contains, starts with or ends with)"
                    ));
                };
                out.push(tok);
                input = rest;
            }
            _ => {
                if let Some(rest) = input.strip_prefix("has(") {
                    let (ident, rest) = cut_ident(trim_ws(rest))?;
                    input = trim_ws(rest)
                        .strip_prefix(')')
                        .ok_or("no closing ')' after has(")?;
                    out.push(Tok::Has(ident));
                } else if let Some(rest) = input.strip_prefix("all(") {
                    input = close_call(rest, "all")?;
                    out.push(Tok::All);
                } else if let Some(rest) = input.strip_prefix("global(") {
                    input = close_call(rest, "global")?;
                    out.push(Tok::Global);
                } else {
                    let (ident, rest) = cut_ident(input)?;
                    out.push(Tok::Label(ident));
                    input = rest;
                }
            }
        }
    }
}

/// Calico's parser (`libcalico-go/lib/selector/parser/parser.go`, `parseOrExpression`,
/// `parseAndExpression`, `parseOperation`, lines 125-400 @ 87c15906): `||` of `&&` of
/// operations; an operation is any number of `!` (collapsed) before `has(k)`, `all()`,
/// `global()`, a parenthesised expression, or a label, an operator and a string (or, for `in`
/// / `not in`, a set of strings that may be empty and may end with a comma).
struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<CalicoSelector, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
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
        let mut parts = vec![self.operation()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            parts.push(self.operation()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            CalicoSelector::And(parts)
        })
    }

    fn string(&mut self, after: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            Some(t) => Err(format!("expected a quoted string after {after}, found {t}")),
            None => Err(format!(
                "expected a quoted string after {after}, found the end"
            )),
        }
    }

    fn set(&mut self) -> Result<BTreeSet<String>, String> {
        match self.next() {
            Some(Tok::LBrace) => {}
            Some(t) => return Err(format!("expected a set literal '{{...}}', found {t}")),
            None => return Err("expected a set literal '{...}', found the end".into()),
        }
        let mut out = BTreeSet::new();
        while let Some(Tok::Str(s)) = self.peek() {
            out.insert(s.clone());
            self.pos += 1;
            if self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
            } else {
                break;
            }
        }
        match self.next() {
            Some(Tok::RBrace) => Ok(out),
            Some(t) => Err(format!("expected '}}', found {t}")),
            None => Err("expected '}', found the end".into()),
        }
    }

    fn operation(&mut self) -> Result<CalicoSelector, String> {
        let mut negated = false;
        while self.peek() == Some(&Tok::Not) {
            negated = !negated;
            self.pos += 1;
        }
        let e = match self.next() {
            Some(Tok::Has(k)) => CalicoSelector::Has(k),
            Some(Tok::All) => CalicoSelector::All,
            Some(Tok::Global) => CalicoSelector::Global,
            Some(Tok::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => e,
                    Some(t) => return Err(format!("expected ')', found {t}")),
                    None => return Err("expected ')', found the end".into()),
                }
            }
            Some(Tok::Label(key)) => self.comparison(key)?,
            Some(t) => return Err(format!("expected a selector term, found {t}")),
            None => return Err("expected a selector term, found the end".into()),
        };
        Ok(if negated {
            CalicoSelector::Not(Box::new(e))
        } else {
            e
        })
    }

    fn comparison(&mut self, key: String) -> Result<CalicoSelector, String> {
        let op = self.next();
        let after = match &op {
            Some(t) => t.to_string(),
            None => String::new(),
        };
        Ok(match op {
            Some(Tok::Eq) => CalicoSelector::Eq(key, self.string(&after)?),
            Some(Tok::Ne) => CalicoSelector::Ne(key, self.string(&after)?),
            Some(Tok::Contains) => CalicoSelector::Contains(key, self.string(&after)?),
            Some(Tok::StartsWith) => CalicoSelector::StartsWith(key, self.string(&after)?),
            Some(Tok::EndsWith) => CalicoSelector::EndsWith(key, self.string(&after)?),
            Some(Tok::In) => CalicoSelector::In(key, self.set()?),
            Some(Tok::NotIn) => CalicoSelector::NotIn(key, self.set()?),
            Some(t) => {
                return Err(format!(
                    "expected an operator after label {key:?}, found {t}"
                ))
            }
            None => {
                return Err(format!(
                    "expected an operator after label {key:?}, found the end"
                ))
            }
        })
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
            Some(t) => Err(format!(
                "unexpected {t} after a complete selector{}",
                if p.toks.len() > p.pos + 1 {
                    " (and more)"
                } else {
                    ""
                }
            )),
        }
    }

    /// Whether `global()` appears anywhere in the selector (Calico allows it only as the whole
    /// of an entity rule's `namespaceSelector`).
    pub fn mentions_global(&self) -> bool {
        match self {
            CalicoSelector::Global => true,
            CalicoSelector::Not(e) => e.mentions_global(),
            CalicoSelector::And(es) | CalicoSelector::Or(es) => {
                es.iter().any(CalicoSelector::mentions_global)
            }
            _ => false,
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
        assert!(
            err.contains("expected an operator after label \"app\""),
            "{err}"
        );
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

    // ---- Calico's own tables, transcribed (projectcalico/calico @ 87c15906) ----

    type Labels<'a> = &'a [(&'a str, &'a str)];

    /// `libcalico-go/lib/selector/parser/parser_test.go` `selectorTests` (lines 32-170):
    /// selector, label sets it matches, label sets it does not. The `global()` rows are in
    /// `calico_global_parses` (Calico evaluates `global()` as true on bare labels; the engine
    /// evaluates pods, which it never selects).
    const PARSER_CASES: &[(&str, &[Labels], &[Labels])] = &[
        (
            r#"a == "b""#,
            &[&[("a", "b")], &[("a", "b"), ("c", "d")]],
            &[&[], &[("a", "c")], &[("c", "d")]],
        ),
        (
            r#"a == "b" && c == "d""#,
            &[&[("a", "b"), ("c", "d")]],
            &[
                &[],
                &[("a", "b"), ("c", "e")],
                &[("a", "c"), ("c", "d")],
                &[("c", "d")],
                &[("a", "b")],
            ],
        ),
        (
            r#"a == "b" || c == "d""#,
            &[&[("a", "b"), ("c", "d")], &[("a", "b")], &[("c", "d")]],
            &[&[], &[("a", "e"), ("c", "e")], &[("c", "e")], &[("a", "e")]],
        ),
        (
            r#"a in {"'", '"', "c"}"#,
            &[&[("a", "c")], &[("a", "\"")], &[("a", "'")]],
            &[&[], &[("a", "e")]],
        ),
        (
            r#"a not in {"'", '"', "c"}"#,
            &[&[], &[("a", "e")]],
            &[&[("a", "c")], &[("a", "\"")], &[("a", "'")]],
        ),
        ("a == 'a'", &[&[("a", "a")]], &[]),
        (r#"a == "a""#, &[&[("a", "a")]], &[]),
        (r#"a != "b""#, &[&[("a", "a")]], &[]),
        (r#"a != "a""#, &[&[]], &[]),
        (
            r#"a contains "a""#,
            &[&[("a", "a")], &[("a", "bab")], &[("a", "aaa"), ("b", "c")]],
            &[&[], &[("a", "b")], &[("b", "aaa")]],
        ),
        (
            r#"a starts with "a""#,
            &[&[("a", "a")], &[("a", "abb")], &[("a", "aaa"), ("b", "c")]],
            &[&[], &[("a", "b")], &[("a", "baa")], &[("b", "aaa")]],
        ),
        (
            r#"a ends with "a""#,
            &[&[("a", "a")], &[("a", "bba")], &[("a", "aaa"), ("b", "c")]],
            &[&[], &[("a", "b")], &[("a", "aab")], &[("b", "aaa")]],
        ),
        (r#"a in {"a"}"#, &[&[("a", "a")]], &[]),
        (r#"!a in {"a"}"#, &[&[("a", "b")]], &[]),
        (r#"a in {"a", "b"}"#, &[&[("a", "a")], &[("a", "b")]], &[]),
        (r#"a not in {"d", "e"}"#, &[&[("a", "a")]], &[]),
        ("has(a)", &[&[("a", "b")]], &[]),
        ("!has(a)", &[&[("b", "b")]], &[]),
        ("", &[&[], &[("a", "b")]], &[]),
        (" ", &[&[]], &[]),
        ("all()", &[&[]], &[]),
        (" all()", &[&[], &[("a", "b")]], &[]),
        ("a == 'a'", &[], &[&[("a", "b")], &[]]),
        (r#"a != "a""#, &[], &[&[("a", "a")]]),
        ("a != 'a'", &[], &[&[("a", "a")]]),
        (r#"a in {"a"}"#, &[], &[&[("a", "b")]]),
        (r#"a not in {"a"}"#, &[], &[&[("a", "a")]]),
        (r#"a in {"a", "b"}"#, &[], &[&[("a", "c")]]),
        ("has(b)", &[], &[&[("a", "b")]]),
        ("!!has(b)", &[], &[&[("a", "b")]]),
        ("! has(a)", &[], &[&[("a", "b")]]),
        ("!has(a)", &[], &[&[("a", "b")]]),
        ("!!! has(a)", &[], &[&[("a", "b")]]),
        ("!!!has(a)", &[], &[&[("a", "b")]]),
        ("!! ! has(a)", &[], &[&[("a", "b")]]),
        ("! !!has(a)", &[], &[&[("a", "b")]]),
        (
            "a == 'a1' && b == 'b1'",
            &[&[("a", "a1"), ("b", "b1")]],
            &[],
        ),
        (
            "a == 'a1' && b != 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
        (
            "a != 'a1' && b == 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
        (
            "a != 'a1' && b != 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
        (
            "a != 'a1' && !b == 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
        (
            "!a == 'a1' && b == 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
        ("has(a) && !has(b)", &[&[("a", "a")]], &[]),
        ("!has(b) && has(a)", &[&[("a", "a")]], &[]),
        ("!(!has(a) || has(b))", &[&[("a", "a")]], &[]),
        ("!(has(b) || !has(a))", &[&[("a", "a")]], &[]),
        (
            "a == 'a1' || b == 'b1'",
            &[&[("a", "a1"), ("b", "b1")]],
            &[],
        ),
        (
            "a == 'a1' || b != 'b1'",
            &[&[("a", "a1"), ("b", "b1")]],
            &[],
        ),
        (
            "a != 'a1' || b == 'b1'",
            &[&[("a", "a1"), ("b", "b1")]],
            &[],
        ),
        (
            "a != 'a1' || b != 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
        (
            "! a == 'a1' || ! b == 'b1'",
            &[],
            &[&[("a", "a1"), ("b", "b1")]],
        ),
    ];

    #[test]
    fn calico_parser_table() {
        for (sel, yes, no) in PARSER_CASES {
            let parsed = CalicoSelector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
            for l in *yes {
                assert!(parsed.matches(&labels(l)), "{sel:?} should match {l:?}");
            }
            for l in *no {
                assert!(
                    !parsed.matches(&labels(l)),
                    "{sel:?} should not match {l:?}"
                );
            }
        }
    }

    #[test]
    fn calico_global_parses() {
        for sel in ["global()", " global()", "global( )"] {
            let parsed = CalicoSelector::parse(sel).unwrap();
            assert_eq!(parsed, CalicoSelector::Global);
            assert!(parsed.mentions_global());
            assert!(!parsed.matches(&labels(&[("a", "b")])));
        }
        assert!(CalicoSelector::parse("!global() && all()")
            .unwrap()
            .mentions_global());
        // A string that spells it is not a use of it.
        assert!(!CalicoSelector::parse("a == 'global()'")
            .unwrap()
            .mentions_global());
    }

    /// `parser_test.go` `badSelectors` (lines 172-199) and the error rows of
    /// `tokenizer/tokenizer_test.go` `tokenTests` (lines 150-165), with what else Calico's
    /// tokenizer refuses: a newline, a space before `(` in `has (`, a non-ASCII label.
    #[test]
    fn calico_refuses_what_calico_refuses() {
        let long = format!("{} == \"value\"", "a".repeat(513));
        let mut bad: Vec<&str> = vec![
            // parser_test.go
            "b == b",
            "b contains b",
            "b starts with b",
            "b ends with b",
            "'b1' == b",
            "b",
            "a b",
            "!",
            r#"foo == "bar" &"#,
            r#"foo == "bar" |"#,
            "foo != ||",
            r#"foo in {"", ||"#,
            r#"foo in """#,
            r#""FOO"#,
            r#""FOO'"#,
            "'FOO",
            "(",
            r#"(a == "foo""#,
            ")",
            "()",
            "%",
            r#"a == "b" && %"#,
            r#"a == "b" || %"#,
            "a ",
            "has(foo) &&",
            // tokenizer_test.go
            r#"label == "value"#,
            "label == 'value",
            r#"label = "value""#,
            "all(",
            "global(",
            "has()",
            "has(foo",
            "has( foo ",
            r#"a == "b" & has(foo)"#,
            r#"a == "b" | has(foo)"#,
            r#"label starts foo "value""#,
            r#"label inf "value""#,
            r#"label ends foo "value""#,
            r#"label ends withs "value""#,
            r#"label squiggles "value""#,
            // the tokenizer's other refusals
            "a == 'b'\n&& c == 'd'",
            "has (a)",
            "é == 'x'",
            "a in {,}",
            "a in {'x' 'y'}",
            "a containsx 'b'",
        ];
        bad.push(&long);
        for sel in bad {
            assert!(
                CalicoSelector::parse(sel).is_err(),
                "{sel:?} should be refused"
            );
        }
    }

    /// `tokenizer_test.go` `tokenTests` (lines 27-290): the accepted inputs and their tokens.
    #[test]
    fn calico_tokenizer_table() {
        use Tok::*;
        let l = |s: &str| Label(s.to_string());
        let st = |s: &str| Str(s.to_string());
        let h = |s: &str| Has(s.to_string());
        let a512 = "a".repeat(512);
        let long = format!("{a512} == \"value\"");
        let cases: Vec<(&str, Vec<Tok>)> = vec![
            (r#"a=="b""#, vec![l("a"), Eq, st("b")]),
            (r#"a!="b""#, vec![l("a"), Ne, st("b")]),
            (r#"a != "b""#, vec![l("a"), Ne, st("b")]),
            (r#"(a=="b")"#, vec![LParen, l("a"), Eq, st("b"), RParen]),
            (r#"label == "value""#, vec![l("label"), Eq, st("value")]),
            (
                r#"label contains "value""#,
                vec![l("label"), Contains, st("value")],
            ),
            (
                r#"contains contains "contains""#,
                vec![l("contains"), Contains, st("contains")],
            ),
            (
                "contains contains 'contains'",
                vec![l("contains"), Contains, st("contains")],
            ),
            (
                r#"label contains"value""#,
                vec![l("label"), Contains, st("value")],
            ),
            (
                r#"label startswith "value""#,
                vec![l("label"), StartsWith, st("value")],
            ),
            (
                r#"label endswith "value""#,
                vec![l("label"), EndsWith, st("value")],
            ),
            (
                r#"label starts with "value""#,
                vec![l("label"), StartsWith, st("value")],
            ),
            (
                r#"startswith starts with "value""#,
                vec![l("startswith"), StartsWith, st("value")],
            ),
            (
                r#"label ends with "value""#,
                vec![l("label"), EndsWith, st("value")],
            ),
            (
                r#"endswith ends with "value""#,
                vec![l("endswith"), EndsWith, st("value")],
            ),
            (
                r#"label starts  with "value""#,
                vec![l("label"), StartsWith, st("value")],
            ),
            (
                r#"label ends  with "value""#,
                vec![l("label"), EndsWith, st("value")],
            ),
            (&long, vec![l(&a512), Eq, st("value")]),
            (
                r#"a not in "bar" && !has(foo) || b in c"#,
                vec![
                    l("a"),
                    NotIn,
                    st("bar"),
                    And,
                    Not,
                    h("foo"),
                    Or,
                    l("b"),
                    In,
                    l("c"),
                ],
            ),
            ("has(calico/k8s_ns)", vec![h("calico/k8s_ns")]),
            ("has(calico/k8s_ns/role)", vec![h("calico/k8s_ns/role")]),
            (
                "has(calico/k8s_NS-.1/role)",
                vec![h("calico/k8s_NS-.1/role")],
            ),
            (
                r#"calico/k8s_ns == "kube-system" && k8s-app == "kube-dns""#,
                vec![
                    l("calico/k8s_ns"),
                    Eq,
                    st("kube-system"),
                    And,
                    l("k8s-app"),
                    Eq,
                    st("kube-dns"),
                ],
            ),
            (
                r#"a  not  in  "bar"  &&  ! has( foo )  ||  b  in  c "#,
                vec![
                    l("a"),
                    NotIn,
                    st("bar"),
                    And,
                    Not,
                    h("foo"),
                    Or,
                    l("b"),
                    In,
                    l("c"),
                ],
            ),
            (
                r#"a notin"bar"&&!has(foo)||b in"c""#,
                vec![
                    l("a"),
                    NotIn,
                    st("bar"),
                    And,
                    Not,
                    h("foo"),
                    Or,
                    l("b"),
                    In,
                    st("c"),
                ],
            ),
            ("a not in {}", vec![l("a"), NotIn, LBrace, RBrace]),
            (
                r#"a not in {"a"}"#,
                vec![l("a"), NotIn, LBrace, st("a"), RBrace],
            ),
            (
                r#"a not in {"a","B"}"#,
                vec![l("a"), NotIn, LBrace, st("a"), Comma, st("B"), RBrace],
            ),
            ("global()", vec![Global]),
            ("global( )", vec![Global]),
            ("all()", vec![All]),
            ("all( )", vec![All]),
        ];
        for (input, want) in cases {
            assert_eq!(tokenize(input).as_ref(), Ok(&want), "{input:?}");
        }
    }

    /// `parser_test.go` `canonicalisationTests` (lines 201-220): each input parses to what
    /// its canonical form parses to (the one-word and spacing variants included).
    #[test]
    fn calico_canonical_forms() {
        for (input, canon) in [
            ("", "all()"),
            (" all() ", "all()"),
            (" (all() )", "all()"),
            ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
            (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
            (r#"a == "'""#, r#"a == "'""#),
            (r#"a contains '"'"#, r#"a contains '"'"#),
            (r#"a startswith '"'"#, r#"a starts with '"'"#),
            (r#"a endswith "'""#, r#"a ends with "'""#),
            (r#"a!='"'"#, r#"a != '"'"#),
            (
                r#"a in {"z", "z", "x", "y", "x", "a"}"#,
                r#"a in {"a", "x", "y", "z"}"#,
            ),
            ("a notin {'x',}", "a not in {'x'}"),
        ] {
            let got = CalicoSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(got, CalicoSelector::parse(canon).unwrap(), "{input:?}");
        }
    }
}
