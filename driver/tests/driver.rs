//! The driver's contract, on a real event log.

use tandem_driver::{Driver, Listing, MemberListing};
use tandem_engine::{
    Action, AgentReport, EffectError, Input, Lsn, MemberId, NodeName, NodeStatus, Outcome,
    PodObservation, PodUid, Poll, Process, PvName, PvcUid, Role, Seq, Spec, Timestamp, Topology,
    VolumeObservation,
};
use tandem_sled::{EventLog, LogConfig};

fn log() -> (tempfile::TempDir, EventLog) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = EventLog::open(dir.path().join("log"), LogConfig::default()).expect("a new log");
    (dir, log)
}

fn node(name: &str) -> NodeName {
    NodeName(name.to_string())
}

fn volume(member: u8, node_name: &str) -> VolumeObservation {
    VolumeObservation {
        pvc: Some(PvcUid(format!("pvc-{member}"))),
        pv: Some((PvName(format!("pv-{member}")), node(node_name))),
        lost: false,
    }
}

fn pod(member: u8, node_name: &str) -> PodObservation {
    PodObservation {
        uid: PodUid(format!("pod-{member}")),
        node: Some(node(node_name)),
        running: true,
        deleting: false,
    }
}

fn listing() -> Listing {
    Listing {
        nodes: ["node-0", "node-1", "node-2"]
            .into_iter()
            .map(|name| (node(name), NodeStatus::Ready))
            .collect(),
        members: (0..2u8)
            .map(|member| MemberListing {
                member: MemberId(member),
                volume: volume(member, &format!("node-{member}")),
                pod: Some(pod(member, &format!("node-{member}"))),
            })
            .collect(),
    }
}

fn running(role: Role, lsn: u64) -> AgentReport {
    AgentReport {
        process: Process::Running,
        role,
        lsn: Lsn(lsn),
        copy_complete: true,
        ..AgentReport::default()
    }
}

#[test]
fn every_step_is_in_the_log_before_its_effects_are_handed_out() {
    let (_dir, log) = log();
    let mut driver = Driver::fresh(&log, "c").expect("a driver");
    let spec = Spec::defaults(Topology::MasterSlave);
    let steps = driver
        .relist(Timestamp(0), false, listing(), spec)
        .expect("relisted");
    for (_, observed) in &steps {
        assert!(observed.violation.is_none(), "{:?}", observed.violation);
        if let Some(record) = &observed.record {
            // The record handed out is the one the log holds.
            let stored = log
                .read_range("c", record.seq, record.seq)
                .expect("readable");
            assert_eq!(stored, vec![record.clone()]);
        } else {
            assert!(observed.effects.is_empty(), "effects without a record");
        }
    }
    // The spec comes last, after what the watches listed.
    let kinds: Vec<&str> = steps.iter().map(|(input, _)| input.kind()).collect();
    assert_eq!(kinds.first(), Some(&"recovered"));
    assert_eq!(kinds.last(), Some(&"spec"));
    // A driver that recovers from the log holds the same state.
    let recovered = Driver::recover(&log, "c").expect("recovered");
    assert_eq!(recovered.engine().state(), driver.engine().state());
    assert_ne!(recovered.engine().state().seq(), Seq(0));
}

#[test]
fn an_answer_asked_before_a_volume_change_is_dropped() {
    let (_dir, log) = log();
    let mut driver = Driver::fresh(&log, "c").expect("a driver");
    let spec = Spec::defaults(Topology::MasterSlave);
    driver
        .relist(Timestamp(0), false, listing(), spec)
        .expect("relisted");
    let ticket = driver.ask(MemberId(1));
    let lost = VolumeObservation {
        lost: true,
        ..volume(1, "node-1")
    };
    driver
        .observe(
            Timestamp(1_000),
            Input::Volume {
                member: MemberId(1),
                volume: lost,
            },
        )
        .expect("observed");
    let stale = Poll::Report(running(Role::Standby, 100));
    let answered = driver
        .answer(Timestamp(1_100), ticket, stale)
        .expect("no error");
    assert!(
        answered.is_none(),
        "the stale answer was given to the engine"
    );
    // A poll asked now is answered as usual.
    let ticket = driver.ask(MemberId(1));
    let fresh = Poll::Report(running(Role::None, 0));
    let answered = driver
        .answer(Timestamp(1_200), ticket, fresh)
        .expect("no error");
    assert!(answered.is_some());
}

#[test]
fn a_destructive_effect_whose_premise_is_gone_is_withdrawn() {
    let (_dir, log) = log();
    let mut driver = Driver::fresh(&log, "c").expect("a driver");
    let spec = Spec::defaults(Topology::MasterSlave);
    driver
        .relist(Timestamp(0), false, listing(), spec)
        .expect("relisted");
    // A deletion of a pod that is no longer the member's pod is not carried out.
    let effect = tandem_engine::Effect {
        id: tandem_engine::EffectId(99),
        action: Action::DeletePod {
            member: MemberId(1),
            uid: PodUid("an-older-pod".into()),
            grace_period_s: 30,
        },
    };
    assert_eq!(
        driver.before_carrying_out(&effect),
        Some(Outcome::Failed(EffectError::Withdrawn))
    );
    // Status reports always go ahead, and give nothing back to the engine.
    let report = driver.engine().state().seq();
    let status = tandem_engine::Effect {
        id: tandem_engine::REPORT_EFFECT_ID,
        action: Action::EmitEvent {
            warning: false,
            reason: "Test".into(),
            message: "test".into(),
        },
    };
    assert_eq!(driver.before_carrying_out(&status), None);
    let finished = driver
        .finished(Timestamp(2_000), &status, Outcome::Ok)
        .expect("no error");
    assert!(finished.is_none());
    assert_eq!(driver.engine().state().seq(), report);
}

#[test]
fn an_answer_asked_before_a_rebuild_landed_is_dropped() {
    let (_dir, log) = log();
    let mut driver = Driver::fresh(&log, "c").expect("a driver");
    let spec = Spec::defaults(Topology::MasterSlave);
    let mut effects = Vec::new();
    for (_, observed) in driver
        .relist(Timestamp(0), false, listing(), spec)
        .expect("relisted")
    {
        effects.extend(observed.effects);
    }
    let mut now = 1_000;
    let mut step = |driver: &mut Driver<&EventLog>, member: u8, report: AgentReport| {
        now += 1_000;
        let ticket = driver.ask(MemberId(member));
        driver
            .answer(Timestamp(now), ticket, Poll::Report(report))
            .expect("no error")
            .map(|observed| observed.effects)
            .unwrap_or_default()
    };
    // Member 0 runs with the only data and is promoted; member 1 runs empty, with no role.
    effects.extend(step(&mut driver, 0, running(Role::None, 100)));
    let promote = effects
        .iter()
        .find(|effect| matches!(effect.action, Action::Promote { .. }))
        .cloned()
        .expect("member 0 is promoted");
    driver
        .finished(Timestamp(3_000), &promote, Outcome::Ok)
        .expect("no error");
    effects.extend(step(&mut driver, 0, running(Role::Active, 100)));
    let empty = AgentReport {
        copy_complete: false,
        ..running(Role::None, 0)
    };
    effects.extend(step(&mut driver, 1, empty));
    let rebuild = effects
        .iter()
        .find(|effect| matches!(effect.action, Action::Rebuild { .. }))
        .cloned()
        .expect("member 1 is rebuilt from member 0");
    // A poll asked after the rebuild was issued, answered while it is being carried out, and one
    // answered after it landed: both describe the data before the copy.
    let asked = driver.ask(MemberId(1));
    assert_eq!(driver.before_carrying_out(&rebuild), None, "still wanted");
    let stale = Poll::Report(running(Role::Standby, 100));
    let during = driver
        .answer(Timestamp(9_000), asked, stale.clone())
        .expect("no error");
    assert!(during.is_none(), "answered while the rebuild runs");
    driver
        .finished(Timestamp(9_100), &rebuild, Outcome::Ok)
        .expect("no error");
    let after = driver
        .answer(Timestamp(9_200), asked, stale)
        .expect("no error");
    assert!(after.is_none(), "asked before the rebuild landed");
    let fresh = driver.ask(MemberId(1));
    let copying = AgentReport {
        copy_complete: false,
        ..running(Role::Standby, 0)
    };
    assert!(
        driver
            .answer(Timestamp(9_300), fresh, Poll::Report(copying))
            .expect("no error")
            .is_some()
    );
}

#[test]
fn a_process_that_does_not_lead_carries_nothing_out() {
    let (_dir, log) = log();
    // The operator holds the log in an `Arc`, its cluster tasks outliving any borrow.
    let log = std::sync::Arc::new(log);
    let mut driver = Driver::fresh(std::sync::Arc::clone(&log), "c").expect("a driver");
    let leads = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let check = std::sync::Arc::clone(&leads);
    driver.set_leadership(Box::new(move || {
        check.load(std::sync::atomic::Ordering::SeqCst)
    }));
    let spec = Spec::defaults(Topology::MasterSlave);
    let effects: Vec<_> = driver
        .relist(Timestamp(0), false, listing(), spec)
        .expect("relisted")
        .into_iter()
        .flat_map(|(_, observed)| observed.effects)
        .collect();
    let acting = effects
        .iter()
        .find(|effect| !effect.action.is_report())
        .expect("the engine acts on a new cluster");
    let report = effects
        .iter()
        .find(|effect| effect.action.is_report())
        .expect("and reports");
    assert_eq!(
        driver.before_carrying_out(acting),
        Some(Outcome::Failed(EffectError::Withdrawn)),
        "withdrawn while another process leads"
    );
    assert_eq!(driver.before_carrying_out(report), None, "reports go out");
    leads.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        driver.before_carrying_out(acting),
        None,
        "carried out once leading"
    );
}
