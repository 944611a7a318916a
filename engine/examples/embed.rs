//! Embedding the engine: one master-slave cluster driven through a failover.
//!
//! The driver owns everything the engine does not: the clock, the log, and the world. Its loop
//! is the engine's contract:
//!
//! 1. observe something, and hand it to [`Engine::step`] with the time;
//! 2. persist the step's record durably ([`Step::commit`] hands out the effects only after the
//!    persistence callback succeeded);
//! 3. carry out the effects, and feed their outcomes back as inputs.
//!
//! Run with `cargo run -p tandem-engine --example embed`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use tandem_engine::{
    Action, AgentReport, Effect, Engine, EngineState, Input, Lsn, MemberId, NodeName, NodeStatus,
    Outcome, PodObservation, PodUid, Poll, Process, PvName, PvcUid, Record, Role, Spec, Timestamp,
    Topology, VolumeObservation,
};

/// An append-only file of length-prefixed records, synced before an append returns.
struct FileLog {
    file: File,
    path: std::path::PathBuf,
}

impl FileLog {
    fn create() -> std::io::Result<FileLog> {
        let path = std::env::temp_dir().join(format!("tandem-embed-{}.log", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        Ok(FileLog { file, path })
    }

    fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let bytes = record.encode();
        let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
        self.file.write_all(&len.to_be_bytes())?;
        self.file.write_all(&bytes)?;
        self.file.sync_data() // durable before any effect of the step is carried out
    }

    fn read_all(&self) -> std::io::Result<Vec<Record>> {
        let bytes = std::fs::read(&self.path)?;
        let mut records = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let frame = rest
                .get(4..4 + len)
                .ok_or_else(|| std::io::Error::other("torn record"))?;
            records.push(Record::decode(frame).map_err(std::io::Error::other)?);
            rest = &rest[4 + len..];
        }
        Ok(records)
    }
}

/// The driver: the engine, its log, and the effects it was asked to carry out.
struct Driver {
    engine: Engine,
    log: FileLog,
}

impl Driver {
    fn observe(
        &mut self,
        at_ms: u64,
        input: Input,
    ) -> Result<Vec<Effect>, Box<dyn std::error::Error>> {
        let step = self.engine.step(Timestamp(at_ms), input)?;
        let log = &mut self.log;
        let effects = step.commit(|record| log.append(record))?;
        for effect in &effects {
            match &effect.action {
                Action::UpdateStatus(status) => {
                    println!(
                        "{:>8}  status: {} (active: {:?})",
                        Timestamp(at_ms),
                        status.state,
                        status.active
                    )
                }
                Action::EmitEvent {
                    reason, message, ..
                } => {
                    println!("{:>8}  event:  {reason}: {message}", Timestamp(at_ms))
                }
                other => println!("{:>8}  effect: {other:?}", Timestamp(at_ms)),
            }
        }
        Ok(effects)
    }

    fn report(
        &mut self,
        at_ms: u64,
        member: u8,
        report: AgentReport,
    ) -> Result<Vec<Effect>, Box<dyn std::error::Error>> {
        self.observe(
            at_ms,
            Input::Agent {
                member: MemberId(member),
                poll: Poll::Report(report),
            },
        )
    }
}

fn report(role: Role, lsn: u64, connected: bool) -> AgentReport {
    AgentReport {
        process: Process::Running,
        role,
        lsn: Lsn(lsn),
        replication_connected: connected,
        in_sync: connected && role == Role::Standby,
        copy_complete: true,
        ..AgentReport::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut driver = Driver {
        engine: Engine::new(),
        log: FileLog::create()?,
    };

    println!("-- creating the cluster");
    for node in ["node-0", "node-1", "node-2"] {
        driver.observe(
            0,
            Input::Node {
                node: NodeName(node.into()),
                status: NodeStatus::Ready,
            },
        )?;
    }
    driver.observe(0, Input::Spec(Spec::defaults(Topology::MasterSlave)))?;
    for member in [0u8, 1] {
        let node = NodeName(format!("node-{member}"));
        let volume = VolumeObservation {
            pvc: Some(PvcUid(format!("pvc-{member}"))),
            pv: Some((PvName(format!("pv-{member}")), node.clone())),
            lost: false,
        };
        driver.observe(
            0,
            Input::Volume {
                member: MemberId(member),
                volume,
            },
        )?;
        let pod = PodObservation {
            uid: PodUid(format!("pod-{member}")),
            node: Some(node),
            running: true,
            deleting: false,
        };
        driver.observe(
            0,
            Input::Pod {
                member: MemberId(member),
                pod: Some(pod),
            },
        )?;
    }
    driver.report(5_000, 0, report(Role::None, 0, false))?;
    driver.report(5_100, 0, report(Role::Active, 0, false))?;
    driver.report(
        5_200,
        1,
        AgentReport {
            copy_complete: false,
            ..report(Role::None, 0, false)
        },
    )?;
    driver.report(25_000, 1, report(Role::Standby, 900, true))?;
    driver.report(25_100, 0, report(Role::Active, 900, true))?;

    println!("-- the active's database process dies");
    let crashed = AgentReport {
        process: Process::Down,
        ..report(Role::Active, 1_000, false)
    };
    let effects = driver.report(40_000, 0, crashed)?;
    let promotion = effects
        .iter()
        .find(|e| matches!(e.action, Action::Promote { .. }))
        .ok_or("no promotion")?;
    // The world carries the promotion out and says so; the agent then reports the new role.
    driver.observe(
        40_500,
        Input::EffectFinished {
            id: promotion.id,
            outcome: Outcome::Ok,
        },
    )?;
    driver.report(41_000, 1, report(Role::Active, 1_000, false))?;

    println!("-- the old active's pod is replaced and rebuilt from the new active");
    driver.observe(
        42_000,
        Input::Pod {
            member: MemberId(0),
            pod: None,
        },
    )?;
    let pod = PodObservation {
        uid: PodUid("pod-0b".into()),
        node: Some(NodeName("node-0".into())),
        running: true,
        deleting: false,
    };
    driver.observe(
        43_000,
        Input::Pod {
            member: MemberId(0),
            pod: Some(pod),
        },
    )?;
    driver.report(48_000, 0, report(Role::None, 1_000, false))?;
    driver.report(68_000, 0, report(Role::Standby, 1_200, true))?;
    driver.report(68_100, 1, report(Role::Active, 1_200, true))?;

    println!("-- recovering from the log gives the same state");
    let records = driver.log.read_all()?;
    let recovered = Engine::recover(EngineState::new(), &records)?;
    assert_eq!(recovered.state(), driver.engine.state());
    println!(
        "{} records, state {}, active {:?}",
        records.len(),
        recovered.state().cluster(),
        recovered.state().active()
    );
    std::fs::remove_file(&driver.log.path)?;
    Ok(())
}
