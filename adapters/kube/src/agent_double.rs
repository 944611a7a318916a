//! An agent double: a small agent on loopback that speaks the real protocol and holds a
//! member's role, position and history. It stands in for the database only (no database can run
//! under kwok); the calls it answers are the real ones, authentication included.

use crate::agent::{
    CommandMessage, CommandResult, CommandState, CopyMessage, NotServingMessage, PROTOCOL_VERSION,
    ProcessMessage, RoleMessage, StatusMessage, TimelineMessage,
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Any free port on the loopback address.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The largest request body the double reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What the double holds: the member's database, as far as the protocol shows it.
#[derive(Clone, Debug)]
pub struct DoubleState {
    /// The status it answers with (lease expiry applied).
    pub status: StatusMessage,
    /// Commands carried out, by id, with their results.
    pub commands: BTreeMap<String, (CommandMessage, CommandResult)>,
    /// Until when the active may accept writes without a renewal.
    pub lease_until: Option<Instant>,
    /// Calls refused for want of the token.
    pub refused: u64,
    /// The member it replicates from (set by a rebuild or a replication restart), found in the
    /// doubles' [`DoubleWorld`].
    pub source: Option<u8>,
    /// No pod runs the agent: every call is answered `503 Service Unavailable`, as a load
    /// balancer would (the operator sees an unreachable agent).
    pub offline: bool,
    /// As the active, it acknowledges writes without waiting for a standby (`relax-sync`, until
    /// `restore-sync` or a promotion).
    pub sync_relaxed: bool,
    /// The stream and effect id of the last `relax-sync` or `restore-sync` carried out.
    pub last_sync_command: Option<(String, u64)>,
    /// How many times the database became the active (a `promote` of the running active
    /// changes nothing and is not counted).
    pub promotions: u32,
    /// Every command call received, in order, with its id: a call sent again under the same id
    /// appears again.
    pub received: Vec<(String, CommandMessage)>,
    /// While set, a command call is received but neither carried out nor answered, as by a
    /// database still busy carrying it out; it goes on once this is cleared.
    pub hold_commands: bool,
    /// While set, `promote` fails with this error, as in a database that cannot leave recovery.
    pub promote_fails: Option<String>,
}

/// What a standby double sees of its source: role, process, position and history.
type Source = (RoleMessage, ProcessMessage, u64, Vec<TimelineMessage>);

/// The doubles of one cluster's members, by member ordinal: a standby copies and replicates
/// from the double of its source.
pub type DoubleWorld = Arc<Mutex<BTreeMap<u8, Arc<Mutex<DoubleState>>>>>;

impl DoubleState {
    /// A database that runs with a complete, empty copy and no role.
    pub fn new() -> DoubleState {
        DoubleState {
            status: StatusMessage {
                process: ProcessMessage::Running,
                role: RoleMessage::None,
                lsn: 0,
                replication_connected: false,
                in_sync: false,
                copy_complete: true,
                copy: CopyMessage::Idle,
                config_hash: 0,
                not_serving: Some(NotServingMessage::Starting),
                history: vec![TimelineMessage {
                    timeline: 1,
                    start_lsn: 0,
                }],
                version: "double-1".into(),
            },
            commands: BTreeMap::new(),
            lease_until: None,
            refused: 0,
            source: None,
            offline: false,
            sync_relaxed: false,
            last_sync_command: None,
            promotions: 0,
            received: Vec::new(),
            hold_commands: false,
            promote_fails: None,
        }
    }

    /// The member's pod is gone: its database stops and its agent is unreachable.
    pub fn go_offline(&mut self) {
        self.stop();
        self.offline = true;
    }

    /// The database restarts in a new pod: running, with no role, its data kept.
    pub fn restart(&mut self, config_hash: u64) {
        self.offline = false;
        let status = &mut self.status;
        status.process = ProcessMessage::Running;
        status.role = RoleMessage::None;
        status.not_serving = Some(NotServingMessage::Restarted);
        status.replication_connected = false;
        status.in_sync = false;
        status.config_hash = config_hash;
        if matches!(status.copy, CopyMessage::Copying { .. }) {
            status.copy = CopyMessage::Failed;
        }
        self.source = None;
        self.lease_until = None;
    }

    /// The database process stops (its pod is gone, or it crashed).
    pub fn stop(&mut self) {
        self.status.process = ProcessMessage::Down;
        self.status.role = RoleMessage::None;
        self.status.replication_connected = false;
        self.status.in_sync = false;
        self.source = None;
    }

    /// The active acknowledges `bytes` more of writes.
    pub fn write(&mut self, bytes: u64) {
        if self.status.role == RoleMessage::Active && self.status.process == ProcessMessage::Running
        {
            self.status.lsn += bytes;
        }
    }

    /// A standby catches up with its source, as the source is now: a copy in progress
    /// completes, a connected replica reaches the source's position.
    fn replicate(&mut self, source: Option<Source>) {
        let Some((role, process, lsn, history)) = source else {
            return;
        };
        let serving = role == RoleMessage::Active && process == ProcessMessage::Running;
        let status = &mut self.status;
        if status.role != RoleMessage::Standby || status.process != ProcessMessage::Running {
            status.in_sync = false;
            return;
        }
        if !serving {
            // The link to a source that stopped serving breaks.
            status.replication_connected = false;
            status.in_sync = false;
            return;
        }
        if matches!(status.copy, CopyMessage::Copying { .. }) {
            // A copy or a rewind completes: the data now follows the source's history.
            status.copy = CopyMessage::Idle;
            status.copy_complete = true;
            status.replication_connected = true;
        }
        if status.replication_connected && status.copy_complete {
            status.lsn = lsn;
            status.history = history;
            status.in_sync = true;
        }
    }

    /// An active whose lease ran out stops accepting writes by itself.
    fn expire_lease(&mut self, now: Instant) {
        let expired = self.lease_until.is_some_and(|until| now >= until);
        if expired && self.status.role == RoleMessage::Active {
            self.status.role = RoleMessage::None;
            self.status.not_serving = Some(NotServingMessage::LeaseExpired);
            self.status.replication_connected = false;
        }
    }

    /// `relax-sync` and `restore-sync` are carried out in the order of their ids: one older, on
    /// the same stream, than the last of the two carried out is refused, so that a late
    /// `relax-sync` never undoes a `restore-sync`.
    fn order_sync_command(&mut self, id: &str, command: &CommandMessage) -> Result<(), String> {
        if !matches!(
            command,
            CommandMessage::RelaxSync | CommandMessage::RestoreSync
        ) {
            return Ok(());
        }
        let parsed = id
            .rsplit_once('.')
            .and_then(|(stream, number)| Some((stream.to_string(), number.parse::<u64>().ok()?)));
        let Some((stream, number)) = parsed else {
            return Ok(());
        };
        if let Some((last_stream, last)) = &self.last_sync_command
            && *last_stream == stream
            && number < *last
        {
            return Err("an older synchronous commit command".into());
        }
        self.last_sync_command = Some((stream, number));
        Ok(())
    }

    fn carry_out(&mut self, command: &CommandMessage) -> Result<(), String> {
        let status = &mut self.status;
        if status.process != ProcessMessage::Running {
            return Err("the database is not running".into());
        }
        match command {
            CommandMessage::Promote => {
                if !status.copy_complete {
                    return Err("the copy is not complete".into());
                }
                if let Some(error) = &self.promote_fails {
                    return Err(error.clone());
                }
                if status.role != RoleMessage::Active {
                    let timeline = status.history.last().map_or(1, |last| last.timeline + 1);
                    status.history.push(TimelineMessage {
                        timeline,
                        start_lsn: status.lsn,
                    });
                    self.promotions += 1;
                }
                status.role = RoleMessage::Active;
                status.not_serving = None;
                self.sync_relaxed = false;
            }
            // A demoted or fenced database replicates from no one until told to: the link it
            // reported as the active (its standby's) is not a link of its own.
            CommandMessage::Demote => {
                status.role = RoleMessage::Standby;
                status.not_serving = Some(NotServingMessage::Demoted);
                status.replication_connected = false;
                status.in_sync = false;
                self.source = None;
            }
            CommandMessage::Fence => {
                status.role = RoleMessage::None;
                status.not_serving = Some(NotServingMessage::Fenced);
                status.replication_connected = false;
                status.in_sync = false;
                self.source = None;
            }
            CommandMessage::Rebuild { from } => {
                self.source = Some(from.member);
                status.role = RoleMessage::Standby;
                status.not_serving = None;
                status.lsn = 0;
                status.copy_complete = false;
                status.copy = CopyMessage::Copying { percent: 0 };
                status.replication_connected = false;
                status.in_sync = false;
            }
            CommandMessage::RelaxSync | CommandMessage::RestoreSync => {
                if status.role != RoleMessage::Active {
                    return Err("the database is not the active".into());
                }
                self.sync_relaxed = *command == CommandMessage::RelaxSync;
            }
            CommandMessage::Rewind { from } => {
                if !status.copy_complete {
                    return Err("the copy is not complete: there is nothing to rewind".into());
                }
                // The diverged suffix is discarded; the rest of the data is kept, and the source
                // streams what follows once the rewind completes.
                self.source = Some(from.member);
                status.role = RoleMessage::Standby;
                status.not_serving = None;
                status.copy_complete = false;
                status.copy = CopyMessage::Copying { percent: 0 };
                status.replication_connected = false;
                status.in_sync = false;
            }
            CommandMessage::RestartReplication { from } => {
                self.source = Some(from.member);
                status.role = RoleMessage::Standby;
                status.not_serving = None;
                status.replication_connected = true;
            }
        }
        Ok(())
    }
}

impl Default for DoubleState {
    fn default() -> DoubleState {
        DoubleState::new()
    }
}

/// A running agent double; it stops when dropped.
pub struct AgentDouble {
    address: SocketAddr,
    state: Arc<Mutex<DoubleState>>,
    server: tokio::task::JoinHandle<()>,
}

impl AgentDouble {
    /// Starts a double on a loopback port that accepts calls carrying `token`.
    pub async fn start(token: &str) -> std::io::Result<AgentDouble> {
        AgentDouble::start_in(token, None, None).await
    }

    /// Starts the double of `member` in `world`, where it finds the doubles it replicates from.
    pub async fn start_member(
        token: &str,
        world: &DoubleWorld,
        member: u8,
    ) -> std::io::Result<AgentDouble> {
        let double = AgentDouble::start_in(token, Some(Arc::clone(world)), Some(member)).await?;
        world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(member, Arc::clone(&double.state));
        Ok(double)
    }

    /// Starts the double of `member` in `world`, listening on `address` (a loopback address of
    /// its own, as an agent's port forwarded to the machine of an operator run outside the
    /// cluster is).
    pub async fn start_member_at(
        token: &str,
        world: &DoubleWorld,
        member: u8,
        address: SocketAddr,
    ) -> std::io::Result<AgentDouble> {
        let double =
            AgentDouble::start_with(token, Some(Arc::clone(world)), Some(member), None, address)
                .await?;
        world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(member, Arc::clone(&double.state));
        Ok(double)
    }

    /// Starts a double that speaks TLS with `tls` (its certificate and key), on a loopback port.
    pub async fn start_tls(
        token: &str,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<AgentDouble> {
        AgentDouble::start_with(token, None, None, Some(tls), LOOPBACK).await
    }

    async fn start_in(
        token: &str,
        world: Option<DoubleWorld>,
        member: Option<u8>,
    ) -> std::io::Result<AgentDouble> {
        AgentDouble::start_with(token, world, member, None, LOOPBACK).await
    }

    async fn start_with(
        token: &str,
        world: Option<DoubleWorld>,
        member: Option<u8>,
        tls: Option<Arc<rustls::ServerConfig>>,
        bind: SocketAddr,
    ) -> std::io::Result<AgentDouble> {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let listener = TcpListener::bind(bind).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(DoubleState::new()));
        let shared = Arc::clone(&state);
        let token: Arc<str> = Arc::from(token);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                let token = Arc::clone(&token);
                let world = world.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        let token = Arc::clone(&token);
                        let world = world.clone();
                        async move {
                            Ok::<_, hyper::Error>(
                                answer(request, &state, world.as_ref(), member, &token).await,
                            )
                        }
                    });
                    // A connection that breaks (or a handshake that fails) is the caller's
                    // concern, not the double's.
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Ok(AgentDouble {
            address,
            state,
            server,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its state, to read or to change (the database's position grows, its process crashes).
    pub fn state(&self) -> MutexGuard<'_, DoubleState> {
        lock(&self.state)
    }
}

impl Drop for AgentDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Mutex<DoubleState>) -> MutexGuard<'_, DoubleState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).expect("a protocol message serializes");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(message.to_owned())))
        .expect("a valid response")
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<DoubleState>,
    world: Option<&DoubleWorld>,
    member: Option<u8>,
    token: &str,
) -> Response<Full<Bytes>> {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|given| given == token);
    if lock(state).offline {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no pod runs this agent");
    }
    if !authorized {
        lock(state).refused += 1;
        return text(StatusCode::UNAUTHORIZED, "a bearer token is required");
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let prefix = format!("/v{PROTOCOL_VERSION}/");
    let Some(route) = path.strip_prefix(&prefix) else {
        return text(StatusCode::NOT_FOUND, "unknown protocol version");
    };
    let now = Instant::now();
    match (method, route) {
        (Method::GET, "status") => {
            let lease = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("leaseSeconds="))
                .and_then(|seconds| seconds.parse::<u64>().ok());
            // The source is read before this double is locked: two doubles never hold each
            // other's lock.
            let source_member = lock(state).source;
            let source = source_member
                .and_then(|member| {
                    let world = world?
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    world.get(&member).cloned()
                })
                .map(|source| {
                    let mut source = lock(&source);
                    source.expire_lease(now);
                    (
                        source.status.role,
                        source.status.process,
                        source.status.lsn,
                        source.status.history.clone(),
                    )
                });
            // An active sees its standby connected when a double replicates from it.
            let replicas = match (member, world) {
                (Some(me), Some(world)) => {
                    let others: Vec<_> = world
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .iter()
                        .filter(|(member, _)| **member != me)
                        .map(|(_, other)| Arc::clone(other))
                        .collect();
                    others.iter().any(|other| {
                        let other = lock(other);
                        other.source == Some(me)
                            && other.status.replication_connected
                            && other.status.role == RoleMessage::Standby
                            && other.status.process == ProcessMessage::Running
                    })
                }
                _ => false,
            };
            let mut state = lock(state);
            state.expire_lease(now);
            state.replicate(source);
            if state.status.role == RoleMessage::Active {
                state.status.replication_connected = replicas;
            }
            if let Some(seconds) = lease {
                state.lease_until = Some(now + std::time::Duration::from_secs(seconds));
            }
            json(StatusCode::OK, &state.status)
        }
        (Method::POST, route) if route.starts_with("commands/") => {
            let id = route["commands/".len()..].to_owned();
            if id.is_empty() || id.contains('/') {
                return text(StatusCode::BAD_REQUEST, "a command id is one path segment");
            }
            let body = match http_body_util::Limited::new(request.into_body(), MAX_REQUEST_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(error) => return text(StatusCode::BAD_REQUEST, &error.to_string()),
            };
            let command: CommandMessage = match serde_json::from_slice(&body) {
                Ok(command) => command,
                Err(error) => return text(StatusCode::BAD_REQUEST, &error.to_string()),
            };
            lock(state).received.push((id.clone(), command.clone()));
            loop {
                let held = lock(state).hold_commands;
                if !held {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let mut state = lock(state);
            if let Some((first, result)) = state.commands.get(&id) {
                if *first != command {
                    return text(
                        StatusCode::CONFLICT,
                        "another command was sent with this id",
                    );
                }
                return json(StatusCode::OK, result);
            }
            // Time passed while the call was held.
            state.expire_lease(Instant::now());
            let outcome = state
                .order_sync_command(&id, &command)
                .and_then(|()| state.carry_out(&command));
            let result = CommandResult {
                id: id.clone(),
                state: match outcome {
                    Ok(()) => CommandState::Done,
                    Err(_) => CommandState::Failed,
                },
                error: outcome.err(),
            };
            state.commands.insert(id, (command, result.clone()));
            json(StatusCode::OK, &result)
        }
        _ => text(StatusCode::NOT_FOUND, "no such call"),
    }
}
