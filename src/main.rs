#![forbid(unsafe_code)]
//! The `tierflow` command: the operator (`run`) and the offline tools (`render`, `simulate`,
//! `explain`, `verify`, `why`, `diff`, `lint`, `suggest`; see `docs/cli.md`). Exit codes of the
//! tools: 0 ok, 1 findings or differences, 2 usage or input errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::Client;
use tierflow::cli::input::Input;
use tierflow::cli::render::{NamespaceLabels, RenderOptions};
use tierflow::cli::{self, CliError};
use tierflow::core::{Cidr, Port};
use tierflow::crd;
use tierflow::engine::Scenario;
use tierflow::metrics::Metrics;
use tierflow::model::Backend;
use tierflow::render;
use tierflow::{controller, leader, server, Error};
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
    /// policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy (ClusterBaselines; AppNetworks
    /// are written as standard NetworkPolicy).
    Clusternetworkpolicy,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Networkpolicy => Backend::NetworkPolicy,
            BackendArg::Calico => Backend::Calico,
            BackendArg::Cilium => Backend::Cilium,
            BackendArg::Clusternetworkpolicy => Backend::ClusterNetworkPolicy,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SimulateOutput {
    Json,
    Table,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExplainOutput {
    Text,
    /// The truth table and a Mermaid diagram, for a pull-request comment.
    Markdown,
    /// A Mermaid flowchart of the intent.
    Mermaid,
    /// A Graphviz digraph of the intent.
    Dot,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffOutput {
    Text,
    /// A pull-request comment: summary, tables, Mermaid diagrams.
    Markdown,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum VerifyOutput {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LintOutput {
    Json,
    Text,
}

/// Where `simulate` and `lint` read objects from.
#[derive(Args)]
struct Objects {
    /// Files of Namespaces, Pods and policies (YAML or JSON, several documents each; `-` for
    /// standard input).
    #[arg(
        short = 'f',
        long = "filename",
        num_args = 1..,
        required_unless_present = "from_cluster",
        conflicts_with = "from_cluster"
    )]
    files: Vec<PathBuf>,
    /// Read the live Namespaces, Pods, NetworkPolicies and Calico / Cilium policies of the
    /// cluster (KUBECONFIG or in-cluster config) instead of files.
    #[arg(long)]
    from_cluster: bool,
    /// The Cilium agent's identity-relevant label patterns, as in cilium-config's `labels`
    /// ("k8s:app k8s:!tier": space-separated `[source:][!]regex`, added to Cilium's default
    /// list; an inclusive pattern keeps only matching labels). Default: cilium-config's
    /// `labels` with --from-cluster, else Cilium's default filter.
    #[arg(long = "cilium-identity-labels", value_name = "PATTERNS", value_parser = cli::parse_identity_labels)]
    cilium_identity_labels: Option<tierflow::engine::CiliumIdentityFilter>,
}

/// The observed flows `suggest` reads (exactly one).
#[derive(Args)]
#[group(required = true, multiple = false)]
struct FlowSource {
    /// `hubble observe -o json` (or `-o jsonpb`) output, one JSON object a line.
    #[arg(long, value_name = "FILE")]
    from_hubble: Option<PathBuf>,
    /// Calico flow logs (JSON, one document a line, or an array).
    #[arg(long, value_name = "FILE")]
    from_calico_flowlogs: Option<PathBuf>,
    /// CSV: src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol[,action].
    #[arg(long, value_name = "FILE")]
    from_csv: Option<PathBuf>,
}

impl FlowSource {
    fn file(&self) -> Result<(&PathBuf, FlowFormat), CliError> {
        match (
            &self.from_hubble,
            &self.from_calico_flowlogs,
            &self.from_csv,
        ) {
            (Some(f), _, _) => Ok((f, FlowFormat::Hubble)),
            (_, Some(f), _) => Ok((f, FlowFormat::Calico)),
            (_, _, Some(f)) => Ok((f, FlowFormat::Csv)),
            (None, None, None) => Err(CliError::Usage(
                "suggest: give the flows with --from-hubble, --from-calico-flowlogs or --from-csv"
                    .to_string(),
            )),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum FlowFormat {
    Hubble,
    Calico,
    Csv,
}

impl From<FlowFormat> for tierflow::adopt::flows::Format {
    fn from(f: FlowFormat) -> Self {
        match f {
            FlowFormat::Hubble => Self::Hubble,
            FlowFormat::Calico => Self::Calico,
            FlowFormat::Csv => Self::Csv,
        }
    }
}

/// An object name (`--name`): a DNS-1123 subdomain, as the API server requires of an
/// AppNetwork's `metadata.name`.
fn parse_object_name(s: &str) -> Result<String, String> {
    if tierflow::core::selector::is_dns1123_subdomain(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 name (lower case letters, digits, '-' and '.', starting \
             and ending with a letter or digit, at most 253 characters)"
        ))
    }
}

fn parse_v4_prefix(s: &str) -> Result<u8, String> {
    cli::suggest::parse_prefix(s, 32)
}

fn parse_v6_prefix(s: &str) -> Result<u8, String> {
    cli::suggest::parse_prefix(s, 128)
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
        /// The cluster's own pod and service ranges, both families (repeatable): what a
        /// `world` peer leaves out on NetworkPolicy and Calico. Default: the nodes'
        /// `spec.podCIDRs` (the service range cannot be read from the API).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
    },
    /// Print the CustomResourceDefinitions tierflow serves, with CEL validation rules
    /// (`x-kubernetes-validations`: Kubernetes 1.28+, the CIDR and IP rules 1.31+).
    Crds {
        /// Leave the CEL rules out (Kubernetes before 1.28, where `kubectl apply` refuses the
        /// rule fields); `validate` still reports every problem in status.
        #[arg(long)]
        no_cel: bool,
        /// Print the rules a server of this version accepts (for example 1.29: every rule but
        /// the CIDR and IP ones; before 1.28: none).
        #[arg(long, value_name = "VERSION", conflicts_with = "no_cel")]
        kube_version: Option<String>,
    },
    /// Render the objects the operator would apply for AppNetworks and ClusterBaselines, as YAML.
    Render {
        /// AppNetwork / ClusterBaseline / Namespace manifests (YAML; `-` for standard input).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Print a table of what may talk to what instead of the objects.
        #[arg(long)]
        summary: bool,
        /// The backend to render for (default: the one in each spec; Auto means networkpolicy).
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Labels assumed for namespaces, for ClusterBaseline coverage: `k=v,...` for every
        /// namespace, `NAMESPACE:k=v,...` for one (which then counts as existing). Repeatable.
        #[arg(long = "namespace-labels", value_name = "[NAMESPACE:]KEY=VALUE,...")]
        namespace_labels: Vec<String>,
        /// The operator's namespace, never covered by a ClusterBaseline unless it says so.
        #[arg(long, default_value = "tierflow-system")]
        operator_namespace: String,
        /// The cluster's own pod and service ranges, both families (repeatable): what a
        /// `world` peer leaves out on NetworkPolicy and Calico.
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
        /// The Cilium agent's identity-relevant label patterns, as in cilium-config's `labels`
        /// ("k8s:app k8s:!tier": space-separated `[source:][!]regex`, added to Cilium's default
        /// list; an inclusive pattern keeps only matching labels). Default: cilium-config's
        /// `labels` with --from-cluster, else Cilium's default filter.
        #[arg(long = "cilium-identity-labels", value_name = "PATTERNS", value_parser = cli::parse_identity_labels)]
        cilium_identity_labels: Option<tierflow::engine::CiliumIdentityFilter>,
    },
    /// Reachability between every ordered pair of distinct pods of the input, per port.
    Simulate {
        #[command(flatten)]
        objects: Objects,
        /// A destination port, `80`, `80/TCP` or `53/UDP` (repeatable; default: every port
        /// named in the policies).
        #[arg(long = "port", value_parser = cli::parse_port)]
        ports: Vec<Port>,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        output: SimulateOutput,
    },
    /// Render an AppNetwork and print who may connect to whom, as a truth table.
    Explain {
        /// AppNetwork manifests (YAML; `-` for standard input).
        #[arg(
            short = 'f',
            long = "filename",
            num_args = 1..,
            required_unless_present = "from_cluster",
            conflicts_with = "from_cluster"
        )]
        files: Vec<PathBuf>,
        /// Explain the live AppNetworks of the cluster (KUBECONFIG or in-cluster config).
        #[arg(long)]
        from_cluster: bool,
        /// The backend to simulate (default: the one in the spec; Auto means networkpolicy).
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Output format (markdown for pull-request comments).
        #[arg(long, value_enum, default_value = "text")]
        output: ExplainOutput,
        /// The cluster's own pod and service ranges, both families (repeatable): what a
        /// `world` peer leaves out on NetworkPolicy and Calico (default: made-up ranges).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
    },
    /// Check that every backend allows exactly the declared flows and DNS, that every
    /// ClusterBaseline gives each namespace it covers deny-all plus DNS, and that no declared
    /// flow is one a guardrail denies; exit 1 otherwise. With --flows: replay observed flows
    /// against the AppNetworks instead and list what they would deny.
    Verify {
        /// AppNetwork, ClusterBaseline and Namespace manifests, and the users' own policies and
        /// Pods (YAML; `-` for standard input).
        #[arg(
            short = 'f',
            long = "filename",
            num_args = 1..,
            required_unless_present = "from_cluster",
            conflicts_with = "from_cluster"
        )]
        files: Vec<PathBuf>,
        /// Read the live AppNetworks, ClusterBaselines, Namespaces, Pods and policies of the
        /// cluster (KUBECONFIG or in-cluster config) instead of files.
        #[arg(long)]
        from_cluster: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: VerifyOutput,
        /// The cluster's own pod and service ranges, both families (repeatable): what a
        /// `world` peer leaves out on NetworkPolicy and Calico (default: made-up ranges).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
        /// Labels assumed for namespaces, for ClusterBaseline coverage: `k=v,...` for every
        /// namespace, `NAMESPACE:k=v,...` for one (which then counts as existing). Repeatable.
        #[arg(long = "namespace-labels", value_name = "[NAMESPACE:]KEY=VALUE,...")]
        namespace_labels: Vec<String>,
        /// The operator's namespace, never covered by a ClusterBaseline unless it says so.
        #[arg(long, default_value = "tierflow-system")]
        operator_namespace: String,
        /// Replay the observed flows of this file against the AppNetworks instead (Pods and
        /// Namespaces in the -f files are the pods the flows are between): list what the
        /// AppNetworks would deny, per flow; exit 1 if anything.
        #[arg(long, value_name = "FILE", conflicts_with = "from_cluster")]
        flows: Option<PathBuf>,
        /// The format of --flows (default: detected from its first line).
        #[arg(long, value_enum, requires = "flows")]
        flow_format: Option<FlowFormat>,
        /// With --flows: the backend to plan the AppNetworks for (default: each one's own).
        #[arg(long, value_enum, requires = "flows")]
        backend: Option<BackendArg>,
        /// The Cilium agent's identity-relevant label patterns, as in cilium-config's `labels`
        /// ("k8s:app k8s:!tier": space-separated `[source:][!]regex`, added to Cilium's default
        /// list; an inclusive pattern keeps only matching labels). Default: cilium-config's
        /// `labels` with --from-cluster, else Cilium's default filter.
        #[arg(long = "cilium-identity-labels", value_name = "PATTERNS", value_parser = cli::parse_identity_labels)]
        cilium_identity_labels: Option<tierflow::engine::CiliumIdentityFilter>,
    },
    /// Suggest the smallest AppNetworks that allow every observed flow and nothing else (YAML
    /// on standard output; what was read, left out and verified on standard error; exit 1 if
    /// the suggestion would deny an observed flow). With --against, audit observed flows
    /// against intended AppNetworks instead: list what they would deny, per flow.
    Suggest {
        #[command(flatten)]
        source: FlowSource,
        /// Files with the Pods (and Namespaces) the flows are between; other objects are
        /// passed over. Without them (and without --from-cluster) the flows' own labels and
        /// addresses are used.
        #[arg(short = 'f', long = "filename", num_args = 1.., conflicts_with = "from_cluster")]
        files: Vec<PathBuf>,
        /// Read the live Pods and Namespaces of the cluster (KUBECONFIG or in-cluster config).
        #[arg(long)]
        from_cluster: bool,
        /// The name of every suggested AppNetwork (one per namespace): a DNS-1123 name.
        #[arg(long, default_value = "observed", value_parser = parse_object_name)]
        name: String,
        /// Write AppNetworks for these namespaces only (repeatable; default: every namespace
        /// of an observed pod but kube-system, kube-public and kube-node-lease).
        #[arg(long = "namespace", value_name = "NAMESPACE")]
        namespaces: Vec<String>,
        /// Group IPv4 addresses into networks of this prefix length (for example /24); by
        /// default every address is its own /32.
        #[arg(long, value_name = "/N", value_parser = parse_v4_prefix)]
        aggregate: Option<u8>,
        /// Group IPv6 addresses into networks of this prefix length; by default /128.
        #[arg(long = "aggregate-v6", value_name = "/N", value_parser = parse_v6_prefix)]
        aggregate_v6: Option<u8>,
        /// Audit instead: replay the observed flows against the AppNetworks of these files and
        /// list what they would deny (exit 1 if anything).
        #[arg(long, value_name = "APPNET.yaml", num_args = 1..)]
        against: Vec<PathBuf>,
        /// With --against: the backend to plan the AppNetworks for (default: each one's own;
        /// Auto means networkpolicy).
        #[arg(long, value_enum, requires = "against")]
        backend: Option<BackendArg>,
        /// With --against: the cluster's own pod and service ranges (for `world` peers).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
        /// With --against: output format of the audit.
        #[arg(long, value_enum, default_value = "text")]
        output: VerifyOutput,
    },
    /// What a change to the intent does: the connections that become allowed or denied on
    /// every backend, each tied to its flow, and ClusterBaseline coverage. Exit 0 (1 with
    /// --exit-code when there are differences, like `git diff`), 2 on bad input.
    Diff {
        /// The old version: AppNetwork / ClusterBaseline / Namespace manifests.
        #[arg(
            short = 'f',
            long = "filename",
            value_name = "OLD",
            num_args = 1..,
            required_unless_present = "git_base",
            conflicts_with = "git_base",
            requires = "against"
        )]
        files: Vec<PathBuf>,
        /// The new version's manifests.
        #[arg(long, value_name = "NEW", num_args = 1.., requires = "files")]
        against: Vec<PathBuf>,
        /// Compare the manifests at this git revision with the work tree (runs `git`).
        #[arg(long, value_name = "REF")]
        git_base: Option<String>,
        /// With --git-base: the files or directories to compare (default: every YAML file of
        /// the repository holding an AppNetwork, ClusterBaseline or Namespace).
        #[arg(value_name = "PATHS", requires = "git_base")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: DiffOutput,
        /// Exit 1 when the versions differ (as `git diff --exit-code`).
        #[arg(long)]
        exit_code: bool,
        /// Labels assumed for namespaces, for ClusterBaseline coverage: `k=v,...` for every
        /// namespace, `NAMESPACE:k=v,...` for one (which then counts as existing). Repeatable.
        #[arg(long = "namespace-labels", value_name = "[NAMESPACE:]KEY=VALUE,...")]
        namespace_labels: Vec<String>,
        /// The operator's namespace, never covered by a ClusterBaseline unless it says so.
        #[arg(long, default_value = "tierflow-system")]
        operator_namespace: String,
        /// The cluster's own pod and service ranges, both families (repeatable).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
    },
    /// Turn the policies of namespaces (NetworkPolicy, Calico, Cilium) and their pods into
    /// AppNetworks (YAML on standard output), and prove them equivalent by simulation (report
    /// on standard error); exit 1 when some connection differs, 2 on bad input.
    Import {
        #[command(flatten)]
        objects: Objects,
        /// A namespace to import (repeatable; default: every namespace with a policy).
        #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
        namespaces: Vec<String>,
        /// The backend the AppNetworks are rendered for in the comparison.
        #[arg(long, value_enum, default_value = "networkpolicy")]
        backend: BackendArg,
        /// The cluster's own pod and service ranges, both families (repeatable): an ipBlock of
        /// every address minus exactly these is read as `world` (default: made-up ranges).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
        /// The equivalence report on standard error: text (differences grouped by reason, the
        /// first 12 of each), or json (every difference, with its reasons and deciding policies).
        #[arg(long, value_enum, default_value = "text")]
        report: VerifyOutput,
    },
    /// Which objects and rules decide one connection, at both ends, and when it is denied the
    /// smallest AppNetwork change that allows it; exit 1 when denied.
    Why {
        /// The source: NAMESPACE/POD (a pod of the input) or NAMESPACE/key=value,... (a pod
        /// with those labels).
        #[arg(long, value_name = "NS/POD|NS/K=V,...")]
        from: String,
        /// The destination, as --from.
        #[arg(long, value_name = "NS/POD|NS/K=V,...")]
        to: String,
        /// The destination port, `8080` or `8080/TCP`.
        #[arg(long, value_parser = cli::parse_port)]
        port: Port,
        /// AppNetwork, ClusterBaseline and Namespace manifests, the users' own policies and
        /// Pods (YAML; `-` for standard input).
        #[arg(
            short = 'f',
            long = "filename",
            num_args = 1..,
            required_unless_present = "from_cluster",
            conflicts_with = "from_cluster"
        )]
        files: Vec<PathBuf>,
        /// Read the live objects of the cluster (KUBECONFIG or in-cluster config).
        #[arg(long)]
        from_cluster: bool,
        /// The backend `Auto` AppNetworks are rendered for (default: networkpolicy; with
        /// --from-cluster, the one their status reports).
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: VerifyOutput,
        /// Labels assumed for namespaces, for ClusterBaseline coverage: `k=v,...` for every
        /// namespace, `NAMESPACE:k=v,...` for one (which then counts as existing). Repeatable.
        #[arg(long = "namespace-labels", value_name = "[NAMESPACE:]KEY=VALUE,...")]
        namespace_labels: Vec<String>,
        /// The operator's namespace, never covered by a ClusterBaseline unless it says so.
        #[arg(long, default_value = "tierflow-system")]
        operator_namespace: String,
        /// The cluster's own pod and service ranges, both families (repeatable).
        #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = cli::parse_cidr)]
        cluster_cidrs: Vec<Cidr>,
    },
    /// Lint NetworkPolicies, Calico and Cilium policies; exit 1 on an error-severity finding.
    Lint {
        #[command(flatten)]
        objects: Objects,
        /// Check against the Pods of the input (implied when the input holds Pods).
        #[arg(long)]
        pods: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        output: LintOutput,
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

fn main() -> ExitCode {
    // One thread runs every task: the operator waits on the API server far more than it
    // computes, and its CPU-heavy work (inline verification) has a thread of its own
    // (`controller::cpu`). Each extra thread that allocates gets its own glibc arena, which
    // keeps what it freed: at 1,000 namespaces the two worker threads of tokio's default
    // runtime held several MiB that one thread does not (BENCHMARKS.md, session 5).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tierflow: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_command())
}

async fn run_command() -> ExitCode {
    // A panic in any task must take the process down (so Kubernetes restarts it) rather than
    // leave a live-but-dead controller: tokio would otherwise only end the panicking task.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run {
            log_format,
            backend,
            metrics_addr,
            leader_elect,
            lease_namespace,
            cluster_cidrs,
        } => {
            init_logging(log_format);
            let result = run(
                backend.map(Backend::from),
                metrics_addr,
                leader_elect,
                lease_namespace,
                cluster_cidrs,
            )
            .await;
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tierflow: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Crds {
            no_cel,
            kube_version,
        } => {
            let level = match (no_cel, kube_version) {
                (true, _) => Some(crd::Cel::Off),
                (false, None) => Some(crd::Cel::All),
                (false, Some(v)) => crd::Cel::for_version_str(&v),
            };
            level
                .ok_or_else(|| {
                    CliError::Usage(
                        "--kube-version: expected MAJOR.MINOR, for example 1.29".to_string(),
                    )
                })
                .and_then(|level| {
                    crd::crds_yaml_with(level).map_err(|e| CliError::Output(e.to_string()))
                })
                .and_then(|y| emit(&y))
                .map(|()| cli::EXIT_OK)
        }
        Command::Render {
            files,
            summary,
            backend,
            namespace_labels,
            operator_namespace,
            cluster_cidrs,
            cilium_identity_labels,
        } => render(
            &files,
            summary,
            backend.map(Backend::from),
            &namespace_labels,
            RenderOptions {
                operator_namespace,
                cluster_cidrs,
                cilium_identity: cilium_identity_labels.unwrap_or_default(),
                ..RenderOptions::default()
            },
        ),
        Command::Simulate {
            objects,
            ports,
            output,
        } => simulate(objects, &ports, output).await,
        Command::Explain {
            files,
            from_cluster,
            backend,
            output,
            cluster_cidrs,
        } => {
            explain(
                &files,
                from_cluster,
                backend.map(Backend::from),
                output,
                &cluster_cidrs,
            )
            .await
        }
        Command::Verify {
            files,
            output,
            cluster_cidrs,
            flows: Some(flows),
            flow_format,
            backend,
            ..
        } => audit_flows(
            &files,
            &flows,
            flow_format.map(Into::into),
            backend.map(Backend::from),
            &cluster_cidrs,
            output,
        ),
        Command::Verify {
            files,
            output,
            cluster_cidrs,
            namespace_labels,
            operator_namespace,
            from_cluster,
            flows: None,
            cilium_identity_labels,
            ..
        } => match identity_filter(cilium_identity_labels, from_cluster).await {
            Ok(cilium_identity) => {
                verify(
                    &files,
                    from_cluster,
                    output,
                    &namespace_labels,
                    RenderOptions {
                        backend: None,
                        namespace_labels: NamespaceLabels::default(),
                        operator_namespace,
                        cluster_cidrs,
                        cilium_identity,
                    },
                )
                .await
            }
            Err(e) => Err(e),
        },
        Command::Why {
            from,
            to,
            port,
            files,
            from_cluster,
            backend,
            output,
            namespace_labels,
            operator_namespace,
            cluster_cidrs,
        } => {
            why(
                (&from, &to, port),
                &files,
                from_cluster,
                output,
                &namespace_labels,
                RenderOptions {
                    backend: backend.map(Backend::from),
                    namespace_labels: NamespaceLabels::default(),
                    operator_namespace,
                    cluster_cidrs,
                    cilium_identity: Default::default(),
                },
            )
            .await
        }
        Command::Diff {
            files,
            against,
            git_base,
            paths,
            output,
            exit_code,
            namespace_labels,
            operator_namespace,
            cluster_cidrs,
        } => diff(
            Versions {
                files,
                against,
                git_base,
                paths,
            },
            output,
            exit_code,
            &namespace_labels,
            RenderOptions {
                backend: None,
                namespace_labels: NamespaceLabels::default(),
                operator_namespace,
                cluster_cidrs,
                cilium_identity: Default::default(),
            },
        ),
        Command::Lint {
            objects,
            pods,
            output,
        } => lint(objects, pods, output).await,
        Command::Suggest {
            source,
            files,
            from_cluster,
            name,
            namespaces,
            aggregate,
            aggregate_v6,
            against,
            backend,
            cluster_cidrs,
            output,
        } => {
            let options = tierflow::adopt::suggest::Options {
                name,
                namespaces: namespaces.into_iter().collect(),
                aggregate_v4: aggregate,
                aggregate_v6,
            };
            suggest(
                &source,
                &files,
                from_cluster,
                options,
                &against,
                backend.map(Backend::from),
                &cluster_cidrs,
                output,
            )
            .await
        }
        Command::Import {
            objects,
            namespaces,
            backend,
            cluster_cidrs,
            report,
        } => import(objects, &namespaces, backend.into(), &cluster_cidrs, report).await,
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tierflow: {e}");
            ExitCode::from(cli::EXIT_INPUT)
        }
    }
}

async fn run(
    backend: Option<Backend>,
    metrics_addr: SocketAddr,
    leader_elect: bool,
    lease_namespace: Option<String>,
    cluster_cidrs: Vec<Cidr>,
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
        cluster_cidrs,
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
                let resource = tierflow::metrics::resource_of(req.uri().path());
                self.metrics
                    .writes
                    .with_label_values(&[req.method().as_str(), &resource])
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

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Output(e.to_string()))
        }
        _ => Ok(()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| CliError::Output(e.to_string()))
}

/// The input's AppNetworks (at least one); Namespaces and ClusterBaselines are passed over with
/// a note.
fn app_networks(input: &Input, command: &str) -> Result<Vec<tierflow::model::AppModel>, CliError> {
    let (models, skipped) = input.app_networks()?;
    for s in skipped {
        eprintln!("tierflow: {command} covers AppNetworks; passing over {s}");
    }
    if models.is_empty() {
        return Err(CliError::Usage(format!(
            "{command}: the input holds no AppNetwork"
        )));
    }
    Ok(models)
}

/// The Cilium identity label filter: `--cilium-identity-labels`, else (with --from-cluster) the
/// `labels` of the cluster's cilium-config, else Cilium's default.
async fn identity_filter(
    flag: Option<tierflow::engine::CiliumIdentityFilter>,
    from_cluster: bool,
) -> Result<tierflow::engine::CiliumIdentityFilter, CliError> {
    if let Some(f) = flag {
        return Ok(f);
    }
    if from_cluster {
        return Ok(cli::cluster::cilium_identity().await?.unwrap_or_default());
    }
    Ok(tierflow::engine::CiliumIdentityFilter::default())
}

async fn objects_identity(
    objects: &Objects,
) -> Result<tierflow::engine::CiliumIdentityFilter, CliError> {
    identity_filter(objects.cilium_identity_labels.clone(), objects.from_cluster).await
}

async fn read_objects(objects: &Objects) -> Result<Input, CliError> {
    if objects.from_cluster {
        cli::cluster::read_cluster().await
    } else {
        cli::input::read_files(&objects.files)
    }
}

fn render(
    files: &[PathBuf],
    summary: bool,
    backend: Option<Backend>,
    namespace_labels: &[String],
    options: RenderOptions,
) -> Result<u8, CliError> {
    let input = cli::input::read_files(files)?;
    if summary {
        let mut out = String::new();
        for model in app_networks(&input, "render --summary")? {
            out.push_str(&format!(
                "{}/{}:\n{}",
                model.namespace,
                model.name,
                render::summary::table(&model)
            ));
        }
        emit(&out)?;
        return Ok(cli::EXIT_OK);
    }
    let options = RenderOptions {
        backend,
        namespace_labels: namespace_labels_of(namespace_labels)?,
        ..options
    };
    let out = cli::render::render_input(&input, &options)?;
    for n in &out.notes {
        eprintln!("tierflow: {n}");
    }
    emit(&cli::render::to_yaml(&out.objects)?)?;
    Ok(cli::EXIT_OK)
}

async fn simulate(
    objects: Objects,
    ports: &[Port],
    output: SimulateOutput,
) -> Result<u8, CliError> {
    let input = read_objects(&objects).await?;
    let mut scenario = Scenario::from_values(input.values()).map_err(|e| input.locate(e))?;
    scenario.set_cilium_identity_filter(objects_identity(&objects).await?);
    for r in scenario.refused() {
        eprintln!("tierflow: left out of the simulation: {r}");
    }
    if scenario.pods().len() < 2 {
        eprintln!("tierflow: the input holds fewer than two pods, so there is nothing to simulate");
    }
    let ports = cli::simulate::ports_for(&scenario, ports);
    let results = cli::simulate::simulate(&scenario, &ports);
    emit(&match output {
        SimulateOutput::Json => json(&results)?,
        SimulateOutput::Table => cli::simulate::to_table(&results),
    })?;
    Ok(cli::EXIT_OK)
}

async fn import(
    objects: Objects,
    namespaces: &[String],
    backend: Backend,
    cluster_cidrs: &[Cidr],
    report: VerifyOutput,
) -> Result<u8, CliError> {
    let input = read_objects(&objects).await?;
    let out = cli::import::import_input(&input, namespaces, backend, cluster_cidrs)?;
    emit(&out.yaml)?;
    match report {
        VerifyOutput::Text => eprint!("tierflow import: {}", out.report),
        VerifyOutput::Json => eprint!("{}", json(&out.report)?),
    }
    Ok(out.exit_code())
}

/// The input of `verify`, `explain` and `why`: files, or the live cluster with its
/// AppNetworks and ClusterBaselines.
async fn read_world(files: &[PathBuf], from_cluster: bool) -> Result<Input, CliError> {
    if from_cluster {
        let (input, notes) =
            cli::across::without_invalid(&cli::cluster::read_cluster_with_intent().await?);
        for n in notes {
            eprintln!("tierflow: {n}");
        }
        Ok(input)
    } else {
        cli::input::read_files(files)
    }
}

async fn explain(
    files: &[PathBuf],
    from_cluster: bool,
    backend: Option<Backend>,
    output: ExplainOutput,
    cluster_cidrs: &[Cidr],
) -> Result<u8, CliError> {
    let input = read_world(files, from_cluster).await?;
    let input = if from_cluster {
        cli::across::intent_only(&input)
    } else {
        input
    };
    let models = app_networks(&input, "explain")?;
    match output {
        ExplainOutput::Mermaid => {
            emit(&cli::explain::to_mermaid(&models))?;
            return Ok(cli::EXIT_OK);
        }
        ExplainOutput::Dot => {
            emit(&cli::explain::to_dot(&models))?;
            return Ok(cli::EXIT_OK);
        }
        ExplainOutput::Text | ExplainOutput::Markdown => {}
    }
    let mut out = String::new();
    for (i, model) in models.iter().enumerate() {
        let backend = tierflow::plan::Cluster {
            forced_backend: backend,
            ..Default::default()
        }
        .resolve(model.backend);
        let table = cli::explain::explain_in(model, backend, cluster_cidrs).map_err(|e| {
            CliError::Output(format!(
                "the engine cannot read what {}/{} renders to on {}: {e}",
                model.namespace,
                model.name,
                backend.as_str()
            ))
        })?;
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&match output {
            ExplainOutput::Markdown => {
                cli::explain::to_markdown(&table) + &cli::explain::diagram_markdown(model)
            }
            _ => cli::explain::to_text(&table),
        });
    }
    emit(&out)?;
    Ok(cli::EXIT_OK)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReport {
    passed: bool,
    app_networks: Vec<cli::Verification>,
    #[serde(flatten)]
    cluster: cli::verify::ClusterReport,
    across_namespaces: tierflow::verify::across::Report,
}

fn namespace_labels_of(specs: &[String]) -> Result<NamespaceLabels, CliError> {
    let mut labels = NamespaceLabels::default();
    for spec in specs {
        labels
            .add(spec)
            .map_err(|e| CliError::Usage(format!("--namespace-labels {spec:?}: {e}")))?;
    }
    Ok(labels)
}

async fn verify(
    files: &[PathBuf],
    from_cluster: bool,
    output: VerifyOutput,
    namespace_labels: &[String],
    mut options: RenderOptions,
) -> Result<u8, CliError> {
    options.namespace_labels = namespace_labels_of(namespace_labels)?;
    let input = read_world(files, from_cluster).await?;
    let intent = cli::across::intent_only(&input);
    let (models, _) = intent.app_networks()?;
    let cluster = cli::verify::verify_cluster(&intent, &options)?;
    if models.is_empty() && cluster.is_empty() {
        return Err(CliError::Usage(
            "verify: the input holds no AppNetwork or ClusterBaseline".to_string(),
        ));
    }
    let results: Vec<cli::Verification> = models
        .iter()
        .map(|m| cli::verify_in_with(m, &options.cluster_cidrs, &options.cilium_identity))
        .collect();
    let across = cli::across::verify(&input, &options)?;
    let passed =
        results.iter().all(cli::Verification::passed) && cluster.passed() && across.passed();
    match output {
        VerifyOutput::Text => {
            for v in &results {
                emit(&v.to_string())?;
            }
            emit(&cluster.to_string())?;
            if across.app_networks > 0 {
                emit(&across.to_string())?;
            }
        }
        VerifyOutput::Json => emit(&json(&VerifyReport {
            passed,
            app_networks: results,
            cluster,
            across_namespaces: across,
        })?)?,
    }
    Ok(if passed {
        cli::EXIT_OK
    } else {
        cli::EXIT_FINDINGS
    })
}

async fn why(
    (from, to, port): (&str, &str, Port),
    files: &[PathBuf],
    from_cluster: bool,
    output: VerifyOutput,
    namespace_labels: &[String],
    mut options: RenderOptions,
) -> Result<u8, CliError> {
    options.namespace_labels = namespace_labels_of(namespace_labels)?;
    let input = read_world(files, from_cluster).await?;
    let answer = cli::across::why(&input, &options, from, to, port)?;
    emit(&match output {
        VerifyOutput::Text => answer.to_text(),
        VerifyOutput::Json => json(&answer)?,
    })?;
    Ok(if answer.allowed {
        cli::EXIT_OK
    } else {
        cli::EXIT_FINDINGS
    })
}

/// The two versions `diff` compares.
struct Versions {
    files: Vec<PathBuf>,
    against: Vec<PathBuf>,
    git_base: Option<String>,
    paths: Vec<PathBuf>,
}

fn diff(
    versions: Versions,
    output: DiffOutput,
    exit_code: bool,
    namespace_labels: &[String],
    mut options: RenderOptions,
) -> Result<u8, CliError> {
    options.namespace_labels = namespace_labels_of(namespace_labels)?;
    let (old, new, mut notes) = match &versions.git_base {
        Some(reference) => {
            let dir = std::env::current_dir().map_err(|e| CliError::Usage(e.to_string()))?;
            cli::diff::read_git(&dir, reference, &versions.paths)?
        }
        None => (
            cli::input::read_files(&versions.files)?,
            cli::input::read_files(&versions.against)?,
            Vec::new(),
        ),
    };
    let (old, skipped_old) = cli::diff::intent_only(old);
    let (new, skipped_new) = cli::diff::intent_only(new);
    notes.extend(skipped_old.into_iter().chain(skipped_new));
    for n in &notes {
        eprintln!("tierflow: {n}");
    }
    let d = cli::diff::diff_inputs(&old, &new, &options)?;
    emit(&match output {
        DiffOutput::Text => cli::diff::to_text(&d),
        DiffOutput::Markdown => cli::diff::to_markdown(&d),
        DiffOutput::Json => json(&cli::diff::JsonReport {
            equal: d.is_empty(),
            diff: &d,
        })?,
    })?;
    Ok(if exit_code && !d.is_empty() {
        cli::EXIT_FINDINGS
    } else {
        cli::EXIT_OK
    })
}

async fn lint(objects: Objects, pods: bool, output: LintOutput) -> Result<u8, CliError> {
    let input = read_objects(&objects).await?;
    let identity = objects_identity(&objects).await?;
    let findings =
        tierflow::lint::lint_with(&input.values(), pods || input.holds_pods(), &identity)
            .map_err(|e| input.locate(e))?;
    let report = cli::lint::Report::new(findings);
    emit(&match output {
        LintOutput::Json => json(&report)?,
        LintOutput::Text => cli::lint::to_text(&report),
    })?;
    Ok(if report.has_errors() {
        cli::EXIT_FINDINGS
    } else {
        cli::EXIT_OK
    })
}

/// The pods the flows are between: from files, the cluster, or none.
async fn known_pods(
    files: &[PathBuf],
    from_cluster: bool,
) -> Result<tierflow::adopt::suggest::Known, CliError> {
    if from_cluster {
        return cli::suggest::known(&cli::cluster::read_cluster().await?);
    }
    if files.is_empty() {
        eprintln!(
            "tierflow: no pods given (-f or --from-cluster): the flows' own labels and addresses \
             are used"
        );
        return Ok(tierflow::adopt::suggest::Known::default());
    }
    cli::suggest::known(&cli::input::read_files(files)?)
}

#[allow(clippy::too_many_arguments)]
async fn suggest(
    source: &FlowSource,
    files: &[PathBuf],
    from_cluster: bool,
    options: tierflow::adopt::suggest::Options,
    against: &[PathBuf],
    backend: Option<Backend>,
    cluster_cidrs: &[Cidr],
    output: VerifyOutput,
) -> Result<u8, CliError> {
    let (path, format) = source.file()?;
    let (file, format, observations) = cli::suggest::read_flows(path, Some(format.into()))?;
    eprintln!(
        "tierflow: {}",
        cli::suggest::read_summary(&file, format, &observations)
    );
    let known = known_pods(files, from_cluster).await?;
    if !against.is_empty() {
        let input = cli::input::read_files(against)?;
        let apps = cli::suggest::app_inputs(&input)?;
        if apps.is_empty() {
            return Err(CliError::Usage(
                "suggest --against: the files hold no AppNetwork".to_string(),
            ));
        }
        return emit_audit(&apps, &observations, &known, backend, cluster_cidrs, output);
    }
    let suggestion = tierflow::adopt::suggest::suggest(&observations.flows, &known, &options);
    let left_out = cli::suggest::left_out_text(&suggestion, &known);
    if !left_out.is_empty() {
        eprint!("{left_out}");
    }
    if suggestion.app_networks.is_empty() {
        eprintln!("tierflow: no observed flow involves a namespace to write an AppNetwork for");
        return Ok(cli::EXIT_OK);
    }
    let mut yaml = String::new();
    let from = format!(
        "{} flow records of {file} ({})",
        observations.flows.len(),
        format.as_str()
    );
    for a in &suggestion.app_networks {
        yaml.push_str(&cli::suggest::to_yaml(a, &from)?);
    }
    emit(&yaml)?;
    let replays = cli::suggest::check_suggestion(&suggestion, &observations, &known)?;
    for r in &replays {
        eprint!("{}", cli::suggest::replay_text(r, "the suggestion"));
    }
    Ok(if replays.iter().all(|r| r.passed()) {
        cli::EXIT_OK
    } else {
        cli::EXIT_FINDINGS
    })
}

fn emit_audit(
    apps: &[tierflow::plan::AppInput],
    observations: &tierflow::adopt::flows::Observations,
    known: &tierflow::adopt::suggest::Known,
    backend: Option<Backend>,
    cluster_cidrs: &[Cidr],
    output: VerifyOutput,
) -> Result<u8, CliError> {
    let audit = cli::suggest::audit(apps, observations, known, backend, cluster_cidrs)?;
    emit(&match output {
        VerifyOutput::Text => cli::suggest::audit_text(&audit),
        VerifyOutput::Json => json(&audit)?,
    })?;
    Ok(if audit.passed {
        cli::EXIT_OK
    } else {
        cli::EXIT_FINDINGS
    })
}

fn audit_flows(
    files: &[PathBuf],
    flows: &std::path::Path,
    format: Option<tierflow::adopt::flows::Format>,
    backend: Option<Backend>,
    cluster_cidrs: &[Cidr],
    output: VerifyOutput,
) -> Result<u8, CliError> {
    let (file, format, observations) = cli::suggest::read_flows(flows, format)?;
    eprintln!(
        "tierflow: {}",
        cli::suggest::read_summary(&file, format, &observations)
    );
    let input = cli::input::read_files(files)?;
    let apps = cli::suggest::app_inputs(&input)?;
    if apps.is_empty() {
        return Err(CliError::Usage(
            "verify --flows: the input holds no AppNetwork".to_string(),
        ));
    }
    let known = cli::suggest::known(&input)?;
    emit_audit(&apps, &observations, &known, backend, cluster_cidrs, output)
}
