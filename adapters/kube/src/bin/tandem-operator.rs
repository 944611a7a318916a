//! `tandem-operator`: runs the operator against the cluster of the current kubeconfig (or the
//! in-cluster service account), with its event log in `--log-dir`.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tandem_kube::agent::{AgentTls, Timeouts};
use tandem_kube::controller::{Agents, OperatorConfig};
use tandem_kube::leader::{Leadership, LeaseConfig};
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
    /// Reach each member's agent at this IP address instead of its pod's, `{member}` replaced
    /// by the member's ordinal: for an operator run outside the cluster, with each agent's port
    /// forwarded to a loopback address of its own (`127.0.0.1{member}`).
    #[arg(long, env = "TANDEM_AGENT_HOST")]
    agent_host: Option<String>,
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
    /// Elect a leader among the replicas with a Lease; only the leader acts. Turn it off only
    /// where one process can ever run.
    #[arg(long, env = "TANDEM_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The Lease's name.
    #[arg(long, env = "TANDEM_LEASE_NAME", default_value = "tandem-operator")]
    lease_name: String,
    /// The Lease's namespace (the Deployment passes its own; else `--namespace`, else
    /// `default`).
    #[arg(long, env = "TANDEM_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This process's identity in the election (the Deployment passes the pod's name); a
    /// random suffix makes each process another candidate.
    #[arg(long, env = "TANDEM_IDENTITY")]
    identity: Option<String>,
    /// How long the Lease holds after its last renewal, in seconds. At least the renew
    /// deadline plus the 10 s an effect's call may take, or a deposed leader's last effect may
    /// land after its successor began.
    #[arg(long, env = "TANDEM_LEASE_DURATION_SECONDS", default_value_t = 25)]
    lease_duration_seconds: u64,
    /// How long after its last successful renewal began the leader stops acting, in seconds
    /// (shorter than the lease).
    #[arg(long, env = "TANDEM_RENEW_DEADLINE_SECONDS", default_value_t = 10)]
    renew_deadline_seconds: u64,
    /// How often a replica tries to take the Lease, and the leader renews it, in seconds.
    #[arg(long, env = "TANDEM_RETRY_PERIOD_SECONDS", default_value_t = 2)]
    retry_period_seconds: u64,
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
    let agents = match &args.agent_host {
        Some(host) => Agents::template(host, args.agent_port).map_err(anyhow::Error::msg)?,
        None => Agents::PodIp {
            port: args.agent_port,
        },
    };
    let lease = args
        .leader_elect
        .then(|| {
            let namespace = args
                .lease_namespace
                .clone()
                .or_else(|| args.namespace.clone())
                .unwrap_or_else(|| "default".into());
            let identity = format!(
                "{}_{:08x}",
                args.identity
                    .clone()
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .unwrap_or_else(|| "tandem-operator".into()),
                random_suffix()
            );
            let lease = LeaseConfig {
                lease_duration: Duration::from_secs(args.lease_duration_seconds),
                renew_deadline: Duration::from_secs(args.renew_deadline_seconds),
                retry_period: Duration::from_secs(args.retry_period_seconds),
                ..LeaseConfig::new(&namespace, &args.lease_name, &identity)
            };
            let call = Timeouts::default().command;
            if lease.renew_deadline + call > lease.lease_duration {
                tracing::warn!(
                    lease_s = lease.lease_duration.as_secs(),
                    renew_deadline_s = lease.renew_deadline.as_secs(),
                    call_timeout_s = call.as_secs(),
                    "the lease is shorter than the renew deadline plus an effect's call timeout: \
                     a deposed leader's last effect may land after its successor began"
                );
            }
            lease.check().map(|()| lease).map_err(anyhow::Error::msg)
        })
        .transpose()
        .context("the leader election's settings")?;
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
    let leadership = match lease {
        Some(lease) => {
            let floor =
                tandem_kube::controller::epoch_floor(&client, &log, args.namespace.as_deref())
                    .await
                    .context("listing the ZenithClusters for the epochs they carry")?;
            Some(Leadership::start(client.clone(), lease, floor))
        }
        None => None,
    };
    let config = OperatorConfig {
        agent_token: token,
        agent_tls,
        agents,
        timeouts: Timeouts::default(),
        local_root: args.local_root,
        namespace: args.namespace,
        metrics: Arc::clone(&metrics),
        leadership: leadership.clone(),
    };
    tracing::info!(log = %args.log_dir.display(), "tandem-operator started");
    let result = tokio::select! {
        result = tandem_kube::controller::run(client, Arc::new(log), config) => {
            result.context("the operator stopped")
        }
        () = terminated() => {
            tracing::info!("asked to stop: stopping");
            Ok(())
        }
    };
    // Another replica takes over at once instead of after the lease.
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    result
}

/// SIGTERM (what Kubernetes sends a pod it stops) or SIGINT.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A suffix that makes this process's identity its own.
fn random_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}
