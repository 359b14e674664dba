//! `tierflow explain`: renders an AppNetwork, simulates the rendered objects on its
//! representatives and prints the truth table a reviewer wants in a pull request: rows are
//! sources, columns destinations, cells the destination ports allowed.

use std::fmt::Write;

use super::{aligned, markdown_cell};
use crate::core::Port;
use crate::engine::EngineError;
use crate::model::{AppModel, Backend};
use crate::verify::endpoints::{representatives, Options, Role};
use crate::verify::intent::{checkable, probe_ports};
use crate::verify::reach::{probe_numbers, simulation};

/// One cell of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// These probed ports are allowed (and not all of them).
    Ports(Vec<Port>),
    /// Every probed port is allowed, the undeclared probes included.
    All,
    /// Nothing is allowed.
    Nothing,
    /// Between two addresses outside the cluster: no policy applies.
    NotApplicable,
    /// The backend writes this peer in a form the engine cannot evaluate offline.
    NotChecked,
}

impl Cell {
    /// The cell as text.
    pub fn text(&self) -> String {
        match self {
            Cell::Ports(ports) => ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            Cell::All => "all".to_string(),
            Cell::Nothing => "-".to_string(),
            Cell::NotApplicable => "".to_string(),
            Cell::NotChecked => "?".to_string(),
        }
    }
}

/// The truth table of one AppNetwork on one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// `namespace/name`.
    pub app_network: String,
    /// The backend simulated.
    pub backend: Backend,
    /// Row headers (sources).
    pub rows: Vec<String>,
    /// Column headers (destinations).
    pub columns: Vec<String>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
    /// Every representative and what it stands for.
    pub legend: Vec<(String, String)>,
    /// The ports probed.
    pub ports: Vec<Port>,
    /// What was not simulated, or is enforced weaker than declared.
    pub notes: Vec<String>,
}

/// Builds the truth table of `model` rendered for `backend`.
pub fn explain(model: &AppModel, backend: Backend) -> Result<Table, EngineError> {
    explain_in(model, backend, &[])
}

/// [`explain`] on a cluster whose pod and service ranges are `cluster` (`--cluster-cidr`;
/// empty: made-up ranges, which a note names when a `world` peer uses them).
pub fn explain_in(
    model: &AppModel,
    backend: Backend,
    cluster: &[crate::core::Cidr],
) -> Result<Table, EngineError> {
    let reps = representatives(
        model,
        Options {
            near_misses: false,
            cluster_cidrs: cluster.to_vec(),
        },
    );
    let ports = probe_ports(model, &reps, false);
    let (sim, render_notes) = simulation(model, &reps, backend)?;
    let api_as_address = !backend.capabilities().api_server_entity;
    let numbers = probe_numbers(&ports);
    let row_ids: Vec<usize> = (0..reps.endpoints.len())
        .filter(|&i| reps.endpoints[i].role != Role::ApiServer)
        .collect();
    let mut cells = Vec::with_capacity(row_ids.len());
    for &i in &row_ids {
        let from = &reps.endpoints[i];
        let mut row = Vec::with_capacity(reps.endpoints.len());
        for (j, to) in reps.endpoints.iter().enumerate() {
            if !from.is_pod() && !to.is_pod() {
                row.push(Cell::NotApplicable);
                continue;
            }
            if !checkable(from, to, api_as_address) {
                row.push(Cell::NotChecked);
                continue;
            }
            let Some((a, b)) = sim.pair(i, j) else {
                row.push(Cell::NotApplicable);
                continue;
            };
            let open: Vec<Port> = ports
                .iter()
                .zip(sim.scenario.allows_each(a, b, &numbers))
                .filter_map(|(p, allowed)| allowed.then_some(*p))
                .collect();
            row.push(if open.is_empty() {
                Cell::Nothing
            } else if open.len() == ports.len() {
                Cell::All
            } else {
                Cell::Ports(open)
            });
        }
        cells.push(row);
    }
    let mut notes = reps.notes.clone();
    if cluster.is_empty() && crate::plan::first_world(model).is_some() {
        notes.push(format!(
            "world peers: no --cluster-cidr given, so the cluster's ranges are assumed to be {} \
             (the pods here get addresses in them)",
            reps.cluster_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if model.audit {
        notes.push(
            "mode Audit: simulated the enforcing form of the policies (Calico stages exactly \
             these; the other backends refuse Audit)"
                .to_string(),
        );
    }
    notes.extend(render_notes);
    if !api_as_address && reps.api_server.is_some() {
        notes.push(format!(
            "the API server is written in a form the engine cannot evaluate offline on {} (\"?\")",
            backend.as_str()
        ));
    }
    Ok(Table {
        app_network: format!("{}/{}", model.namespace, model.name),
        backend,
        rows: row_ids
            .iter()
            .map(|&i| reps.endpoints[i].name.clone())
            .collect(),
        columns: reps.endpoints.iter().map(|e| e.name.clone()).collect(),
        cells,
        legend: reps
            .endpoints
            .iter()
            .map(|e| (e.name.clone(), e.about.clone()))
            .collect(),
        ports,
        notes,
    })
}

/// The table for a terminal.
pub fn to_text(t: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "AppNetwork {} on {}: destination ports allowed (rows: from, columns: to; \"all\": every \
         port probed, \"-\": none; a pod to itself means to another replica)\n",
        t.app_network,
        t.backend.as_str()
    );
    let mut rows = vec![std::iter::once("FROM \\ TO".to_string())
        .chain(t.columns.iter().cloned())
        .collect::<Vec<_>>()];
    for (name, cells) in t.rows.iter().zip(&t.cells) {
        let mut row = vec![name.clone()];
        row.extend(cells.iter().map(|c| match c {
            Cell::NotApplicable => ".".to_string(),
            c => c.text(),
        }));
        rows.push(row);
    }
    out.push_str(&aligned(&rows));
    out.push_str("\nEndpoints:\n");
    let legend: Vec<Vec<String>> = t
        .legend
        .iter()
        .map(|(n, a)| vec![format!("  {n}"), a.clone()])
        .collect();
    out.push_str(&aligned(&legend));
    let _ = writeln!(out, "\nPorts probed: {}", Port::list(&t.ports));
    if !t.notes.is_empty() {
        out.push_str("\nNotes:\n");
        for n in &t.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

/// The table for a pull-request comment.
pub fn to_markdown(t: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#### AppNetwork `{}` on {}\n\nDestination ports allowed (rows: from, columns: to; \
         **all**: every port probed, **-**: none; a pod to itself means to another replica).\n",
        t.app_network,
        t.backend.as_str()
    );
    out.push_str("| from \\ to |");
    for c in &t.columns {
        let _ = write!(out, " `{}` |", markdown_cell(c));
    }
    out.push_str("\n|---|");
    for _ in &t.columns {
        out.push_str("---|");
    }
    out.push('\n');
    for (name, cells) in t.rows.iter().zip(&t.cells) {
        let _ = write!(out, "| `{}` |", markdown_cell(name));
        for c in cells {
            let text = match c {
                Cell::All => "**all**".to_string(),
                Cell::Nothing => "-".to_string(),
                c => markdown_cell(&c.text()),
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out.push_str("\n<details><summary>Endpoints and ports</summary>\n\n");
    for (n, a) in &t.legend {
        let _ = writeln!(out, "- `{}`: {}", markdown_cell(n), a);
    }
    let _ = writeln!(
        out,
        "\nPorts probed: {}\n\n</details>",
        Port::list(&t.ports)
    );
    if !t.notes.is_empty() {
        out.push('\n');
        for n in &t.notes {
            let _ = writeln!(out, "> {n}");
        }
    }
    out
}

/// The AppNetworks as one Mermaid flowchart (`--output mermaid`).
pub fn to_mermaid(models: &[AppModel]) -> String {
    crate::review::diagram::of_models(models).to_mermaid()
}

/// The AppNetworks as one Graphviz digraph (`--output dot`).
pub fn to_dot(models: &[AppModel]) -> String {
    crate::review::diagram::of_models(models).to_dot()
}

/// The diagram of one AppNetwork as a Markdown block GitHub renders (`--output markdown`).
pub fn diagram_markdown(model: &AppModel) -> String {
    format!(
        "\n```mermaid\n{}```\n",
        crate::review::diagram::of_model(model).to_mermaid()
    )
}
