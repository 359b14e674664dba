//! Reading `serde_json::Value` objects with a field path in every error.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde_json::{Map, Value};

use super::error::EngineError;

/// Which object is being read, for error messages.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// 1-based document number.
    pub document: usize,
    /// `Kind namespace/name`.
    pub object: String,
}

/// `path.key` (or `key` at the root).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn at(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A field of an object; JSON `null` counts as absent.
pub(crate) fn get<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Ctx {
    /// An error at `path`.
    pub fn err(&self, path: &str, message: impl Display) -> EngineError {
        EngineError::Field {
            document: self.document,
            object: self.object.clone(),
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    /// `v` as an object.
    pub fn obj<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, EngineError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected an object, got {}", type_name(v))))
    }

    /// `v` as a list.
    pub fn list<'v>(&self, v: &'v Value, path: &str) -> Result<&'v [Value], EngineError> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.err(path, format!("expected a list, got {}", type_name(v))))
    }

    /// `v` as a string.
    pub fn str<'v>(&self, v: &'v Value, path: &str) -> Result<&'v str, EngineError> {
        v.as_str()
            .ok_or_else(|| self.err(path, format!("expected a string, got {}", type_name(v))))
    }

    /// An optional object field.
    pub fn opt_obj<'v>(
        &self,
        m: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'v Map<String, Value>>, EngineError> {
        get(m, key)
            .map(|v| self.obj(v, &join(path, key)))
            .transpose()
    }

    /// An optional list field.
    pub fn opt_list<'v>(
        &self,
        m: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'v [Value]>, EngineError> {
        get(m, key)
            .map(|v| self.list(v, &join(path, key)))
            .transpose()
    }

    /// An optional string field.
    pub fn opt_str<'v>(
        &self,
        m: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'v str>, EngineError> {
        get(m, key)
            .map(|v| self.str(v, &join(path, key)))
            .transpose()
    }

    /// An optional boolean field.
    pub fn opt_bool(
        &self,
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<bool>, EngineError> {
        get(m, key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    self.err(
                        &join(path, key),
                        format!("expected a boolean, got {}", type_name(v)),
                    )
                })
            })
            .transpose()
    }

    /// A list of strings.
    pub fn strings(&self, v: &Value, path: &str) -> Result<Vec<String>, EngineError> {
        self.list(v, path)?
            .iter()
            .enumerate()
            .map(|(i, s)| self.str(s, &at(path, i)).map(str::to_string))
            .collect()
    }

    /// An optional list-of-strings field (absent: empty).
    pub fn opt_strings(
        &self,
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Vec<String>, EngineError> {
        match get(m, key) {
            Some(v) => self.strings(v, &join(path, key)),
            None => Ok(Vec::new()),
        }
    }

    /// A map of strings to strings (labels, matchLabels).
    pub fn string_map(
        &self,
        v: &Value,
        path: &str,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        self.obj(v, path)?
            .iter()
            .map(|(k, val)| {
                let s = self.str(val, &join(path, k))?;
                Ok((k.clone(), s.to_string()))
            })
            .collect()
    }

    /// An unsigned integer that fits in `max`.
    pub fn uint(&self, v: &Value, path: &str, max: u64) -> Result<u64, EngineError> {
        match v.as_u64() {
            Some(n) if n <= max => Ok(n),
            Some(n) => Err(self.err(path, format!("{n} is out of range (at most {max})"))),
            None => Err(self.err(
                path,
                format!("expected a non-negative integer, got {}", type_name(v)),
            )),
        }
    }
}
