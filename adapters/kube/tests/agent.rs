//! The agent protocol, between the operator's client and an agent double, over real HTTP.

use std::net::SocketAddr;
use std::time::Duration;
use tandem_engine::{
    Action, AgentReport, EffectError, EffectId, Lsn, MemberId, NotServing, Process, Role, Timeline,
};
use tandem_kube::agent::{
    AgentClient, AgentError, AgentResolver, AgentTls, CommandId, CommandMessage, NotServingMessage,
    PeerMessage, RoleMessage, TimelineMessage, Timeouts, command_for,
};
use tandem_kube::agent_double::AgentDouble;

const TOKEN: &str = "operator-token";

fn client(token: &str) -> AgentClient {
    AgentClient::new(
        token,
        Timeouts {
            status: Duration::from_millis(500),
            command: Duration::from_millis(500),
        },
    )
}

#[tokio::test]
async fn a_status_reads_as_the_engine_reads_a_report() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    agent.state().status.lsn = 4096;
    let status = client(TOKEN)
        .status(agent.address(), Some(22))
        .await
        .expect("answered");
    let report = AgentReport::from(&status);
    assert_eq!(report.process, Process::Running);
    assert_eq!(report.role, Role::None);
    assert_eq!(report.lsn.0, 4096);
    assert!(report.copy_complete);
    assert_eq!(report.not_serving, Some(NotServing::Starting));
    assert_eq!(
        report.timeline,
        Timeline {
            id: 1,
            parent: 0,
            branched_at: Lsn(0)
        }
    );
}

#[tokio::test]
async fn a_reported_history_reads_as_its_last_branch() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    let timeline = |timeline, start_lsn| TimelineMessage {
        timeline,
        start_lsn,
    };
    let read = |history: Vec<TimelineMessage>| {
        let agent = &agent;
        async move {
            agent.state().status.history = history;
            let status = client(TOKEN)
                .status(agent.address(), Some(22))
                .await
                .expect("answered");
            AgentReport::from(&status).timeline
        }
    };
    let three = read(vec![timeline(1, 0), timeline(2, 4096), timeline(5, 9000)]).await;
    assert_eq!(
        three,
        Timeline {
            id: 5,
            parent: 2,
            branched_at: Lsn(9000)
        }
    );
    // No history, or one out of order, cannot be placed.
    assert_eq!(read(Vec::new()).await, Timeline::default());
    assert_eq!(
        read(vec![timeline(3, 0), timeline(2, 10)]).await,
        Timeline::default()
    );
    assert_eq!(
        read(vec![timeline(1, 500), timeline(2, 10)]).await,
        Timeline::default()
    );
}

/// Sends `command` as effect `id` of the stream `ns.zc`.
async fn send(agent: &AgentDouble, id: u64, command: CommandMessage) -> Result<(), AgentError> {
    client(TOKEN)
        .command(
            agent.address(),
            &CommandId::new("ns.zc", EffectId(id)),
            &command,
        )
        .await
}

#[tokio::test]
async fn only_the_active_relaxes_and_restores_synchronous_commit() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    let refused = send(&agent, 1, CommandMessage::RelaxSync)
        .await
        .expect_err("not the active");
    assert_eq!(refused.effect_error(), EffectError::Rejected);
    for (id, command) in [(2, CommandMessage::Promote), (3, CommandMessage::RelaxSync)] {
        send(&agent, id, command).await.expect("carried out");
    }
    assert!(agent.state().sync_relaxed);
    send(&agent, 4, CommandMessage::RestoreSync)
        .await
        .expect("restored");
    assert!(!agent.state().sync_relaxed);
    // A relax that reaches the agent after a later restore is refused.
    let older = send(&agent, 0, CommandMessage::RelaxSync)
        .await
        .expect_err("older than the restore");
    assert_eq!(older.effect_error(), EffectError::Rejected);
    assert!(!agent.state().sync_relaxed);
    assert!(matches!(
        command_for(
            &Action::RelaxSync {
                member: MemberId(0)
            },
            &Loopback(Vec::new())
        ),
        Some(Ok((MemberId(0), CommandMessage::RelaxSync)))
    ));
}

#[tokio::test]
async fn a_rewind_keeps_the_data_and_follows_the_source() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    agent.state().status.lsn = 7000;
    let source = PeerMessage {
        member: 1,
        address: "127.0.0.1:7001".into(),
    };
    send(&agent, 9, CommandMessage::Rewind { from: source })
        .await
        .expect("rewinding");
    let state = agent.state();
    assert_eq!(state.status.role, RoleMessage::Standby);
    assert!(!state.status.copy_complete, "incomplete while it rewinds");
    assert_eq!(state.source, Some(1));
}

#[tokio::test]
async fn a_command_is_carried_out_once_per_effect_id() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    let client = client(TOKEN);
    for _ in 0..3 {
        client
            .command(
                agent.address(),
                &CommandId::new("ns.zc", EffectId(5)),
                &CommandMessage::Promote,
            )
            .await
            .expect("promoted");
    }
    {
        let state = agent.state();
        assert_eq!(state.status.role, RoleMessage::Active);
        assert_eq!(
            state.status.history.len(),
            2,
            "one promotion, one new timeline"
        );
        assert_eq!(state.commands.len(), 1);
    }
    // The same id for another command is a conflict, not a second command.
    let error = client
        .command(
            agent.address(),
            &CommandId::new("ns.zc", EffectId(5)),
            &CommandMessage::Fence,
        )
        .await
        .expect_err("refused");
    assert_eq!(error.effect_error(), EffectError::Conflict);
    assert_eq!(agent.state().status.role, RoleMessage::Active);
}

#[tokio::test]
async fn an_effect_id_of_a_new_stream_is_a_new_command() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    let client = client(TOKEN);
    client
        .command(
            agent.address(),
            &CommandId::new("ns.zc", EffectId(3)),
            &CommandMessage::Promote,
        )
        .await
        .expect("promoted");
    // After a lost log, effect ids start again on another stream: id 3 is another command.
    client
        .command(
            agent.address(),
            &CommandId::new("ns.zc-lost1", EffectId(3)),
            &CommandMessage::Fence,
        )
        .await
        .expect("fenced");
    assert_eq!(agent.state().status.role, RoleMessage::None);
    assert_eq!(agent.state().commands.len(), 2);
    assert_eq!(
        CommandId::new("ns/zc lost", EffectId(7)).as_str(),
        "ns_zc_lost.7"
    );
}

#[tokio::test]
async fn an_unauthenticated_promote_is_refused() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    let error = client("not-the-token")
        .command(
            agent.address(),
            &CommandId::new("ns.zc", EffectId(1)),
            &CommandMessage::Promote,
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(error, AgentError::Unauthorized { .. }),
        "{error:?}"
    );
    assert_eq!(error.effect_error(), EffectError::Rejected);
    let state = agent.state();
    assert_eq!(state.status.role, RoleMessage::None, "nothing was promoted");
    assert_eq!(state.refused, 1);
    assert!(state.commands.is_empty());
}

/// An agent double whose database was just promoted, and a client of it.
async fn promoted_agent() -> (AgentDouble, AgentClient) {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    let client = client(TOKEN);
    client
        .command(
            agent.address(),
            &CommandId::new("ns.zc", EffectId(1)),
            &CommandMessage::Promote,
        )
        .await
        .expect("promoted");
    (agent, client)
}

#[tokio::test]
async fn an_active_whose_lease_runs_out_fences_itself() {
    let (agent, client) = promoted_agent().await;
    // A poll that grants no time: the lease has run out by the next call.
    client
        .status(agent.address(), Some(0))
        .await
        .expect("answered");
    let status = client
        .status(agent.address(), Some(22))
        .await
        .expect("answered");
    assert_eq!(status.role, RoleMessage::None);
    assert_eq!(status.not_serving, Some(NotServingMessage::LeaseExpired));
}

/// A standalone member's polls carry no lease: its active never fences itself, however long
/// the operator is away.
#[tokio::test]
async fn an_active_polled_without_a_lease_never_fences_itself() {
    let (agent, client) = promoted_agent().await;
    client
        .status(agent.address(), None)
        .await
        .expect("answered");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let status = client
        .status(agent.address(), None)
        .await
        .expect("answered");
    assert_eq!(status.role, RoleMessage::Active);
    assert_eq!(status.not_serving, None);
}

#[tokio::test]
async fn a_command_the_database_cannot_carry_out_fails_with_its_reason() {
    let agent = AgentDouble::start(TOKEN).await.expect("started");
    agent.state().status.copy_complete = false;
    let error = client(TOKEN)
        .command(
            agent.address(),
            &CommandId::new("ns.zc", EffectId(2)),
            &CommandMessage::Promote,
        )
        .await
        .expect_err("failed");
    assert!(matches!(&error, AgentError::Failed(reason) if reason.contains("copy")));
    assert_eq!(error.effect_error(), EffectError::Rejected);
}

#[tokio::test]
async fn an_agent_that_does_not_answer_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let address = listener.local_addr().expect("an address");
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let error = client(TOKEN)
        .status(address, Some(22))
        .await
        .expect_err("timed out");
    assert!(matches!(error, AgentError::Timeout(_)), "{error:?}");
    assert_eq!(error.effect_error(), EffectError::Timeout);
}

struct Loopback(Vec<SocketAddr>);

impl AgentResolver for Loopback {
    fn agent(&self, member: MemberId) -> Option<SocketAddr> {
        self.0.get(member.index()).copied()
    }
    fn replication_address(&self, member: MemberId) -> Option<String> {
        self.agent(member).map(|address| address.to_string())
    }
}

#[test]
fn agent_effects_become_commands_and_others_do_not() {
    let resolver = Loopback(vec!["127.0.0.1:7000".parse().expect("an address")]);
    let rebuild = Action::Rebuild {
        member: MemberId(1),
        from: MemberId(0),
    };
    let (member, command) = command_for(&rebuild, &resolver)
        .expect("an agent command")
        .expect("resolved");
    assert_eq!(member, MemberId(1));
    assert_eq!(
        command,
        CommandMessage::Rebuild {
            from: PeerMessage {
                member: 0,
                address: "127.0.0.1:7000".into(),
            }
        }
    );
    let rewind = Action::Rewind {
        member: MemberId(1),
        from: MemberId(0),
    };
    assert!(matches!(
        command_for(&rewind, &resolver),
        Some(Ok((MemberId(1), CommandMessage::Rewind { .. })))
    ));
    // A source with no address yet cannot be named.
    let unresolved = Action::RestartReplication {
        member: MemberId(0),
        from: MemberId(1),
    };
    assert!(matches!(
        command_for(&unresolved, &resolver),
        Some(Err(AgentError::NoAddress(MemberId(1))))
    ));
    assert!(command_for(&Action::SetReplicas { replicas: 2 }, &resolver).is_none());
}

/// A CA, and an agent certificate it issued for `name`, with the agent's TLS configuration.
fn pki(
    name: &str,
) -> (
    rustls::pki_types::CertificateDer<'static>,
    std::sync::Arc<rustls::ServerConfig>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_certificate = ca_params.self_signed(&ca_key).expect("the CA");
    let ca = Issuer::new(ca_params, ca_key);
    let agent_key = KeyPair::generate().expect("an agent key");
    let agent = CertificateParams::new(vec![name.to_owned()])
        .expect("agent parameters")
        .signed_by(&agent_key, &ca)
        .expect("the agent's certificate");
    let key = rustls::pki_types::PrivateKeyDer::try_from(agent_key.serialize_der())
        .expect("a private key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![agent.der().clone()], key)
    .expect("a server configuration");
    (ca_certificate.der().clone(), std::sync::Arc::new(config))
}

fn tls_client(roots: Vec<rustls::pki_types::CertificateDer<'static>>, name: &str) -> AgentClient {
    let tls = AgentTls {
        roots,
        server_name: name.to_owned(),
    };
    AgentClient::with_tls(
        TOKEN,
        Timeouts {
            status: Duration::from_millis(500),
            command: Duration::from_millis(500),
        },
        &tls,
    )
    .expect("a TLS client")
}

#[tokio::test]
async fn over_tls_only_an_agent_the_operator_trusts_is_answered() {
    let (ca, config) = pki("agent.tandem");
    let agent = AgentDouble::start_tls(TOKEN, config)
        .await
        .expect("started");
    agent.state().status.lsn = 7;
    let status = tls_client(vec![ca.clone()], "agent.tandem")
        .status(agent.address(), Some(22))
        .await
        .expect("answered over TLS");
    assert_eq!(status.lsn, 7);
    // A command goes over TLS too, authenticated by the token.
    tls_client(vec![ca.clone()], "agent.tandem")
        .command(
            agent.address(),
            &CommandId::new("c", EffectId(1)),
            &CommandMessage::Fence,
        )
        .await
        .expect("carried out");
    // Another CA, or another name, is not trusted: the handshake fails, nothing is carried out.
    let (other_ca, _) = pki("agent.tandem");
    for client in [
        tls_client(vec![other_ca], "agent.tandem"),
        tls_client(vec![ca], "someone.else"),
    ] {
        let error = client
            .command(
                agent.address(),
                &CommandId::new("c", EffectId(2)),
                &CommandMessage::Promote,
            )
            .await
            .expect_err("an untrusted agent");
        assert!(matches!(error, AgentError::Connection(_)), "{error}");
    }
    assert_eq!(agent.state().commands.len(), 1, "only the fence");
    // A plain HTTP client gets no answer from a TLS agent.
    assert!(
        client(TOKEN)
            .status(agent.address(), Some(22))
            .await
            .is_err()
    );
}
