//! `tierflow import`: the policies and pods of the input (files or `--from-cluster`) as
//! AppNetworks ([`tierflow_core::adopt::import`]), with the proof that they decide every
//! connection alike ([`tierflow_core::adopt::import::equivalence`]).

use crate::adopt::import::{self, Equivalence, Import, ImportError, Options};
use crate::core::Cidr;
use crate::model::Backend;

use super::input::Input;
use super::CliError;

/// What `import` prints: the AppNetworks (standard output) and the equivalence report
/// (standard error).
#[derive(Clone, Debug)]
pub struct Imported {
    /// The translation.
    pub import: Import,
    /// The AppNetworks as YAML, with comments naming the source policies.
    pub yaml: String,
    /// The comparison by simulation.
    pub report: Equivalence,
}

impl Imported {
    /// The exit code: [`super::EXIT_OK`] when equivalent, else [`super::EXIT_FINDINGS`].
    pub fn exit_code(&self) -> u8 {
        if self.report.equivalent() {
            super::EXIT_OK
        } else {
            super::EXIT_FINDINGS
        }
    }
}

fn error(input: &Input, e: ImportError) -> CliError {
    match e {
        ImportError::Engine(e) => CliError::Input(input.locate(e)),
        other => CliError::Usage(format!("import: {other}")),
    }
}

/// Imports the namespaces `namespaces` (empty: every namespace with a policy) of `input`, and
/// compares the result, rendered for `backend`, with the input by simulation.
pub fn import_input(
    input: &Input,
    namespaces: &[String],
    backend: Backend,
    cluster_cidrs: &[Cidr],
) -> Result<Imported, CliError> {
    let values = input.values();
    let options = Options {
        namespaces: namespaces.to_vec(),
        cluster_cidrs: cluster_cidrs.to_vec(),
    };
    let import = import::import(&values, &options).map_err(|e| error(input, e))?;
    let yaml = import::to_yaml(&import).map_err(|e| CliError::Output(e.to_string()))?;
    let report = import::equivalence(&values, &import, backend.for_namespaces(), cluster_cidrs)
        .map_err(|e| error(input, e))?;
    Ok(Imported {
        import,
        yaml,
        report,
    })
}
