#![forbid(unsafe_code)]
//! The `tierflow` command: the operator (`run`) and offline tools.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use kube::Client;
use tierflow::crd::{self, AppNetwork};
use tierflow::metrics::Metrics;
use tierflow::model::{Backend, BackendRequest};
use tierflow::render;
use tierflow::{controller, leader, server, validate, Error};
use tokio::sync::watch;

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

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Networkpolicy,
    Calico,
    Cilium,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Networkpolicy => Backend::NetworkPolicy,
            BackendArg::Calico => Backend::Calico,
            BackendArg::Cilium => Backend::Cilium,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (in-cluster config, or KUBECONFIG / ~/.kube/config).
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value = "text", env = "TIERFLOW_LOG_FORMAT")]
        log_format: LogFormat,
        /// The backend `Auto` means for the whole cluster (default: detect the CNI).
        #[arg(long, value_enum, env = "TIERFLOW_BACKEND")]
        backend: Option<BackendArg>,
        /// Where /metrics, /healthz and /readyz are served.
        #[arg(long, default_value = "0.0.0.0:8080", env = "TIERFLOW_METRICS_ADDR")]
        metrics_addr: SocketAddr,
        /// Elect a leader on a Lease so several replicas run safely (only the leader writes).
        #[arg(long, env = "TIERFLOW_LEADER_ELECT")]
        leader_elect: bool,
        /// Namespace of the Lease (default: POD_NAMESPACE, else tierflow-system).
        #[arg(long, env = "TIERFLOW_LEASE_NAMESPACE")]
        lease_namespace: Option<String>,
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
        /// The backend to render for (default: the one in the spec; Auto means networkpolicy).
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
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
    // A panic in any task must take the process down (so Kubernetes restarts it) rather than
    // leave a live-but-dead controller: tokio would otherwise only end the panicking task.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            log_format,
            backend,
            metrics_addr,
            leader_elect,
            lease_namespace,
        } => {
            init_logging(log_format);
            run(
                backend.map(Backend::from),
                metrics_addr,
                leader_elect,
                lease_namespace,
            )
            .await
        }
        Command::Crds => crd::crds_yaml()
            .map(|y| print!("{y}"))
            .map_err(|e| Error::Config(e.to_string())),
        Command::Render {
            file,
            summary,
            backend,
        } => render(&file, summary, backend.map(Backend::from)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tierflow: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    backend: Option<Backend>,
    metrics_addr: SocketAddr,
    leader_elect: bool,
    lease_namespace: Option<String>,
) -> tierflow::Result<()> {
    let metrics = Arc::new(Metrics::new()?);
    let client = counting_writes(Client::try_default().await?, metrics.clone());
    let operator_namespace =
        std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "tierflow-system".into());

    let (synced_tx, synced_rx) = watch::channel(false);
    let (context_tx, context_rx) = watch::channel(None);
    let mut lost_lease: futures::future::BoxFuture<'static, ()> =
        Box::pin(futures::future::pending());
    let mut elector = None;
    let leadership = if leader_elect {
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        let ns = lease_namespace.unwrap_or_else(|| operator_namespace.clone());
        let e = Arc::new(leader::Elector::new(
            client.clone(),
            &ns,
            identity,
            leader::Config::default(),
        ));
        let (tx, rx) = watch::channel(leader::Leadership::default());
        let (e2, m) = (e.clone(), metrics.clone());
        let mut watch_rx = rx.clone();
        tokio::spawn(async move {
            while watch_rx.changed().await.is_ok() {
                m.leader.set(i64::from(watch_rx.borrow().leading));
            }
        });
        lost_lease = Box::pin(async move {
            if let Err(err) = e2.run(tx).await {
                tracing::error!(error = %err, "leader election failed");
            }
        });
        tracing::info!(identity = e.identity(), namespace = %ns, "leader election on");
        elector = Some(e);
        Some(rx)
    } else {
        metrics.leader.set(1);
        None
    };

    let state = server::State {
        metrics: metrics.clone(),
        synced: synced_rx,
        leadership: leadership.clone(),
        context: context_rx,
    };
    let server = tokio::spawn(server::serve(metrics_addr, state));

    let options = controller::Options {
        default_backend: backend,
        operator_namespace,
        metrics: Some(metrics),
        leadership,
    };
    let start = controller::start(client, options);
    let running = tokio::select! {
        r = start => r?,
        _ = shutdown_signal() => return Ok(()),
    };
    synced_tx.send_replace(true);
    context_tx.send_replace(Some(running.context.clone()));
    tracing::info!("caches synced");
    let outcome = tokio::select! {
        _ = &mut lost_lease => Err(Error::Config("lost the leader lease".into())),
        r = server => match r {
            Ok(Err(e)) => Err(e),
            _ => Err(Error::Config("the metrics server ended".into())),
        },
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    // Stop writing first, then hand the lease over so a standby takes over at once.
    running.abort();
    if let (Ok(()), Some(e)) = (&outcome, elector) {
        if let Err(err) = e.release().await {
            tracing::warn!(error = %err, "could not release the lease");
        }
    }
    outcome
}

/// Wraps the client so every write the operator makes is counted in `tierflow_api_writes_total`.
fn counting_writes(inner: Client, metrics: Arc<Metrics>) -> Client {
    #[derive(Clone)]
    struct Counting {
        inner: Client,
        metrics: Arc<Metrics>,
    }
    impl tower::Service<http::Request<kube::client::Body>> for Counting {
        type Response = http::Response<kube::client::Body>;
        type Error = kube::Error;
        type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

        fn poll_ready(
            &mut self,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
            if req.method() != http::Method::GET {
                self.metrics
                    .writes
                    .with_label_values(&[req.method().as_str()])
                    .inc();
            }
            let inner = self.inner.clone();
            Box::pin(async move { inner.send(req).await })
        }
    }
    let ns = inner.default_namespace().to_string();
    Client::new(Counting { inner, metrics }, ns)
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

fn render(file: &PathBuf, summary: bool, backend: Option<Backend>) -> tierflow::Result<()> {
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
        let backend = backend.unwrap_or(match model.backend {
            BackendRequest::Fixed(b) => b,
            BackendRequest::Auto => Backend::NetworkPolicy,
        });
        let env = render::Env::default();
        let baseline = tierflow::model::NamespaceBaseline::merge([&model.baseline]);
        let rendered = render::tier_objects(&model, backend, None, &env);
        for n in &rendered.notes {
            eprintln!("tierflow: {ns}/{name}: {}: {}", n.reason, n.message);
        }
        let mut objects: Vec<serde_json::Value> =
            rendered.objects.into_iter().map(|o| o.body).collect();
        if let Some(b) = render::namespace_baseline(&ns, &baseline, backend, model.audit, &[], &env)
        {
            objects.push(b.body);
        }
        for o in objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&o).map_err(|e| Error::Config(e.to_string()))?);
        }
    }
    print!("{out}");
    Ok(())
}
