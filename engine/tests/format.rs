//! The persisted format is a compatibility surface: golden byte fixtures written by every
//! version this build reads must keep decoding to the same values, and corruption of every kind
//! is detected.
//!
//! `TANDEM_BLESS=1 cargo test -p tandem-engine --test format` rewrites the fixtures of the current
//! version; do that only together with a new format version. Fixtures of older versions are never
//! rewritten.

use std::path::PathBuf;
use tandem_engine::record::{FORMAT_VERSION, SNAPSHOT_VERSION, peek_version};
use tandem_engine::{
    Action, AgentReport, ClusterState, ConfigHash, CopyProgress, DecodeError, Effect, EffectError,
    EffectId, EffectKey, EngineState, Event, FenceEvidence, Input, Lsn, MemberId, MemberStatus,
    NodeName, NodeStatus, NotServing, Outcome, PodObservation, PodUid, Poll, Process, PvName,
    PvcUid, Reason, Record, Role, Seq, Spec, Status, SwitchoverRequest, Timeline, Timestamp,
    Topology, VolumeObservation,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn creation() -> Record {
    let mut spec = Spec::defaults(Topology::MasterSlave);
    spec.switchover = Some(SwitchoverRequest {
        token: "s1".into(),
        to: Some(MemberId(1)),
    });
    spec.wait_for_active_timeout_s = Some(90);
    Record {
        seq: Seq(1),
        at: Timestamp(1_000),
        input: Input::Spec(spec.clone()),
        events: vec![
            Event::Created {
                spec,
                at: Timestamp(1_000),
            },
            Event::NodeObserved {
                node: NodeName("node-0".into()),
                status: NodeStatus::Ready,
                at: Timestamp(1_000),
            },
            Event::VolumeAssigned {
                member: MemberId(0),
                node: NodeName("node-0".into()),
                generation: 1,
            },
            Event::Issued {
                id: EffectId(1),
                key: EffectKey::Volume(MemberId(0)),
                at: Timestamp(1_000),
            },
        ],
        effects: vec![
            Effect {
                id: EffectId(1),
                action: Action::ProvisionLocalPv {
                    member: MemberId(0),
                    node: NodeName("node-0".into()),
                    generation: 1,
                },
            },
            Effect {
                id: EffectId(2),
                action: Action::BindPvc {
                    member: MemberId(0),
                    generation: 1,
                },
            },
            Effect {
                id: EffectId(3),
                action: Action::SetReplicas { replicas: 2 },
            },
        ],
    }
}

/// The failover record; `copy` and `not_serving` are what version 2 added to the agent report
/// (a version 1 report decodes with `Idle` and `None`), and its timeline is unknown, as every
/// report before version 5 decodes.
fn failover(copy: CopyProgress, not_serving: Option<NotServing>) -> Record {
    failover_at(copy, not_serving, Timeline::default())
}

fn failover_at(copy: CopyProgress, not_serving: Option<NotServing>, timeline: Timeline) -> Record {
    let report = AgentReport {
        process: Process::Down,
        role: Role::Active,
        lsn: Lsn(123_456),
        replication_connected: false,
        in_sync: false,
        copy_complete: true,
        config_hash: ConfigHash(7),
        copy,
        not_serving,
        timeline,
    };
    Record {
        seq: Seq(2),
        at: Timestamp(60_500),
        input: Input::Agent {
            member: MemberId(0),
            poll: Poll::Report(report),
        },
        events: vec![
            Event::Contact {
                member: MemberId(0),
                at: Timestamp(60_500),
                report,
                lag_bytes: 0,
            },
            Event::PodObserved {
                member: MemberId(1),
                pod: Some(PodObservation {
                    uid: PodUid("9f2c".into()),
                    node: Some(NodeName("node-1".into())),
                    running: true,
                    deleting: false,
                }),
            },
            Event::VolumeObserved {
                member: MemberId(1),
                volume: VolumeObservation {
                    pvc: Some(PvcUid("c0ffee".into())),
                    pv: Some((PvName("pv-1".into()), NodeName("node-1".into()))),
                    lost: false,
                },
            },
            Event::Transition {
                from: ClusterState::Normal,
                to: ClusterState::ActiveDown,
                reason: Reason::ActiveFailed,
                detail: "member-0 is Down".into(),
                at: Timestamp(60_500),
            },
            Event::Promoting {
                member: MemberId(1),
                fence: FenceEvidence::AgentConfirmed,
                accepted_lag_bytes: None,
            },
            Event::Issued {
                id: EffectId(4),
                key: EffectKey::Promote(MemberId(1)),
                at: Timestamp(60_500),
            },
            Event::Finished {
                id: EffectId(3),
                outcome: Outcome::Failed(EffectError::Timeout),
            },
        ],
        effects: vec![
            Effect {
                id: EffectId(4),
                action: Action::Promote {
                    member: MemberId(1),
                },
            },
            Effect {
                id: EffectId(0),
                action: Action::UpdateStatus(Box::new(Status {
                    state: ClusterState::ActiveDown,
                    previous_state: Some(ClusterState::Normal),
                    since: Timestamp(60_500),
                    reason: "member-0 is Down".into(),
                    active: Some(MemberId(1)),
                    members: vec![MemberStatus {
                        member: MemberId(0),
                        role: Role::Active,
                        health: tandem_engine::Health::Down,
                        node: Some(NodeName("node-0".into())),
                        lsn: Lsn(123_456),
                        config_hash: ConfigHash(7),
                    }],
                    seq: Seq(2),
                })),
            },
            Effect {
                id: EffectId(0),
                action: Action::EmitEvent {
                    warning: false,
                    reason: "ActiveFailed".into(),
                    message: "m".into(),
                },
            },
            Effect {
                id: EffectId(5),
                action: Action::DeletePod {
                    member: MemberId(0),
                    uid: PodUid("a1".into()),
                    grace_period_s: 30,
                },
            },
        ],
    }
}

/// The failover record as version 2 writes it, with the report's new fields set.
fn failover_v2() -> Record {
    failover(
        CopyProgress::Copying { percent: 42 },
        Some(NotServing::Restarted),
    )
}

/// The state after the creation and failover records. The failover record's transition is
/// made to start where the creation left the cluster, so that the fold is consistent.
fn snapshot_state(mut failover: Record) -> EngineState {
    let mut state = EngineState::new();
    state.apply_record(&creation()).expect("in sequence");
    for event in &mut failover.events {
        if let Event::Transition { from, .. } = event {
            *from = state.cluster();
        }
    }
    state.apply_record(&failover).expect("in sequence");
    state
}

fn check_golden(name: &str, bytes: &[u8]) {
    let path = fixture(name);
    if std::env::var_os("TANDEM_BLESS").is_some() {
        std::fs::write(&path, bytes).expect("writing a fixture");
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        golden, bytes,
        "{name}: this build encodes differently from the golden bytes"
    );
}

#[test]
fn version_1_records_keep_decoding() {
    for (name, record) in [
        ("record-v1-creation.bin", creation()),
        ("record-v1-failover.bin", failover(CopyProgress::Idle, None)),
    ] {
        let golden = std::fs::read(fixture(name)).expect("the fixture");
        assert_eq!(peek_version(&golden), Some(1), "{name}");
        assert_eq!(Record::decode(&golden).as_ref(), Ok(&record), "{name}");
    }
}

#[test]
fn version_2_records_keep_decoding() {
    for (name, record) in [
        ("record-v2-creation.bin", creation()),
        ("record-v2-failover.bin", failover_v2()),
    ] {
        let golden = std::fs::read(fixture(name)).expect("the fixture");
        assert_eq!(peek_version(&golden), Some(2), "{name}");
        assert_eq!(Record::decode(&golden).as_ref(), Ok(&record), "{name}");
    }
}

/// The failover record as version 3 writes it: the new active's pod labelled, the label's
/// outcome back.
fn failover_v3() -> Record {
    let mut record = failover_v2();
    record.events.push(Event::Issued {
        id: EffectId(6),
        key: EffectKey::Label(MemberId(1), Role::Active),
        at: Timestamp(20_000),
    });
    record.events.push(Event::Finished {
        id: EffectId(6),
        outcome: Outcome::Ok,
    });
    record.effects.push(Effect {
        id: EffectId(6),
        action: Action::LabelPod {
            member: MemberId(1),
            uid: PodUid("b1".into()),
            role: Role::Active,
        },
    });
    record
}

#[test]
fn version_3_records_keep_decoding() {
    for (name, record) in [
        ("record-v3-creation.bin", creation()),
        ("record-v3-failover.bin", failover_v3()),
    ] {
        let golden = std::fs::read(fixture(name)).expect("the fixture");
        assert_eq!(peek_version(&golden), Some(3), "{name}");
        assert_eq!(Record::decode(&golden).as_ref(), Ok(&record), "{name}");
    }
}

/// A spec change that shortens the lease, as version 4 records it.
fn lease_shortened() -> Record {
    let mut spec = Spec::defaults(Topology::MasterSlave);
    spec.unreachable_timeout_s = 20;
    spec.agent_lease_s = 14;
    Record {
        seq: Seq(3),
        at: Timestamp(70_000),
        input: Input::Spec(spec.clone()),
        events: vec![
            Event::SpecChanged { spec },
            Event::LeaseShortened {
                until: Timestamp(94_000),
            },
        ],
        effects: Vec::new(),
    }
}

#[test]
fn version_4_records_keep_decoding() {
    for (name, record) in [
        ("record-v4-creation.bin", creation()),
        ("record-v4-failover.bin", failover_v3()),
        ("record-v4-lease-shortened.bin", lease_shortened()),
    ] {
        let golden = std::fs::read(fixture(name)).expect("the fixture");
        assert_eq!(peek_version(&golden), Some(4), "{name}");
        assert_eq!(Record::decode(&golden).as_ref(), Ok(&record), "{name}");
    }
}

/// The failover record as version 5 writes it: the report places the old active in the history,
/// and the old active is rewound.
fn failover_v5() -> Record {
    let mut record = failover_at(
        CopyProgress::Copying { percent: 42 },
        Some(NotServing::Restarted),
        Timeline {
            id: 3,
            parent: 2,
            branched_at: Lsn(120_000),
        },
    );
    let v3 = failover_v3();
    record
        .events
        .extend(v3.events[record.events.len()..].iter().cloned());
    record
        .effects
        .extend(v3.effects[record.effects.len()..].iter().cloned());
    record.events.push(Event::Issued {
        id: EffectId(7),
        key: EffectKey::Rewind(MemberId(0)),
        at: Timestamp(90_000),
    });
    record.effects.push(Effect {
        id: EffectId(7),
        action: Action::Rewind {
            member: MemberId(0),
            from: MemberId(1),
        },
    });
    record
}

/// Synchronous commit relaxed and restored, as version 5 records it (`syncPreferred`).
fn sync_relaxed_and_restored() -> Record {
    let mut spec = Spec::defaults(Topology::MasterSlave);
    spec.replication = tandem_engine::Replication::SyncPreferred;
    Record {
        seq: Seq(3),
        at: Timestamp(80_000),
        input: Input::Spec(spec),
        events: vec![
            Event::SyncRelaxed {
                at: Timestamp(80_000),
            },
            Event::Issued {
                id: EffectId(8),
                key: EffectKey::RelaxSync(MemberId(1)),
                at: Timestamp(80_000),
            },
            Event::Issued {
                id: EffectId(9),
                key: EffectKey::RestoreSync(MemberId(1)),
                at: Timestamp(80_000),
            },
            Event::SyncRestoreConfirmed {
                at: Timestamp(81_000),
            },
            Event::SyncRestored {
                at: Timestamp(90_000),
            },
            Event::SyncRelaxed {
                at: Timestamp(95_000),
            },
        ],
        effects: vec![
            Effect {
                id: EffectId(8),
                action: Action::RelaxSync {
                    member: MemberId(1),
                },
            },
            Effect {
                id: EffectId(9),
                action: Action::RestoreSync {
                    member: MemberId(1),
                },
            },
        ],
    }
}

#[test]
fn version_5_records_keep_decoding() {
    for (name, record) in [
        ("record-v5-creation.bin", creation()),
        ("record-v5-failover.bin", failover_v5()),
        ("record-v5-lease-shortened.bin", lease_shortened()),
        ("record-v5-sync-relaxed.bin", sync_relaxed_and_restored()),
    ] {
        check_golden(name, &record.encode());
        let golden = std::fs::read(fixture(name)).expect("the fixture");
        assert_eq!(peek_version(&golden), Some(5), "{name}");
        assert_eq!(Record::decode(&golden).as_ref(), Ok(&record), "{name}");
    }
    assert_eq!(
        FORMAT_VERSION, 5,
        "a new format version needs new fixtures beside these"
    );
}

#[test]
fn version_2_snapshots_keep_decoding() {
    let golden = std::fs::read(fixture("snapshot-v2.bin")).expect("the fixture");
    assert_eq!(peek_version(&golden), Some(2));
    let state = EngineState::decode_snapshot(&golden).expect("a version 2 snapshot decodes");
    assert_eq!(state, snapshot_state(failover_v2()));
    // A version 2 state knew no labels.
    assert_eq!(state.member(MemberId(1)).label, None);
}

#[test]
fn version_3_snapshots_keep_decoding() {
    let state = snapshot_state(failover_v3());
    assert_eq!(state.member(MemberId(1)).label, Some(Role::Active));
    let golden = std::fs::read(fixture("snapshot-v3.bin")).expect("the fixture");
    assert_eq!(peek_version(&golden), Some(3));
    assert_eq!(EngineState::decode_snapshot(&golden).as_ref(), Ok(&state));
}

/// The failover record followed by a failed poll of the old active, as snapshot version 4 keeps
/// it (`unreachable_since`).
fn failover_v4() -> Record {
    let mut record = failover_v3();
    record.events.push(Event::Unreachable {
        member: MemberId(0),
        at: Timestamp(60_500),
    });
    record
}

#[test]
fn version_4_snapshots_keep_decoding() {
    let state = snapshot_state(failover_v4());
    assert_eq!(
        state.member(MemberId(0)).unreachable_since,
        Some(Timestamp(60_500))
    );
    let golden = std::fs::read(fixture("snapshot-v4.bin")).expect("the fixture");
    assert_eq!(peek_version(&golden), Some(4));
    assert_eq!(EngineState::decode_snapshot(&golden).as_ref(), Ok(&state));
}

#[test]
fn version_5_snapshots_keep_decoding() {
    // The rewind is not issued yet: the state keeps the old active's reported timeline.
    let mut record = failover_v5();
    record.events.pop();
    record.events.push(Event::Unreachable {
        member: MemberId(0),
        at: Timestamp(60_500),
    });
    let mut state = snapshot_state(record);
    assert_eq!(state.member(MemberId(0)).report.timeline.id, 3);
    // Relaxed, with the relax effect tracked.
    let mut relaxed = sync_relaxed_and_restored();
    relaxed.input = Input::Timer;
    relaxed.events.retain(|event| {
        matches!(
            event,
            Event::SyncRelaxed { .. }
                | Event::Issued {
                    key: EffectKey::RelaxSync(_),
                    ..
                }
        )
    });
    relaxed.events.truncate(2);
    state.apply_record(&relaxed).expect("in sequence");
    assert!(state.sync_relaxed());
    check_golden("snapshot-v5.bin", &state.encode_snapshot());
    let golden = std::fs::read(fixture("snapshot-v5.bin")).expect("the fixture");
    assert_eq!(peek_version(&golden), Some(5));
    assert_eq!(EngineState::decode_snapshot(&golden).as_ref(), Ok(&state));
    assert_eq!(
        SNAPSHOT_VERSION, 5,
        "a new snapshot version needs a new fixture beside these"
    );
}

#[test]
fn version_1_snapshots_keep_decoding() {
    // The state a version 1 build folded from the creation and failover records.
    let golden = std::fs::read(fixture("snapshot-v1.bin")).expect("the fixture");
    assert_eq!(peek_version(&golden), Some(1));
    let state = EngineState::decode_snapshot(&golden).expect("a version 1 snapshot decodes");
    assert_eq!(state.seq(), Seq(2));
    assert_eq!(state.cluster(), ClusterState::ActiveDown);
    assert_eq!(state.active(), Some(MemberId(1)));
    let old = state.member(MemberId(0));
    // A database that is not running reports no position: the last known one (none) stays.
    assert_eq!(old.report.lsn, Lsn(0));
    assert_eq!(old.report.process, Process::Down);
    assert_eq!(old.report.role, Role::Active);
    assert_eq!(old.report.copy, CopyProgress::Idle);
    assert_eq!(old.report.not_serving, None);
    assert_eq!(old.starting_since, None);
    assert_eq!(state.next_effect_id(), EffectId(5));
    // Encoded again, it is a current snapshot of the same state.
    let again = EngineState::decode_snapshot(&state.encode_snapshot()).expect("it decodes");
    assert_eq!(again, state);
}

#[test]
fn corruption_is_detected() {
    let bytes = failover_v2().encode();
    // Every single flipped bit is caught (by the magic, version, length or checksum).
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut corrupt = bytes.clone();
            corrupt[index] ^= 1 << bit;
            assert!(
                Record::decode(&corrupt).is_err(),
                "flipping bit {bit} of byte {index} went unnoticed"
            );
        }
    }
    let mut wrong_version = bytes.clone();
    wrong_version[3] = 9;
    assert!(matches!(
        Record::decode(&wrong_version),
        Err(DecodeError::UnknownVersion {
            version: 9,
            supported: FORMAT_VERSION
        })
    ));
    for cut in [0, 5, 12, bytes.len() - 1] {
        let error = Record::decode(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::TooShort { .. } | DecodeError::Truncated { .. }
            ),
            "{error}"
        );
    }
    let mut checksum = bytes.clone();
    let last = checksum.len() - 1;
    checksum[last] ^= 0xff;
    assert!(matches!(
        Record::decode(&checksum),
        Err(DecodeError::Checksum { .. })
    ));
    assert!(matches!(
        EngineState::decode_snapshot(&bytes),
        Err(DecodeError::BadMagic { .. })
    ));
}

#[test]
fn folding_checks_the_sequence() {
    let mut state = EngineState::new();
    let error = state.apply_record(&failover_v2()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "sequence gap: expected record 1, found 2"
    );
}

#[test]
fn a_record_that_does_not_follow_the_fold_is_refused() {
    let mut state = EngineState::new();
    state.apply_record(&creation()).expect("in sequence");
    // The failover record's transition starts in Normal; the fold stands in Initializing.
    let error = state.apply_record(&failover_v2()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record 2: a transition from Normal while the cluster is Initializing"
    );
    assert_eq!(
        state.seq(),
        Seq(1),
        "a refused record leaves the state as it was"
    );
}
