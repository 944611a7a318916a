//! `tandem-operator`: runs the operator against the cluster of the current kubeconfig (or the
//! in-cluster service account), with its event log in `--log-dir`.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use tandem_kube::agent::{AgentTls, Timeouts};
use tandem_kube::controller::{Agents, OperatorConfig};
use tandem_kube::metrics::Metrics;
use tandem_sled::{EventLog, LogConfig};

/// The tandem operator for ZenithClusters.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The directory of the event log (the Deployment mounts a volume there).
    #[arg(long, env = "TANDEM_LOG_DIR")]
    log_dir: PathBuf,
    /// The file holding the token agents accept (a projected Secret).
    #[arg(long, env = "TANDEM_AGENT_TOKEN_FILE")]
    agent_token_file: PathBuf,
    /// The port each member's agent listens on, at its pod's IP.
    #[arg(long, env = "TANDEM_AGENT_PORT", default_value_t = 8008)]
    agent_port: u16,
    /// The directory on each node under which local PVs are made.
    #[arg(long, env = "TANDEM_LOCAL_ROOT", default_value = "/mnt/tandem")]
    local_root: String,
    /// The PEM file of the CA that issued the agents' certificates: agent calls then go over
    /// TLS (plain HTTP without it).
    #[arg(long, env = "TANDEM_AGENT_CA_FILE")]
    agent_ca_file: Option<PathBuf>,
    /// The name every agent's certificate carries (agents are reached by pod IP).
    #[arg(long, env = "TANDEM_AGENT_TLS_NAME", default_value = "agent.tandem")]
    agent_tls_name: String,
    /// Watch this namespace only (all namespaces by default).
    #[arg(long, env = "TANDEM_NAMESPACE")]
    namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are answered.
    #[arg(long, env = "TANDEM_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: std::net::SocketAddr,
    /// The log's format: `text` for people, `json` for a log collector. `RUST_LOG` filters it
    /// (default `info`).
    #[arg(long, env = "TANDEM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How the operator writes its log.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    /// One line a message, for people.
    Text,
    /// One JSON object a message.
    Json,
}

/// mimalloc: recovering a long log allocates and frees millions of small strings across the
/// reader threads, which glibc's allocator makes the largest cost of a recovery
/// (`docs/event-log.md`, What durability costs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let token = std::fs::read_to_string(&args.agent_token_file)
        .with_context(|| {
            format!(
                "reading the agent token {}",
                args.agent_token_file.display()
            )
        })?
        .trim()
        .to_string();
    anyhow::ensure!(
        !token.is_empty(),
        "the agent token file {} is empty",
        args.agent_token_file.display()
    );
    let agent_tls = match &args.agent_ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let roots = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    anyhow::anyhow!("reading the agents' CA {}: {error}", path.display())
                })?;
            anyhow::ensure!(
                !roots.is_empty(),
                "the agents' CA file {} holds no certificate",
                path.display()
            );
            Some(AgentTls {
                roots,
                server_name: args.agent_tls_name.clone(),
            })
        }
        None => None,
    };
    let log = EventLog::open(&args.log_dir, LogConfig::default())
        .with_context(|| format!("opening the event log in {}", args.log_dir.display()))?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (kubeconfig or in-cluster)")?;
    let metrics = Arc::new(Metrics::new());
    let (metrics_address, _server) =
        tandem_kube::metrics::serve(args.metrics_address, Arc::clone(&metrics))
            .await
            .with_context(|| format!("serving the metrics on {}", args.metrics_address))?;
    tracing::info!(%metrics_address, "answering /metrics, /healthz and /readyz");
    let config = OperatorConfig {
        agent_token: token,
        agent_tls,
        agents: Agents::PodIp {
            port: args.agent_port,
        },
        timeouts: Timeouts::default(),
        local_root: args.local_root,
        namespace: args.namespace,
        metrics: Arc::clone(&metrics),
    };
    tracing::info!(log = %args.log_dir.display(), "tandem-operator started");
    tokio::select! {
        result = tandem_kube::controller::run(client, Arc::new(log), config) => {
            result.context("the operator stopped")?;
        }
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
    }
    Ok(())
}
