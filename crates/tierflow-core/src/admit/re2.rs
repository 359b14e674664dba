//! Go regular expression syntax (RE2, as `regexp.Compile` reads it), for Cilium's HTTP rules.
//!
//! Cilium compiles `path` and `method` of an HTTP rule with Go's `regexp.Compile`
//! (cilium/cilium `pkg/policy/api/http.go`, `PortRuleHTTP.Sanitize`, commit
//! dcf50aef0db1b40b851b2701f1b6d955c7f945f7, lines 113-127); a rule that does not compile makes
//! the whole policy invalid. [`check`] accepts what Go's parser (`regexp/syntax`, Perl flags)
//! accepts and refuses what it refuses, with Go's error wording:
//! - a repetition operator (`*`, `+`, `?`, `{n,m}`) with nothing to repeat (a glob such as `*.js`)
//!   or applied to another repetition (`**`, `a+*`, `a{2}{3}`; `a*?` is the lazy form);
//! - repeat counts above 1000, or `{n,m}` with `m < n`; a `{` that does not form a count is a
//!   literal;
//! - groups: `(?:`, `(?flags)`, `(?flags:` with flags from `imsU` and one `-`, named groups
//!   `(?P<name>` and `(?<name>` with word-character names used once; look-arounds `(?=` `(?!`
//!   `(?<=` `(?<!` and any other `(?` form are refused, as are unbalanced parentheses;
//! - escapes: `\a \f \n \r \t \v`, octal `\0`.. and `\1`.. followed by an octal digit, `\x`
//!   hex, `\A \z \b \B` (not in a class), `\d \D \s \S \w \W`, `\pX \p{Name}`, `\Q...\E`, `\C`,
//!   and a backslash before ASCII punctuation; a back-reference `\1` and every other letter are
//!   refused;
//! - classes: `[...]` with ranges in order, `[:alpha:]` POSIX names, a leading `]` literal;
//! - nesting deeper than 1000.
//!
//! Unicode class names are checked against the general categories and a list of common
//! scripts; a script name missing from that list is refused (the policy is held with the
//! reason rather than risk an invalid one).

/// Why Go would refuse `re` (`None`: it compiles).
pub fn check(re: &str) -> Option<String> {
    Parser {
        s: re.chars().collect(),
        i: 0,
        names: Vec::new(),
    }
    .parse()
    .err()
    .map(|e| format!("error parsing regexp: {e}: `{re}`"))
}

const MAX_REPEAT: u32 = 1000;
const MAX_DEPTH: usize = 1000;

const POSIX: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

const UNICODE: [&str; 60] = [
    "Any",
    "C",
    "Cc",
    "Cf",
    "Co",
    "Cs",
    "L",
    "Ll",
    "Lm",
    "Lo",
    "Lt",
    "Lu",
    "M",
    "Mc",
    "Me",
    "Mn",
    "N",
    "Nd",
    "Nl",
    "No",
    "P",
    "Pc",
    "Pd",
    "Pe",
    "Pf",
    "Pi",
    "Po",
    "Ps",
    "S",
    "Sc",
    "Sk",
    "Sm",
    "So",
    "Z",
    "Zl",
    "Zp",
    "Zs",
    "Arabic",
    "Armenian",
    "Bengali",
    "Common",
    "Cyrillic",
    "Devanagari",
    "Georgian",
    "Greek",
    "Gujarati",
    "Han",
    "Hangul",
    "Hebrew",
    "Hiragana",
    "Inherited",
    "Kannada",
    "Katakana",
    "Khmer",
    "Latin",
    "Tamil",
    "Telugu",
    "Thai",
    "Tibetan",
    "Lao",
];

/// What was parsed last in the current concatenation, for the repetition rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing (start, after `(` or `|`): a repetition here has no argument.
    Nothing,
    /// An atom that can be repeated.
    Atom,
    /// A repetition: another one directly after it is nested.
    Repeat,
}

struct Parser {
    s: Vec<char>,
    i: usize,
    names: Vec<String>,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn rest(&self) -> String {
        self.s[self.i..].iter().collect()
    }

    fn parse(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        let mut last = Last::Nothing;
        while let Some(c) = self.peek() {
            match c {
                '(' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err("expression nests too deeply".into());
                    }
                    if self.s.get(self.i + 1) == Some(&'?') {
                        if self.group_flags()? {
                            // `(?flags)`: no group opened.
                            depth -= 1;
                            last = if last == Last::Nothing {
                                Last::Nothing
                            } else {
                                Last::Atom
                            };
                            continue;
                        }
                    } else {
                        self.i += 1;
                    }
                    last = Last::Nothing;
                }
                ')' => {
                    if depth == 0 {
                        return Err(format!(
                            "unexpected ): `{}`",
                            self.s.iter().collect::<String>()
                        ));
                    }
                    depth -= 1;
                    self.i += 1;
                    last = Last::Atom;
                }
                '|' => {
                    self.i += 1;
                    last = Last::Nothing;
                }
                '*' | '+' | '?' => {
                    let op_start = self.i;
                    self.i += 1;
                    // A lazy `?` belongs to the operator.
                    if self.peek() == Some('?') {
                        self.i += 1;
                    }
                    let op: String = self.s[op_start..self.i].iter().collect();
                    repeat(last, &op)?;
                    last = Last::Repeat;
                }
                '{' => match self.count()? {
                    Some(end) => {
                        let op: String = self.s[self.i..end].iter().collect();
                        self.i = end;
                        if self.peek() == Some('?') {
                            self.i += 1;
                        }
                        repeat(last, &op)?;
                        last = Last::Repeat;
                    }
                    None => {
                        // Not a count: a literal `{`.
                        self.i += 1;
                        last = Last::Atom;
                    }
                },
                '[' => {
                    self.class()?;
                    last = Last::Atom;
                }
                '\\' => {
                    self.escape(false)?;
                    last = Last::Atom;
                }
                _ => {
                    self.i += 1;
                    last = Last::Atom;
                }
            }
        }
        if depth > 0 {
            return Err(format!(
                "missing closing ): `{}`",
                self.s.iter().collect::<String>()
            ));
        }
        Ok(())
    }

    /// At `(?`: a flag group. Returns `true` for `(?flags)` (consumed), `false` when a group was
    /// opened (`(?:`, `(?flags:`, a named group).
    fn group_flags(&mut self) -> Result<bool, String> {
        let start = self.i;
        self.i += 2;
        let rest = self.rest();
        for prefix in ["P<", "<"] {
            if let Some(tail) = rest.strip_prefix(prefix) {
                if prefix == "<" && (tail.starts_with('=') || tail.starts_with('!')) {
                    break;
                }
                let Some(end) = tail.find('>') else {
                    return Err(format!("invalid named capture: `{}`", self.from(start)));
                };
                let name = &tail[..end];
                let whole: String = format!("(?{prefix}{name}>");
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("invalid named capture: `{whole}`"));
                }
                if self.names.iter().any(|n| n == name) {
                    return Err(format!("duplicate capture group name: `{whole}`"));
                }
                self.names.push(name.to_string());
                self.i += prefix.chars().count() + name.chars().count() + 1;
                return Ok(false);
            }
        }
        // Flags: `[imsU]*(-[imsU]+)?` then `)` or `:`.
        let mut seen_flag = false;
        let mut negated = false;
        let mut after_minus = false;
        while let Some(c) = self.peek() {
            match c {
                'i' | 'm' | 's' | 'U' => {
                    seen_flag = true;
                    after_minus = false;
                    self.i += 1;
                }
                '-' if !negated => {
                    negated = true;
                    after_minus = true;
                    self.i += 1;
                }
                ':' | ')' if seen_flag || c == ':' => {
                    if after_minus {
                        break;
                    }
                    if c == ':' && negated && !seen_flag {
                        break;
                    }
                    self.i += 1;
                    return Ok(c == ')');
                }
                _ => break,
            }
        }
        Err(format!(
            "invalid or unsupported Perl syntax: `{}`",
            self.s[start..(self.i + 1).min(self.s.len())]
                .iter()
                .collect::<String>()
        ))
    }

    fn from(&self, start: usize) -> String {
        self.s[start..].iter().collect()
    }

    /// At `{`: the end (exclusive) of a repeat count `{n}`, `{n,}` or `{n,m}`, or `None` when
    /// the brace is a literal. Errors on counts Go refuses.
    fn count(&self) -> Result<Option<usize>, String> {
        let mut j = self.i + 1;
        let digits = |j: &mut usize| -> Option<u64> {
            let start = *j;
            while *j < self.s.len() && self.s[*j].is_ascii_digit() {
                *j += 1;
            }
            if *j == start {
                return None;
            }
            let text: String = self.s[start..*j].iter().collect();
            Some(text.parse::<u64>().unwrap_or(u64::MAX))
        };
        let Some(min) = digits(&mut j) else {
            return Ok(None);
        };
        let max = if self.s.get(j) == Some(&',') {
            j += 1;
            if self.s.get(j) == Some(&'}') {
                None
            } else {
                match digits(&mut j) {
                    Some(m) => Some(m),
                    None => return Ok(None),
                }
            }
        } else {
            Some(min)
        };
        if self.s.get(j) != Some(&'}') {
            return Ok(None);
        }
        let op: String = self.s[self.i..=j].iter().collect();
        if min > u64::from(MAX_REPEAT) || max.is_some_and(|m| m > u64::from(MAX_REPEAT) || m < min)
        {
            return Err(format!("invalid repeat count: `{op}`"));
        }
        Ok(Some(j + 1))
    }

    /// At `\`: one escape. In a class, the assertions are not escapes.
    fn escape(&mut self, in_class: bool) -> Result<(), String> {
        let start = self.i;
        self.i += 1;
        let Some(c) = self.peek() else {
            return Err("trailing backslash at end of expression: ``".into());
        };
        self.i += 1;
        let bad = |p: &Parser| {
            Err(format!(
                "invalid escape sequence: `{}`",
                p.s[start..p.i].iter().collect::<String>()
            ))
        };
        match c {
            'a' | 'f' | 'n' | 'r' | 't' | 'v' | 'd' | 'D' | 's' | 'S' | 'w' | 'W' => Ok(()),
            'A' | 'z' | 'b' | 'B' | 'C' if !in_class => Ok(()),
            '1'..='7' if !self.peek().is_some_and(|d| ('0'..='7').contains(&d)) => bad(self),
            '0'..='7' => {
                // Up to two more octal digits.
                for _ in 0..2 {
                    if self.peek().is_some_and(|d| ('0'..='7').contains(&d)) {
                        self.i += 1;
                    }
                }
                Ok(())
            }
            'x' => {
                if self.peek() == Some('{') {
                    self.i += 1;
                    let mut n = 0;
                    while self.peek().is_some_and(|d| d.is_ascii_hexdigit()) {
                        self.i += 1;
                        n += 1;
                    }
                    if n == 0 || self.peek() != Some('}') {
                        return bad(self);
                    }
                    self.i += 1;
                    Ok(())
                } else {
                    for _ in 0..2 {
                        if !self.peek().is_some_and(|d| d.is_ascii_hexdigit()) {
                            return bad(self);
                        }
                        self.i += 1;
                    }
                    Ok(())
                }
            }
            'p' | 'P' => {
                let name = if self.peek() == Some('{') {
                    let rest = self.rest();
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            self.from(start)
                        ));
                    };
                    self.i += rest[..=end].chars().count();
                    rest[1..end].trim_start_matches('^').to_string()
                } else {
                    match self.peek() {
                        Some(n) => {
                            self.i += 1;
                            n.to_string()
                        }
                        None => return bad(self),
                    }
                };
                if UNICODE.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "invalid character class range: `{}`",
                        self.s[start..self.i].iter().collect::<String>()
                    ))
                }
            }
            'Q' if !in_class => {
                // Literal text up to `\E` or the end.
                let rest = self.rest();
                self.i += match rest.find("\\E") {
                    Some(end) => rest[..end].chars().count() + 2,
                    None => rest.chars().count(),
                };
                Ok(())
            }
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(()),
            _ => bad(self),
        }
    }

    /// At `[`: one character class.
    fn class(&mut self) -> Result<(), String> {
        let start = self.i;
        self.i += 1;
        if self.peek() == Some('^') {
            self.i += 1;
        }
        let missing = |p: &Parser| {
            Err(format!(
                "missing closing ]: `{}`",
                p.s[start..].iter().collect::<String>()
            ))
        };
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return missing(self);
            };
            if c == ']' && !first {
                self.i += 1;
                return Ok(());
            }
            first = false;
            // POSIX class.
            if c == '[' && self.s.get(self.i + 1) == Some(&':') {
                let rest = self.rest();
                if let Some(end) = rest[2..].find(":]") {
                    let name = rest[2..2 + end].trim_start_matches('^');
                    if !POSIX.contains(&name) {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            &rest[..end + 4]
                        ));
                    }
                    self.i += rest[..end + 4].chars().count();
                    continue;
                }
            }
            let range_start = self.i;
            let lo = self.class_char()?;
            if self.peek() == Some('-') && self.s.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let hi = self.class_char()?;
                match (lo, hi) {
                    (Some(lo), Some(hi)) if hi >= lo => {}
                    _ => {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            self.s[range_start..self.i].iter().collect::<String>()
                        ))
                    }
                }
            }
        }
    }

    /// One character of a class: `Some(c)` for a single character, `None` for a class escape
    /// such as `\d` (which cannot bound a range).
    fn class_char(&mut self) -> Result<Option<char>, String> {
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        if c != '\\' {
            self.i += 1;
            return Ok(Some(c));
        }
        let start = self.i;
        self.escape(true)?;
        let text: Vec<char> = self.s[start + 1..self.i].to_vec();
        Ok(match text.as_slice() {
            ['a'] => Some('\x07'),
            ['f'] => Some('\x0c'),
            ['n'] => Some('\n'),
            ['r'] => Some('\r'),
            ['t'] => Some('\t'),
            ['v'] => Some('\x0b'),
            [c] if !c.is_ascii_alphanumeric() => Some(*c),
            ['x', ..] => {
                let hex: String = text[1..].iter().filter(|c| c.is_ascii_hexdigit()).collect();
                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
            }
            [d, ..] if d.is_ascii_digit() => {
                let oct: String = text.iter().collect();
                u32::from_str_radix(&oct, 8).ok().and_then(char::from_u32)
            }
            _ => None,
        })
    }
}

/// Go's rules for a repetition operator `op` after `last`.
fn repeat(last: Last, op: &str) -> Result<(), String> {
    match last {
        Last::Nothing => Err(format!("missing argument to repetition operator: `{op}`")),
        Last::Repeat => Err(format!("invalid nested repetition operator: `{op}`")),
        Last::Atom => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Our own table of what Go's `regexp.Compile` accepts (`true`) and refuses, written from
    /// the rules of Go's `regexp/syntax` package.
    const CASES: &[(&str, bool)] = &[
        // Paths people write.
        ("/api/.*", true),
        ("/api/v[0-9]+/users/[^/]+", true),
        ("^/static/.*\\.js$", true),
        ("/(foo|bar)/baz", true),
        ("/files/(?P<id>[0-9]+)", true),
        ("/files/(?<id>[0-9]+)", true),
        ("(?i)/API/.*", true),
        ("(?i:/api)/x", true),
        ("(?-s:a.)", true),
        ("(?U)a+", true),
        ("/a{2,3}", true),
        ("/a{2,}", true),
        ("/a{1000}", true),
        ("/a{,3}", true),
        ("/a{x}", true),
        ("{", true),
        ("a{", true),
        ("/a*?", true),
        ("/a+?b??", true),
        ("\\Q*.js\\E", true),
        ("\\x41\\x{263a}", true),
        ("\\012", true),
        ("\\0", true),
        ("\\pL\\p{Greek}\\P{Lu}\\p{^Han}", true),
        ("[[:alpha:]_-]+", true),
        ("[]a]", true),
        ("[^]a]", true),
        ("[a-]", true),
        ("[\\d\\-x]", true),
        ("\\A/x\\z", true),
        ("\\bword\\B", true),
        ("", true),
        ("()", true),
        ("a||b", true),
        ("^*", true),
        ("\\.\\-\\/\\#", true),
        // Globs and Perl-only syntax Go refuses.
        ("*.js", false),
        ("/static/*.js", true),
        ("/static/**", false),
        ("+x", false),
        ("?x", false),
        ("(*)", false),
        ("a|*", false),
        ("a**", false),
        ("a+*", false),
        ("a*??", false),
        ("a{2}{3}", false),
        ("a{2}*", false),
        ("{2}", false),
        ("a{1001}", false),
        ("a{3,2}", false),
        ("(?=x)", false),
        ("(?!x)", false),
        ("(?<=x)y", false),
        ("(?<!x)y", false),
        ("(?#comment)", false),
        ("(?P<n>a)(?P<n>b)", false),
        ("(?P<>a)", false),
        ("(?P<a-b>a)", false),
        ("(?i-)", false),
        ("(?)", false),
        ("(?x)a", false),
        ("(a)\\1", false),
        ("\\8", false),
        ("\\Z", false),
        ("\\e", false),
        ("\\h", false),
        ("\\k<n>", false),
        ("a\\", false),
        ("(a", false),
        ("a)", false),
        ("[a", false),
        ("[z-a]", false),
        ("[[:foo:]]", false),
        ("[\\b]", false),
        ("\\p{Klingon}", false),
        ("\\xZZ", false),
        ("\\x{}", false),
    ];

    #[test]
    fn go_regexp_syntax_is_accepted_and_refused_as_go_does() {
        for (re, ok) in CASES {
            assert_eq!(check(re).is_none(), *ok, "{re:?}: {:?}", check(re));
        }
    }

    #[test]
    fn refusals_name_the_go_error() {
        assert_eq!(
            check("*.js").unwrap(),
            "error parsing regexp: missing argument to repetition operator: `*`: `*.js`"
        );
        assert!(check("(?=a)")
            .unwrap()
            .contains("invalid or unsupported Perl syntax"));
        assert!(check("(a)\\1")
            .unwrap()
            .contains("invalid escape sequence: `\\1`"));
        let deep = format!("{}a{}", "(".repeat(1001), ")".repeat(1001));
        assert!(check(&deep).unwrap().contains("nests too deeply"));
    }
}
