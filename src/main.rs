#![forbid(unsafe_code)]
//! The `tierflow` command: the operator (`run`) and offline tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kube::Client;
use tierflow::crd::{self, AppNetwork};
use tierflow::render::networkpolicy;
use tierflow::{controller, validate, Error};

#[derive(Parser)]
#[command(
    name = "tierflow",
    version,
    about = "Application network intent → correct, self-healing NetworkPolicies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (in-cluster config, or KUBECONFIG / ~/.kube/config).
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value = "text", env = "TIERFLOW_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Print the CustomResourceDefinitions tierflow serves.
    Crds,
    /// Render the objects the operator would apply for an AppNetwork file, as YAML.
    Render {
        /// An AppNetwork manifest (YAML; `-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Print a table of what may talk to what instead of the objects.
        #[arg(long)]
        summary: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { log_format } => {
            init_logging(log_format);
            run().await
        }
        Command::Crds => crd::crds_yaml()
            .map(|y| print!("{y}"))
            .map_err(|e| Error::Config(e.to_string())),
        Command::Render { file, summary } => render(&file, summary),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tierflow: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> tierflow::Result<()> {
    let client = Client::try_default().await?;
    let running = controller::start(client, controller::Options::default()).await?;
    tracing::info!("caches synced; controllers running");
    tokio::select! {
        _ = running.join() => Err(Error::Config("a controller task ended unexpectedly".into())),
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn read_input(file: &PathBuf) -> tierflow::Result<String> {
    if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::Config(format!("stdin: {e}")))
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::Config(format!("{}: {e}", file.display())))
    }
}

fn render(file: &PathBuf, summary: bool) -> tierflow::Result<()> {
    use serde::Deserialize;
    let text = read_input(file)?;
    let mut out = String::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| Error::Config(format!("{}: document {i}: {e}", file.display())))?;
        if value.is_null() {
            continue;
        }
        let app: AppNetwork = serde_yaml::from_value(value)
            .map_err(|e| Error::Config(format!("{}: document {i}: {e}", file.display())))?;
        let name = app.metadata.name.clone().unwrap_or_default();
        let ns = app
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let model = validate::app_network(&name, &ns, &app.spec).map_err(|e| {
            Error::Config(format!(
                "{}: document {i} ({ns}/{name}): {e}",
                file.display()
            ))
        })?;
        if summary {
            out.push_str(&format!(
                "{ns}/{name}:\n{}",
                tierflow::render::summary::table(&model)
            ));
            continue;
        }
        let baseline = tierflow::model::NamespaceBaseline::merge([&model.baseline]);
        let mut objects: Vec<serde_json::Value> = Vec::new();
        for p in networkpolicy::tier_policies(&model, None) {
            objects.push(serde_json::to_value(p)?);
        }
        if let Some(b) = networkpolicy::baseline(&ns, &baseline, &[]) {
            objects.push(serde_json::to_value(b)?);
        }
        for o in objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&o).map_err(|e| Error::Config(e.to_string()))?);
        }
    }
    print!("{out}");
    Ok(())
}
