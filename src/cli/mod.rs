//! The offline tools behind the `tierflow` command, as library functions (so tests call them
//! directly): reading input files with file / document / field in every error ([`input`]),
//! rendering AppNetworks and ClusterBaselines ([`render`]), representative endpoints of an
//! AppNetwork ([`endpoints`]) and what its intent says about each connection between them
//! ([`intent`]), the reachability the rendered objects give ([`reach`]: `verify` and the
//! matrices), the truth table of `explain` ([`explain`]), `simulate` ([`simulate`]), `lint`
//! ([`lint`]), ClusterBaselines and guardrails in `verify` ([`verify`](mod@verify)), AppNetworks
//! suggested from observed flows and the flow audit ([`suggest`]) and reading live objects for
//! `--from-cluster` ([`cluster`]).
//!
//! Exit codes of the command: [`EXIT_OK`], [`EXIT_FINDINGS`], [`EXIT_INPUT`].

pub mod across;
pub mod cluster;
pub mod diff;
pub mod explain;
pub mod import;
pub mod input;
pub mod lint;
pub mod render;
pub mod simulate;
pub mod suggest;
pub mod verify;

use std::fmt;

use crate::core::{Port, Protocol};

pub use crate::verify::{
    reachability, verify, verify_backend, verify_in, verify_in_with, verify_objects, BackendReport,
    Difference, Matrix, Options, Representatives, Verification,
};

/// Exit code: everything is fine.
pub const EXIT_OK: u8 = 0;
/// Exit code: lint findings of severity error, or `verify` found differences.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: bad usage or bad input.
pub const EXIT_INPUT: u8 = 2;

/// One problem inside an input document: where (a field path, when known) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Field path inside the document, for example `spec.tiers[0].ports[0].port`.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A problem with one input document, located by file and 1-based document number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    /// The file (`-` is shown as `<stdin>`).
    pub file: String,
    /// 1-based document number in the file (empty documents count).
    pub document: usize,
    /// `Kind namespace/name` of the object, as far as it could be read.
    pub object: Option<String>,
    /// Every problem found (at least one).
    pub problems: Vec<Problem>,
}

impl fmt::Display for InputError {
    /// One line per problem: `file: document N (Kind ns/name): field: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: document {}", self.file, self.document)?;
            if let Some(o) = &self.object {
                write!(f, " ({o})")?;
            }
            if let Some(path) = &p.path {
                write!(f, ": {path}")?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

/// Why a command could not do its work (exit code [`EXIT_INPUT`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A problem inside an input document.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A file could not be read or is not YAML / JSON at all.
    #[error("{file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// Reading live objects from the cluster failed.
    #[error("reading the cluster: {0}")]
    Cluster(String),
    /// Output could not be produced (serialisation).
    #[error("writing the output: {0}")]
    Output(String),
}

/// Parses a port as the command line takes it: `80`, `80/TCP`, `53/udp`, `9999/SCTP`.
/// Parses a `--cluster-cidr` value (a canonical CIDR of either family).
pub fn parse_cidr(s: &str) -> Result<crate::core::Cidr, String> {
    crate::core::Cidr::parse(s).map_err(|e| e.to_string())
}

/// Parses `--cilium-identity-labels`: the Cilium agent's `labels` option (space-separated
/// `[source:][!]regex` patterns, appended to Cilium's default list).
pub fn parse_identity_labels(s: &str) -> Result<crate::engine::CiliumIdentityFilter, String> {
    crate::engine::CiliumIdentityFilter::from_labels(s).map_err(|e| e.to_string())
}

/// Parses a port given on the command line.
pub fn parse_port(s: &str) -> Result<Port, String> {
    let (number, protocol) = match s.split_once('/') {
        Some((n, p)) => (
            n,
            Protocol::parse(p)
                .ok_or_else(|| format!("{p:?} is not a protocol (TCP, UDP or SCTP)"))?,
        ),
        None => (s, Protocol::Tcp),
    };
    let number: u16 = number
        .trim()
        .parse()
        .map_err(|_| format!("{number:?} is not a port number (1-65535)"))?;
    if number == 0 {
        return Err("0 is not a port number (1-65535)".to_string());
    }
    Ok(Port::new(number, protocol))
}

/// Escapes a cell for a Markdown table.
pub(crate) fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Lays out rows as columns separated by two spaces (the last column is not padded).
pub(crate) fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_with_or_without_protocol() {
        assert_eq!(parse_port("80"), Ok(Port::tcp(80)));
        assert_eq!(parse_port("53/udp"), Ok(Port::udp(53)));
        assert_eq!(
            parse_port("9999/SCTP").map(|p| p.protocol),
            Ok(Protocol::Sctp)
        );
        assert!(parse_port("0").is_err());
        assert!(parse_port("http").is_err());
        assert!(parse_port("80/ICMP").is_err());
    }

    #[test]
    fn input_errors_name_file_document_object_and_field() {
        let e = InputError {
            file: "app.yaml".into(),
            document: 2,
            object: Some("AppNetwork prod/shop".into()),
            problems: vec![
                Problem {
                    path: Some("spec.tiers[0].name".into()),
                    message: "bad".into(),
                },
                Problem {
                    path: None,
                    message: "worse".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "app.yaml: document 2 (AppNetwork prod/shop): spec.tiers[0].name: bad\n\
             app.yaml: document 2 (AppNetwork prod/shop): worse"
        );
    }

    #[test]
    fn aligned_rows_pad_every_column_but_the_last() {
        let rows = vec![
            vec!["a".to_string(), "bb".to_string(), "c".to_string()],
            vec!["ddd".to_string(), "e".to_string(), "f".to_string()],
        ];
        assert_eq!(aligned(&rows), "a    bb  c\nddd  e   f\n");
    }
}
