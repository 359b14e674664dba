//! `tierflow diff`: what a change to the intent does, for a pull request. Reads two versions
//! (files: `-f OLD... --against NEW...`; or a git revision against the work tree:
//! `--git-base REF [PATHS]`, through the `git` binary), validates both with file, document
//! and field in every error, and prints the semantic diff of
//! [`crate::review::diff`] as text, Markdown (a pull-request comment with a Mermaid diagram
//! per AppNetwork) or JSON.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::input::{Document, Input};
use super::render::{planner_inputs, RenderOptions};
use super::{markdown_cell, CliError};
use crate::review::diagram;
use crate::review::diff::{self, AppDiff, BackendDiff, Diff, Settings, Side};

/// The kinds `diff` reads; other documents are passed over.
fn wanted(doc: &Document) -> bool {
    matches!(
        doc.type_meta(),
        ("tierflow.dev/v1alpha1", "AppNetwork" | "ClusterBaseline") | ("v1", "Namespace")
    )
}

/// The input without documents `diff` does not read (empty ones stay, for numbering), and a
/// note naming each document passed over.
pub fn intent_only(mut input: Input) -> (Input, Vec<String>) {
    let mut notes = Vec::new();
    let mut kept = Vec::with_capacity(input.documents.len());
    for doc in std::mem::take(&mut input.documents) {
        if doc.value.is_null() || wanted(&doc) {
            kept.push(doc);
        } else {
            notes.push(format!(
                "diff reads AppNetworks, ClusterBaselines and Namespaces; passing over {}: \
                 document {}{}",
                input.file_of(&doc),
                doc.index,
                doc.describe()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
    }
    input.documents = kept;
    (input, notes)
}

/// Compares two inputs.
pub fn diff_inputs(old: &Input, new: &Input, options: &RenderOptions) -> Result<Diff, CliError> {
    let (old_apps, old_cbs, old_ns, _) = planner_inputs(old, options)?;
    let (new_apps, new_cbs, new_ns, _) = planner_inputs(new, options)?;
    let settings = Settings {
        operator_namespace: options.operator_namespace.clone(),
        cluster_cidrs: options.cluster_cidrs.clone(),
        default_labels: options.namespace_labels.all.clone(),
    };
    diff::diff(
        Side {
            apps: &old_apps,
            cluster_baselines: &old_cbs,
            namespaces: &old_ns,
        },
        Side {
            apps: &new_apps,
            cluster_baselines: &new_cbs,
            namespaces: &new_ns,
        },
        &settings,
    )
    .map_err(|e| CliError::Output(e.to_string()))
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, CliError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| CliError::Usage(format!("--git-base needs the git binary: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Usage(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether a file may hold intent: YAML or JSON by its name (any name when `explicit`: the
/// user named it).
fn candidate(path: &str, explicit: bool) -> bool {
    explicit || [".yaml", ".yml"].iter().any(|e| path.ends_with(e))
}

/// Whether the text holds a document of a kind `diff` reads: `Some(true)` for AppNetwork /
/// ClusterBaseline (a file that must parse), `Some(false)` for Namespace only, `None` for
/// neither.
fn holds(text: &str) -> Option<bool> {
    // Block and flow style, quoted or not: `kind: AppNetwork`, `{kind: "AppNetwork"}`.
    let squeezed: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '"' | '\''))
        .collect();
    if ["kind:AppNetwork", "kind:ClusterBaseline"]
        .iter()
        .any(|k| squeezed.contains(k))
    {
        Some(true)
    } else if squeezed.contains("kind:Namespace") {
        Some(false)
    } else {
        None
    }
}

/// Adds `text` (named `name`) to `input` when it holds intent; a file holding only Namespaces
/// that does not parse is passed over with a note, one holding AppNetworks or ClusterBaselines
/// is an error.
fn add_file(
    input: &mut Input,
    notes: &mut Vec<String>,
    name: String,
    text: String,
) -> Result<(), CliError> {
    match holds(&text) {
        None => Ok(()),
        Some(must) => {
            let mut one = Input::default();
            match one.add(name.clone(), text.clone()) {
                Ok(()) => input.add(name, text),
                Err(e) if must => Err(e),
                Err(e) => {
                    notes.push(format!("passing over {name}, which is not YAML: {e}"));
                    Ok(())
                }
            }
        }
    }
}

/// The two versions for `--git-base REF [PATHS]`: the files at `REF` and in the work tree
/// (tracked or untracked and not ignored), under `paths` (default: the whole repository), that
/// hold AppNetworks, ClusterBaselines or Namespaces. Run from `dir` (paths are relative to it).
pub fn read_git(
    dir: &Path,
    reference: &str,
    paths: &[PathBuf],
) -> Result<(Input, Input, Vec<String>), CliError> {
    let root = PathBuf::from(
        String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-toplevel"])?)
            .trim()
            .to_string(),
    );
    git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        CliError::Usage(format!(
            "--git-base {reference}: not a commit of this repository"
        ))
    })?;
    let explicit = !paths.is_empty();
    let specs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec![
        "ls-tree",
        "-r",
        "--name-only",
        "--full-name",
        reference,
        "--",
    ];
    args.extend(specs.iter().map(String::as_str));
    if !explicit {
        args.insert(3, "--full-tree");
    }
    let at_ref = lines(&git(dir, &args)?);
    let mut args = vec![
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
        "--full-name",
        "--",
    ];
    args.extend(specs.iter().map(String::as_str));
    let work_dir = if explicit { dir } else { root.as_path() };
    let in_tree = lines(&git(work_dir, &args)?);

    let mut notes = Vec::new();
    let mut old = Input::default();
    for path in at_ref.iter().filter(|p| candidate(p, explicit)) {
        let bytes = git(&root, &["show", &format!("{reference}:{path}")])?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        add_file(&mut old, &mut notes, format!("{reference}:{path}"), text)?;
    }
    let mut new = Input::default();
    let mut seen = std::collections::BTreeSet::new();
    for path in in_tree.iter().filter(|p| candidate(p, explicit)) {
        if !seen.insert(path.clone()) {
            continue;
        }
        // Deleted in the work tree but still in the index: not in the new version.
        let Ok(text) = std::fs::read_to_string(root.join(path)) else {
            continue;
        };
        add_file(&mut new, &mut notes, path.clone(), text)?;
    }
    Ok((old, new, notes))
}

/// A connection as a row: the same change on several backends is one row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    allowed: bool,
    from: String,
    to: String,
    port: String,
    flows: Vec<usize>,
}

/// The same change on several backends as one row: the backends it happens on and why (one
/// reason, or each reason with its backends when they differ).
fn rows(backends: &[BackendDiff]) -> Vec<(Row, Vec<&'static str>, String)> {
    type Causes = Vec<(String, Vec<&'static str>)>;
    let mut out: BTreeMap<Row, (Vec<&'static str>, Causes)> = BTreeMap::new();
    for b in backends {
        for c in b.allowed.iter().chain(&b.denied) {
            let row = Row {
                allowed: c.allowed,
                from: c.from.clone(),
                to: c.to.clone(),
                port: format!("{}/{}", c.port, c.protocol),
                flows: c.flows.clone(),
            };
            let (on, causes) = out.entry(row).or_default();
            on.push(b.backend.as_str());
            match causes.iter_mut().find(|(cause, _)| *cause == c.cause) {
                Some((_, with)) => with.push(b.backend.as_str()),
                None => causes.push((c.cause.clone(), vec![b.backend.as_str()])),
            }
        }
    }
    let mut v: Vec<_> = out
        .into_iter()
        .map(|(r, (on, causes))| {
            let cause = match causes.as_slice() {
                [(one, _)] => one.clone(),
                many => many
                    .iter()
                    .map(|(c, with)| format!("{c} ({})", with.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            (r, on, cause)
        })
        .collect();
    // Allowed first, as additions read first in review.
    v.sort_by(|a, b| b.0.allowed.cmp(&a.0.allowed).then(a.0.cmp(&b.0)));
    v
}

/// Rows that differ only in the port as one row, the ports joined in numeric order.
fn compact(table: Vec<(Row, Vec<&'static str>, String)>) -> Vec<(Row, Vec<&'static str>, String)> {
    let mut out: Vec<(Row, Vec<&'static str>, String)> = Vec::new();
    let mut ports: Vec<Vec<String>> = Vec::new();
    for (r, on, cause) in table {
        let same = out.last().is_some_and(|(last, last_on, last_cause)| {
            last.allowed == r.allowed
                && last.from == r.from
                && last.to == r.to
                && last.flows == r.flows
                && *last_on == on
                && *last_cause == cause
        });
        if same {
            if let Some(p) = ports.last_mut() {
                p.push(r.port);
            }
        } else {
            ports.push(vec![r.port.clone()]);
            out.push((r, on, cause));
        }
    }
    for ((r, _, _), mut p) in out.iter_mut().zip(ports) {
        let number = |s: &String| -> u32 {
            s.split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        p.sort_by_key(number);
        r.port = p.join(", ");
    }
    out
}

/// One line of the text output: `+ from -> to on port: cause [backends]`.
fn row_line(out: &mut String, r: &Row, cause: &str, backends: &str) {
    let _ = writeln!(
        out,
        "  {} {} -> {} on {}: {} [{}]",
        if r.allowed { "+" } else { "-" },
        r.from,
        r.to,
        r.port,
        cause,
        backends
    );
}

fn backends_text(on: &[&str], all: usize) -> String {
    if on.len() == all {
        "every backend".to_string()
    } else {
        on.join(", ")
    }
}

fn flows_text(flows: &[usize]) -> String {
    flows
        .iter()
        .map(|f| format!("spec.flows[{f}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one-line summary.
pub fn summary(d: &Diff) -> String {
    if d.is_empty() {
        return "No semantic change: every backend allows and denies the same connections, and \
                every ClusterBaseline covers the same namespaces."
            .to_string();
    }
    let count = |c: diff::Change| d.app_networks.iter().filter(|a| a.change == c).count();
    let mut parts = Vec::new();
    for (c, word) in [
        (diff::Change::Added, "added"),
        (diff::Change::Removed, "removed"),
        (diff::Change::Changed, "changed"),
    ] {
        let n = count(c);
        if n > 0 {
            parts.push(format!(
                "{n} AppNetwork{} {word}",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    let n = d.cluster_baselines.len();
    if n > 0 {
        parts.push(format!(
            "{n} ClusterBaseline{} changed",
            if n == 1 { "" } else { "s" }
        ));
    }
    // Distinct connections: the same change on several backends counts once.
    let mut distinct = std::collections::BTreeSet::new();
    for a in &d.app_networks {
        for (r, _, _) in rows(&a.backends) {
            distinct.insert((a.app_network.clone(), r.allowed, r.from, r.to, r.port));
        }
    }
    for (r, _, _) in rows(&d.namespaces) {
        distinct.insert((String::new(), r.allowed, r.from, r.to, r.port));
    }
    let allowed = distinct.iter().filter(|c| c.1).count();
    let denied = distinct.len() - allowed;
    let mut s = parts.join(", ");
    if !s.is_empty() {
        s.push_str(": ");
    }
    let _ = write!(
        s,
        "{allowed} connection{} become{} allowed, {denied} become{} denied",
        if allowed == 1 { "" } else { "s" },
        if allowed == 1 { "s" } else { "" },
        if denied == 1 { "s" } else { "" },
    );
    if !d.coverage.is_empty() {
        let _ = write!(
            s,
            "; {} namespace coverage change{}",
            d.coverage.len(),
            if d.coverage.len() == 1 { "" } else { "s" }
        );
    }
    if !d.baselines.is_empty() {
        let _ = write!(
            s,
            "; {} namespace baseline change{}",
            d.baselines.len(),
            if d.baselines.len() == 1 { "" } else { "s" }
        );
    }
    s
}

fn app_title(a: &AppDiff) -> String {
    format!("AppNetwork {} ({})", a.app_network, a.change.as_str())
}

/// The diff for a terminal.
pub fn to_text(d: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", summary(d));
    for a in &d.app_networks {
        let _ = writeln!(out, "\n{}:", app_title(a));
        let table = compact(rows(&a.backends));
        if table.is_empty() {
            let _ = writeln!(out, "  no connection changes");
        }
        for (r, on, cause) in &table {
            row_line(&mut out, r, cause, &backends_text(on, a.backends.len()));
        }
        for n in a
            .notes
            .iter()
            .chain(a.backends.iter().flat_map(|b| &b.notes))
        {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    for c in &d.cluster_baselines {
        let _ = writeln!(out, "\nClusterBaseline {} ({})", c.name, c.change.as_str());
    }
    if !d.coverage.is_empty() {
        let _ = writeln!(out, "\nCoverage:");
        for c in &d.coverage {
            let _ = writeln!(
                out,
                "  ClusterBaseline {}, namespace {}: {} -> {}",
                c.cluster_baseline, c.namespace, c.before, c.after
            );
        }
    }
    if !d.baselines.is_empty() {
        let _ = writeln!(out, "\nNamespace baselines:");
        for b in &d.baselines {
            let _ = writeln!(
                out,
                "  {}: {} -> {}",
                b.namespace,
                b.before.describe(),
                b.after.describe()
            );
        }
    }
    let table = compact(rows(&d.namespaces));
    if !table.is_empty() {
        let _ = writeln!(out, "\nNamespaces without AppNetworks:");
        for (r, on, cause) in &table {
            row_line(&mut out, r, cause, &backends_text(on, 4));
        }
    }
    for n in &d.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// At most this many rows per table in a comment; the rest are counted.
const MAX_ROWS: usize = 60;

/// At most this many edges in a comment's diagram (Mermaid refuses 500 by default, and a
/// picture of more says nothing).
const MAX_EDGES: usize = 200;

fn markdown_rows(out: &mut String, table: &[(Row, Vec<&'static str>, String)], backends: usize) {
    out.push_str("| | from | to | ports | flow (or why) | backends |\n|---|---|---|---|---|---|\n");
    for (r, on, cause) in table.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {} | {} | {} |",
            if r.allowed {
                "**+ allowed**"
            } else {
                "**− denied**"
            },
            markdown_cell(&r.from),
            markdown_cell(&r.to),
            r.port,
            if r.flows.is_empty() {
                markdown_cell(cause)
            } else {
                format!("`{}`", flows_text(&r.flows))
            },
            backends_text(on, backends)
        );
    }
    if table.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "\n…and {} more (see `--output json`).",
            table.len() - MAX_ROWS
        );
    }
}

/// The diff as a pull-request comment: a summary line, per AppNetwork a table of the
/// connections that become allowed or denied and a Mermaid diagram, then coverage.
pub fn to_markdown(d: &Diff) -> String {
    let mut out = String::from("### tierflow diff\n\n");
    let _ = writeln!(out, "**{}**", summary(d));
    for a in &d.app_networks {
        let _ = writeln!(out, "\n#### {}\n", {
            format!("AppNetwork `{}` ({})", a.app_network, a.change.as_str())
        });
        let table = compact(rows(&a.backends));
        if table.is_empty() {
            out.push_str("No connection changes.\n");
        } else {
            markdown_rows(&mut out, &table, a.backends.len());
            let shown = a.shown().map_or("networkpolicy", |b| b.backend.as_str());
            let d = diagram::of_diff(a);
            if d.edges.len() > MAX_EDGES {
                let _ = writeln!(
                    out,
                    "\n_No diagram: {} edges are more than a comment should draw ({MAX_EDGES})._",
                    d.edges.len()
                );
            } else {
                let _ = writeln!(
                    out,
                    "\n<details open><summary>Diagram ({shown}): added edges green (+), removed \
                     edges red and dashed (−)</summary>\n\n```mermaid\n{}```\n\n</details>",
                    d.to_mermaid()
                );
            }
        }
        let notes: Vec<&String> = a
            .notes
            .iter()
            .chain(a.backends.iter().flat_map(|b| &b.notes))
            .collect();
        if !notes.is_empty() {
            out.push('\n');
            for n in notes {
                let _ = writeln!(out, "> {}", markdown_cell(n));
            }
        }
    }
    if !d.cluster_baselines.is_empty() || !d.coverage.is_empty() {
        out.push_str("\n#### ClusterBaselines\n\n");
        for c in &d.cluster_baselines {
            let _ = writeln!(out, "- `{}`: {}", markdown_cell(&c.name), c.change.as_str());
        }
        if !d.coverage.is_empty() {
            out.push_str("\n| ClusterBaseline | namespace | before | after |\n|---|---|---|---|\n");
            for c in &d.coverage {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | {} | **{}** |",
                    markdown_cell(&c.cluster_baseline),
                    markdown_cell(&c.namespace),
                    c.before,
                    c.after
                );
            }
        }
    }
    if !d.baselines.is_empty() {
        out.push_str(
            "\n#### Namespace baselines\n\n| namespace | before | after |\n|---|---|---|\n",
        );
        for b in &d.baselines {
            let _ = writeln!(
                out,
                "| `{}` | {} | **{}** |",
                markdown_cell(&b.namespace),
                b.before.describe(),
                b.after.describe()
            );
        }
    }
    let table = compact(rows(&d.namespaces));
    if !table.is_empty() {
        out.push_str("\n#### Namespaces without AppNetworks\n\n");
        markdown_rows(&mut out, &table, 4);
    }
    for n in &d.notes {
        let _ = writeln!(out, "\n> {}", markdown_cell(n));
    }
    out
}

/// The JSON document of `--output json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonReport<'a> {
    /// Whether the versions are semantically equal.
    pub equal: bool,
    /// The diff.
    #[serde(flatten)]
    pub diff: &'a Diff,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_holding_intent_are_found_in_block_and_flow_style() {
        assert_eq!(holds("apiVersion: x\nkind: AppNetwork\n"), Some(true));
        assert_eq!(holds("{\"kind\": \"ClusterBaseline\"}"), Some(true));
        assert_eq!(holds("- {apiVersion: v1, kind: Namespace}"), Some(false));
        assert_eq!(holds("kind: Deployment\n"), None);
    }
}
