//! A small writer of canonical JSON text: what `serde_json::to_string` gives for the same
//! `serde_json::Value` (object keys in `BTreeMap` order, serde_json's forms of strings and
//! numbers), written straight into one `String` without building the value. The caller writes
//! keys in sorted order (debug builds check it); strings are escaped as serde_json escapes them.
//!
//! Used by the standard NetworkPolicy backend ([`super::networkpolicy`]), whose objects are the
//! ones the operator writes most.

use std::fmt::Write as _;

/// The text being written.
#[derive(Debug, Default)]
pub(crate) struct Json {
    out: String,
}

impl Json {
    /// An empty text with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Json {
        Json {
            out: String::with_capacity(capacity),
        }
    }

    /// How many bytes are written so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// The text written.
    pub(crate) fn finish(self) -> String {
        self.out
    }

    /// A string.
    pub(crate) fn string(&mut self, s: &str) {
        if !needs_escape(s.as_bytes()) {
            self.out.push('"');
            self.out.push_str(s);
            self.out.push('"');
        } else {
            // serde_json's escapes (`\n`, `\u001f`, …); writing to a String cannot fail.
            self.out
                .push_str(&serde_json::to_string(s).unwrap_or_default());
        }
    }

    /// A string from its `Display` form (CIDRs), written without escaping: the form must need
    /// none (debug builds check it).
    pub(crate) fn display(&mut self, v: &impl std::fmt::Display) {
        self.out.push('"');
        let start = self.out.len();
        let _ = write!(self.out, "{v}");
        debug_assert!(self.out[start..]
            .bytes()
            .all(|b| b >= 0x20 && b != b'"' && b != b'\\'));
        self.out.push('"');
    }

    /// A network as a string, `10.0.0.0/8` (the `Display` form, written without the formatting
    /// machinery for IPv4).
    pub(crate) fn cidr(&mut self, c: &crate::core::Cidr) {
        match c.addr() {
            std::net::IpAddr::V4(a) => {
                self.out.push('"');
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.out.push('.');
                    }
                    self.u64(o.into());
                }
                self.out.push('/');
                self.u64(c.prefix_len().into());
                self.out.push('"');
            }
            std::net::IpAddr::V6(_) => self.display(c),
        }
    }

    /// An unsigned number.
    pub(crate) fn u64(&mut self, mut n: u64) {
        // Decimal digits, as serde_json (itoa) writes them, without the formatting machinery.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[at..] {
            self.out.push(char::from(d));
        }
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self, b: bool) {
        self.out.push_str(if b { "true" } else { "false" });
    }

    /// An object; `f` writes its members.
    pub(crate) fn object(&mut self, f: impl FnOnce(&mut Members<'_>)) {
        self.out.push('{');
        let mut m = Members {
            json: self,
            first: true,
            #[cfg(debug_assertions)]
            last: None,
        };
        f(&mut m);
        self.out.push('}');
    }

    /// An array; `f` writes its items.
    pub(crate) fn array(&mut self, f: impl FnOnce(&mut Items<'_>)) {
        self.out.push('[');
        let mut items = Items {
            json: self,
            first: true,
            spans: Vec::new(),
        };
        f(&mut items);
        self.out.push(']');
    }

    /// An array of strings.
    pub(crate) fn strings<'s>(&mut self, list: impl IntoIterator<Item = &'s str>) {
        self.array(|a| {
            for s in list {
                a.item().string(s);
            }
        });
    }
}

/// Whether serde_json would escape something in `s`: a control character, `"` or `\\`. Eight
/// bytes at a time (the classic "has a byte less than / equal to" bit tricks: exact for a yes or
/// no answer).
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let x = u64::from_ne_bytes(b);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
        if control
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The members of an object being written.
pub(crate) struct Members<'a> {
    json: &'a mut Json,
    first: bool,
    #[cfg(debug_assertions)]
    last: Option<String>,
}

impl Members<'_> {
    /// Starts the member `key`, a name in the code (never escaped: debug builds check it
    /// needs no escaping); write its value into what this returns. Keys come in sorted order.
    pub(crate) fn key(&mut self, key: &'static str) -> &mut Json {
        debug_assert!(!needs_escape(key.as_bytes()), "{key:?}");
        self.start(key);
        self.json.out.push('"');
        self.json.out.push_str(key);
        self.json.out.push_str("\":");
        self.json
    }

    /// Starts the member `key`, a name from the input (escaped as needed); write its value into
    /// what this returns. Keys come in sorted order.
    pub(crate) fn key_text(&mut self, key: &str) -> &mut Json {
        self.start(key);
        self.json.string(key);
        self.json.out.push(':');
        self.json
    }

    fn start(&mut self, key: &str) {
        // Release builds do not check the order (the golden and canonical-text tests do).
        #[cfg(not(debug_assertions))]
        let _ = key;
        #[cfg(debug_assertions)]
        {
            debug_assert!(
                self.last.as_deref().is_none_or(|l| l < key),
                "JSON keys out of order: {:?} before {key:?}",
                self.last
            );
            self.last = Some(key.to_string());
        }
        if !self.first {
            self.json.out.push(',');
        }
        self.first = false;
    }

    /// The member `key` holding an array that `f` writes, left out when `f` writes no item.
    pub(crate) fn non_empty_array(&mut self, key: &'static str, f: impl FnOnce(&mut Items<'_>)) {
        let (mark, first) = (self.json.out.len(), self.first);
        let mut empty = false;
        self.key(key).array(|a| {
            f(a);
            empty = a.first;
        });
        if empty {
            self.json.out.truncate(mark);
            self.first = first;
        }
    }
}

/// The items of an array being written.
pub(crate) struct Items<'a> {
    json: &'a mut Json,
    first: bool,
    /// Where each item's text is (for [`Items::unique`]).
    spans: Vec<(usize, usize)>,
}

impl Items<'_> {
    /// Starts the next item; write it into what this returns.
    pub(crate) fn item(&mut self) -> &mut Json {
        if !self.first {
            self.json.out.push(',');
        }
        self.first = false;
        self.json
    }

    /// Writes an item with `f` unless an item with the same text is already there (the first
    /// stays in place). Only items written this way are compared.
    pub(crate) fn unique(&mut self, f: impl FnOnce(&mut Json)) {
        let (mark, first) = (self.json.out.len(), self.first);
        let start = mark + usize::from(!first);
        f(self.item());
        let end = self.json.out.len();
        let text = &self.json.out[start..end];
        if self
            .spans
            .iter()
            .any(|&(s, e)| &self.json.out[s..e] == text)
        {
            self.json.out.truncate(mark);
            self.first = first;
        } else {
            self.spans.push((start, end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn written(f: impl FnOnce(&mut Json)) -> String {
        let mut j = Json::default();
        f(&mut j);
        j.finish()
    }

    #[test]
    fn written_text_is_what_serde_json_writes_for_the_same_value() {
        let text = written(|j| {
            j.object(|o| {
                o.key("a").u64(8080);
                o.key("b").bool(true);
                o.key("c")
                    .strings(["x", "quote \" and \\ and\nnewline \u{1f} \u{7f} é"]);
                o.key("d").object(|_| {});
                o.non_empty_array("e", |_| {});
                o.key("f").display(&"10.0.0.0/8");
                o.non_empty_array("g", |a| a.item().u64(1));
            })
        });
        let value = json!({
            "a": 8080, "b": true, "c": ["x", "quote \" and \\ and\nnewline \u{1f} \u{7f} é"],
            "d": {}, "f": "10.0.0.0/8", "g": [1],
        });
        assert_eq!(text, serde_json::to_string(&value).unwrap());
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn every_string_that_needs_escaping_is_found_wherever_the_byte_is() {
        for len in 0..20 {
            for at in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\', b'\n'] {
                    let mut b = vec![b'a'; len];
                    b[at] = special;
                    assert!(needs_escape(&b), "{b:?}");
                }
                for plain in [b' ', b'!', b'#', b'[', b']', 0x7f, 0xc3] {
                    let mut b = vec![b'a'; len];
                    b[at] = plain;
                    assert!(!needs_escape(&b), "{b:?}");
                }
            }
        }
    }

    #[test]
    fn networks_are_written_in_their_display_form() {
        for c in [
            "0.0.0.0/0",
            "10.244.0.0/16",
            "169.254.169.254/32",
            "255.1.20.3/32",
            "fd00:10:244::/56",
            "::/0",
        ] {
            let c = crate::core::Cidr::parse(c).unwrap();
            assert_eq!(written(|j| j.cidr(&c)), format!("\"{c}\""));
        }
    }

    #[test]
    fn a_repeated_unique_item_is_left_out_and_the_first_stays() {
        let text = written(|j| {
            j.array(|a| {
                for n in [3, 1, 3, 2, 1] {
                    a.unique(|j| j.object(|o| o.key("n").u64(n)));
                }
            })
        });
        assert_eq!(text, r#"[{"n":3},{"n":1},{"n":2}]"#);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of order")]
    fn keys_out_of_order_are_caught() {
        written(|j| {
            j.object(|o| {
                o.key("b").u64(1);
                o.key("a").u64(2);
            })
        });
    }
}
