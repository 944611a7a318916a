//! The agent protocol, version 1 (`docs/agent-protocol.md`): HTTP and JSON between the operator
//! and the agent beside each member.
//!
//! The operator asks for the member's status ([`AgentClient::status`]), which also renews the
//! agent's lease, and sends commands ([`AgentClient::command`]), each named by the cluster's log
//! stream and the engine's effect id ([`CommandId`]) so that a repeated command is carried out
//! once. Every call carries the operator's
//! bearer token; an agent refuses a call without it.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tandem_engine::{
    Action, AgentReport, ConfigHash, CopyProgress, EffectError, EffectId, Lsn, MemberId,
    NotServing, Process, Role, Timeline,
};

/// The protocol's version, in the path of every call (`/v1/...`).
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest response body the client reads; a larger one is a protocol error.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A member's status, as `GET /v1/status` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusMessage {
    /// The database process: `starting`, `running`, `down`, `init-failed`.
    pub process: ProcessMessage,
    /// Its role: `active`, `standby`, `none`.
    pub role: RoleMessage,
    /// The position of its data (bytes of log).
    pub lsn: u64,
    /// A standby: connected to the active. The active: a standby is connected.
    pub replication_connected: bool,
    /// A standby confirmed as synchronous and caught up.
    pub in_sync: bool,
    /// Whether its copy of the data is complete.
    pub copy_complete: bool,
    /// A copy in progress or failed.
    pub copy: CopyMessage,
    /// The hash of the configuration the database runs.
    pub config_hash: u64,
    /// Why the database is not the active, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_serving: Option<NotServingMessage>,
    /// The data's history: each timeline and the position it started at (a promotion starts a
    /// new one).
    #[serde(default)]
    pub history: Vec<TimelineMessage>,
    /// The agent's software version.
    pub version: String,
}

/// A database process's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessMessage {
    /// Starting, not serving yet.
    Starting,
    /// Up.
    Running,
    /// Stopped or crashed.
    Down,
    /// Initialization failed for good.
    InitFailed,
}

/// A database's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleMessage {
    /// Accepts writes.
    Active,
    /// Replicates from the active.
    Standby,
    /// Neither.
    None,
}

/// A copy's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum CopyMessage {
    /// No copy runs.
    Idle,
    /// A copy runs.
    Copying {
        /// How far, 0 to 100.
        percent: u8,
    },
    /// The last copy failed.
    Failed,
}

/// Why a database is not the active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotServingMessage {
    /// Starting.
    Starting,
    /// Crashed and restarted.
    Restarted,
    /// Demoted on command.
    Demoted,
    /// Fenced on command.
    Fenced,
    /// Stopped accepting writes when its lease ran out.
    LeaseExpired,
}

/// One timeline of the data's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineMessage {
    /// The timeline's number.
    pub timeline: u64,
    /// The position it started at.
    pub start_lsn: u64,
}

/// A command, as `POST /v1/commands/{id}` carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum CommandMessage {
    /// Take the active role.
    Promote,
    /// Give the active role up and replicate.
    Demote,
    /// Stop accepting writes, whatever the role.
    Fence,
    /// Wipe the data and copy it afresh from `from`.
    Rebuild {
        /// The source.
        from: PeerMessage,
    },
    /// Reconnect replication to `from`, keeping the data.
    RestartReplication {
        /// The active to replicate from.
        from: PeerMessage,
    },
    /// Discard the data's suffix past the last position its history shares with `from`'s
    /// (`pg_rewind`), then replicate from `from`. Refused when the agent cannot rewind.
    Rewind {
        /// The active whose history the member rejoins.
        from: PeerMessage,
    },
    /// The active acknowledges writes without waiting for its standby (`syncPreferred`, the
    /// standby out; PostgreSQL: `synchronous_standby_names` emptied).
    RelaxSync,
    /// The active waits for its standby again before acknowledging a write.
    RestoreSync,
}

/// Another member, as a command names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMessage {
    /// Its ordinal.
    pub member: u8,
    /// Where its database replicates from (host:port).
    pub address: String,
}

/// A command's id: the cluster's log stream and the engine's effect id (`<stream>.<id>`). Effect
/// ids start again at 1 on a new stream (after a lost log); the stream keeps an agent from
/// taking a new command for a repeat of an old one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommandId(String);

impl CommandId {
    /// The id of effect `id` of the stream `stream`; characters other than letters, digits,
    /// `.`, `_` and `-` become `_`, so that the id is one path segment.
    pub fn new(stream: &str, id: EffectId) -> CommandId {
        let stream: String = stream
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        CommandId(format!("{stream}.{}", id.0))
    }

    /// The id as the path and the result carry it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a command came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    /// The command's id.
    pub id: String,
    /// `done` or `failed`.
    pub state: CommandState,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a command was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandState {
    /// Carried out.
    Done,
    /// Refused or failed; the error says why.
    Failed,
}

impl From<&StatusMessage> for AgentReport {
    fn from(status: &StatusMessage) -> AgentReport {
        AgentReport {
            process: match status.process {
                ProcessMessage::Starting => Process::Starting,
                ProcessMessage::Running => Process::Running,
                ProcessMessage::Down => Process::Down,
                ProcessMessage::InitFailed => Process::InitFailed,
            },
            role: match status.role {
                RoleMessage::Active => Role::Active,
                RoleMessage::Standby => Role::Standby,
                RoleMessage::None => Role::None,
            },
            lsn: Lsn(status.lsn),
            replication_connected: status.replication_connected,
            in_sync: status.in_sync,
            copy_complete: status.copy_complete,
            config_hash: ConfigHash(status.config_hash),
            copy: match status.copy {
                CopyMessage::Idle => CopyProgress::Idle,
                CopyMessage::Copying { percent } => CopyProgress::Copying {
                    percent: percent.min(100),
                },
                CopyMessage::Failed => CopyProgress::Failed,
            },
            not_serving: status.not_serving.map(|reason| match reason {
                NotServingMessage::Starting => NotServing::Starting,
                NotServingMessage::Restarted => NotServing::Restarted,
                NotServingMessage::Demoted => NotServing::Demoted,
                NotServingMessage::Fenced => NotServing::Fenced,
                NotServingMessage::LeaseExpired => NotServing::LeaseExpired,
            }),
            timeline: timeline(&status.history),
        }
    }
}

/// The engine's view of a reported history: the last timeline, the one before it, and where the
/// last one started. An empty history, or one whose timelines do not increase, is unknown.
fn timeline(history: &[TimelineMessage]) -> Timeline {
    let ordered = history
        .windows(2)
        .all(|pair| pair[0].timeline < pair[1].timeline && pair[0].start_lsn <= pair[1].start_lsn);
    match history {
        [.., parent, last] if ordered => Timeline {
            id: last.timeline,
            parent: parent.timeline,
            branched_at: Lsn(last.start_lsn),
        },
        [only] => Timeline {
            id: only.timeline,
            parent: 0,
            branched_at: Lsn(only.start_lsn),
        },
        _ => Timeline::default(),
    }
}

/// Where each member's agent listens: the pod's IP and the agent's port in a cluster, loopback
/// ports in tests.
pub trait AgentResolver: Send + Sync {
    /// The agent of `member`, if it can be reached at all (no pod IP yet: `None`).
    fn agent(&self, member: MemberId) -> Option<SocketAddr>;
    /// Where `member`'s database replicates from, for commands that name a source.
    fn replication_address(&self, member: MemberId) -> Option<String>;
}

/// How a call went wrong.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The member has no address yet.
    #[error("{0} has no agent address")]
    NoAddress(MemberId),
    /// No answer within the call's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("connection: {0}")]
    Connection(String),
    /// The agent refused the call: not authenticated (401, 403).
    #[error("refused: {status}: {body}")]
    Unauthorized {
        /// The HTTP status.
        status: StatusCode,
        /// What it said.
        body: String,
    },
    /// Any other status than success.
    #[error("{status}: {body}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// What it said.
        body: String,
    },
    /// The answer does not follow the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The command was carried to the agent and failed there.
    #[error("the command failed: {0}")]
    Failed(String),
}

impl AgentError {
    /// The engine's view of the failure.
    pub fn effect_error(&self) -> EffectError {
        match self {
            AgentError::Timeout(_) | AgentError::Connection(_) | AgentError::NoAddress(_) => {
                EffectError::Timeout
            }
            AgentError::Status { status, .. } if *status == StatusCode::CONFLICT => {
                EffectError::Conflict
            }
            AgentError::Status { status, .. } if status.is_server_error() => {
                EffectError::ServerError
            }
            AgentError::Unauthorized { .. }
            | AgentError::Status { .. }
            | AgentError::Protocol(_)
            | AgentError::Failed(_) => EffectError::Rejected,
        }
    }
}

/// Timeouts of the calls.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A status call (a poll).
    pub status: Duration,
    /// A command (a promotion may take a while).
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            // The spec's timing rules count on a poll taking no longer than this.
            status: Duration::from_secs(u64::from(tandem_engine::config::POLL_DEADLINE_S)),
            command: Duration::from_secs(10),
        }
    }
}

/// TLS for the agent protocol: the operator checks each agent's certificate against `roots`,
/// for the name `server_name`, which every agent's certificate carries (agents are reached by
/// pod IP, so the name is not the address).
#[derive(Clone, Debug)]
pub struct AgentTls {
    /// The certificate authorities agents' certificates are issued by.
    pub roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The name every agent's certificate carries.
    pub server_name: String,
}

/// The operator's client of the agents.
#[derive(Clone)]
pub struct AgentClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    scheme: &'static str,
    token: String,
    timeouts: Timeouts,
}

impl AgentClient {
    /// The timeouts of its calls.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// A client that authenticates with `token`, over plain HTTP.
    pub fn new(token: impl Into<String>, timeouts: Timeouts) -> AgentClient {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(Self::http(timeouts));
        AgentClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            scheme: "http",
            token: token.into(),
            timeouts,
        }
    }

    /// A client that authenticates with `token`, over TLS: only an agent whose certificate
    /// `tls` trusts is answered.
    pub fn with_tls(
        token: impl Into<String>,
        timeouts: Timeouts,
        tls: &AgentTls,
    ) -> Result<AgentClient, AgentError> {
        let mut roots = rustls::RootCertStore::empty();
        for root in &tls.roots {
            roots
                .add(root.clone())
                .map_err(|error| AgentError::Protocol(format!("a CA certificate: {error}")))?;
        }
        let name = rustls::pki_types::ServerName::try_from(tls.server_name.clone())
            .map_err(|error| AgentError::Protocol(format!("the agents' TLS name: {error}")))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            .enable_http1()
            .wrap_connector(Self::http(timeouts));
        Ok(AgentClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            scheme: "https",
            token: token.into(),
            timeouts,
        })
    }

    fn http(timeouts: Timeouts) -> HttpConnector {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeouts.status));
        connector.enforce_http(false);
        connector
    }

    /// Polls the agent at `address`: its status, and a renewal of its lease for
    /// `lease_seconds`, or no lease at all (a standalone member, `Spec::agent_lease`).
    pub async fn status(
        &self,
        address: SocketAddr,
        lease_seconds: Option<u32>,
    ) -> Result<StatusMessage, AgentError> {
        let path = match lease_seconds {
            Some(seconds) => format!("/v{PROTOCOL_VERSION}/status?leaseSeconds={seconds}"),
            None => format!("/v{PROTOCOL_VERSION}/status"),
        };
        let body = self
            .call(address, Method::GET, &path, None, self.timeouts.status)
            .await?;
        serde_json::from_slice(&body).map_err(|error| AgentError::Protocol(error.to_string()))
    }

    /// Sends the command `id` to the agent at `address`. Repeating an id returns the first
    /// result and does nothing more.
    pub async fn command(
        &self,
        address: SocketAddr,
        id: &CommandId,
        command: &CommandMessage,
    ) -> Result<(), AgentError> {
        let path = format!("/v{PROTOCOL_VERSION}/commands/{}", id.as_str());
        let body = serde_json::to_vec(command).expect("a command serializes");
        let answer = self
            .call(
                address,
                Method::POST,
                &path,
                Some(body),
                self.timeouts.command,
            )
            .await?;
        let result: CommandResult = serde_json::from_slice(&answer)
            .map_err(|error| AgentError::Protocol(error.to_string()))?;
        match result.state {
            CommandState::Done => Ok(()),
            CommandState::Failed => Err(AgentError::Failed(result.error.unwrap_or_default())),
        }
    }

    async fn call(
        &self,
        address: SocketAddr,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Bytes, AgentError> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}://{address}{path}", self.scheme))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| AgentError::Protocol(error.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| AgentError::Connection(error.to_string()))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|error| AgentError::Protocol(error.to_string()))?
                .to_bytes();
            Ok::<_, AgentError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| AgentError::Timeout(timeout))??;
        let text = || String::from_utf8_lossy(&body).into_owned();
        match status {
            status if status.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(AgentError::Unauthorized {
                status,
                body: text(),
            }),
            status => Err(AgentError::Status {
                status,
                body: text(),
            }),
        }
    }
}

/// The agent command that carries out `action`, if it is one; `None` for effects on the
/// Kubernetes API. A command that names a source needs its replication address.
pub fn command_for(
    action: &Action,
    resolver: &dyn AgentResolver,
) -> Option<Result<(MemberId, CommandMessage), AgentError>> {
    let peer = |from: MemberId| {
        resolver
            .replication_address(from)
            .map(|address| PeerMessage {
                member: from.0,
                address,
            })
            .ok_or(AgentError::NoAddress(from))
    };
    let command = match action {
        Action::Promote { member } => Ok((*member, CommandMessage::Promote)),
        Action::Demote { member } => Ok((*member, CommandMessage::Demote)),
        Action::Fence { member } => Ok((*member, CommandMessage::Fence)),
        Action::Rebuild { member, from } => {
            peer(*from).map(|from| (*member, CommandMessage::Rebuild { from }))
        }
        Action::RestartReplication { member, from } => {
            peer(*from).map(|from| (*member, CommandMessage::RestartReplication { from }))
        }
        Action::Rewind { member, from } => {
            peer(*from).map(|from| (*member, CommandMessage::Rewind { from }))
        }
        Action::RelaxSync { member } => Ok((*member, CommandMessage::RelaxSync)),
        Action::RestoreSync { member } => Ok((*member, CommandMessage::RestoreSync)),
        Action::DeletePod { .. }
        | Action::ProvisionLocalPv { .. }
        | Action::BindPvc { .. }
        | Action::ReleaseVolume { .. }
        | Action::SetReplicas { .. }
        | Action::LabelPod { .. }
        | Action::UpdateStatus(_)
        | Action::EmitEvent { .. } => return None,
    };
    Some(command)
}
