//! `tierflow lint`: the [linter](crate::lint) over input files or live objects, as JSON
//! (`{"findings": [{"code", "severity", "object", "message"}]}`) or text.

use serde::Serialize;

use super::aligned;
use crate::lint::{Finding, Severity};

/// One finding as printed; `object` is `null` when the finding concerns no single object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Printed {
    /// Stable code (see `tierflow::lint::CODES`).
    pub code: &'static str,
    /// `error`, `warning` or `info`.
    pub severity: Severity,
    /// The object concerned.
    pub object: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The JSON document `lint --output json` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every finding, most severe first.
    pub findings: Vec<Printed>,
}

impl Report {
    /// The report of these findings.
    pub fn new(findings: Vec<Finding>) -> Self {
        Report {
            findings: findings
                .into_iter()
                .map(|f| Printed {
                    code: f.code,
                    severity: f.severity,
                    object: f.object,
                    message: f.message,
                })
                .collect(),
        }
    }

    /// Whether any finding has severity error (exit code 1).
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The findings as text: `severity  code  object  message`, then a count.
pub fn to_text(r: &Report) -> String {
    if r.findings.is_empty() {
        return "no findings\n".to_string();
    }
    let rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            vec![
                severity(f.severity).to_string(),
                f.code.to_string(),
                f.object.clone().unwrap_or_else(|| "-".to_string()),
                f.message.clone(),
            ]
        })
        .collect();
    let mut out = aligned(&rows);
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    out.push_str(&format!(
        "{} finding(s), {errors} error(s)\n",
        r.findings.len()
    ));
    out
}
