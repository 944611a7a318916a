//! The invariant checker can fail: each invariant is shown a step that violates it.

use tandem_engine::testing::{Before, Checker, normal_cluster};
use tandem_engine::{
    Action, ClusterState, Effect, EffectId, Event, FenceEvidence, Input, MemberId, PodUid, Reason,
    Record, Replication, Seq, Spec, Timestamp, Topology,
};

fn spec() -> Spec {
    Spec::defaults(Topology::MasterSlave)
}

/// A record that follows the harness's log, with the given events and effects.
fn record(seq: Seq, events: Vec<Event>, effects: Vec<Effect>) -> Record {
    Record {
        seq,
        at: Timestamp(6_000),
        input: Input::Timer,
        events,
        effects,
    }
}

/// Checks `events`/`effects` as a step of a Normal cluster; returns the violated invariant.
fn violation(events: Vec<Event>, effects: Vec<Effect>, tweak: impl FnOnce(&mut Spec)) -> String {
    let harness = normal_cluster(&spec());
    let mut changed = spec();
    tweak(&mut changed);
    let mut events = events;
    if changed != spec() {
        events.insert(0, Event::SpecChanged { spec: changed });
    }
    let before = harness.engine.state().clone();
    let record = record(before.seq().next(), events, effects);
    let mut after = before.clone();
    after
        .apply_record(&record)
        .expect("the record follows the log");
    let mut checker = Checker::from_state(before.clone());
    match checker.check(
        &Before::of(&before),
        Some(&record),
        &after,
        Timestamp(6_000),
    ) {
        Ok(()) => "none".to_string(),
        Err(violation) => violation.invariant.to_string(),
    }
}

#[test]
fn promoting_while_the_active_is_reachable_is_caught() {
    let events = vec![Event::Promoting {
        member: MemberId(1),
        fence: FenceEvidence::AgentConfirmed,
        accepted_lag_bytes: None,
    }];
    let effects = vec![Effect {
        id: EffectId(99),
        action: Action::Promote {
            member: MemberId(1),
        },
    }];
    assert_eq!(
        violation(events, effects, |_| {}),
        "1 (fence before promote)"
    );
}

/// The active reports a position far ahead, its pod is gone (fenced), and the standby is
/// promoted; `between` comes after the report.
fn promoted_behind(between: Vec<Event>) -> Vec<Event> {
    let mut events = vec![Event::Contact {
        member: MemberId(0),
        at: Timestamp(6_000),
        report: tandem_engine::testing::steady_report(
            tandem_engine::Role::Active,
            1_000_000,
            Topology::MasterSlave,
        ),
        lag_bytes: 0,
    }];
    events.extend(between);
    events.extend([
        Event::PodObserved {
            member: MemberId(0),
            pod: None,
        },
        Event::Promoting {
            member: MemberId(1),
            fence: FenceEvidence::PodGone,
            accepted_lag_bytes: None,
        },
    ]);
    events
}

#[test]
fn promoting_a_member_that_is_behind_is_caught() {
    // The old active's pod is gone (fenced), but under async replication the standby is behind.
    let found = violation(promoted_behind(Vec::new()), Vec::new(), |spec| {
        spec.replication = Replication::Async
    });
    assert_eq!(found, "2 (promote only what is caught up)");
}

#[test]
fn promoting_the_standby_while_sync_is_relaxed_is_caught() {
    // Under syncPreferred, relaxed, the active acknowledged writes its standby lacks: the standby
    // is promoted only level with it, or by a person.
    let relaxed = vec![Event::SyncRelaxed {
        at: Timestamp(6_000),
    }];
    let found = violation(promoted_behind(relaxed), Vec::new(), |spec| {
        spec.replication = Replication::SyncPreferred
    });
    assert_eq!(found, "2 (promote only what is caught up)");
}

#[test]
fn rebuilding_the_active_is_caught() {
    let effects = vec![Effect {
        id: EffectId(99),
        action: Action::Rebuild {
            member: MemberId(0),
            from: MemberId(1),
        },
    }];
    assert_eq!(
        violation(Vec::new(), effects, |_| {}),
        "3 (never destroy the newest copy)"
    );
}

#[test]
fn acting_while_hands_off_is_caught() {
    let effects = vec![Effect {
        id: EffectId(99),
        action: Action::DeletePod {
            member: MemberId(1),
            uid: PodUid("p1".into()),
            grace_period_s: 30,
        },
    }];
    assert_eq!(
        violation(Vec::new(), effects, |spec| spec.auto_failover = false),
        "4 (hands off)"
    );
}

#[test]
fn leaving_normal_on_unknown_alone_is_caught() {
    let events = vec![Event::Transition {
        from: ClusterState::Normal,
        to: ClusterState::ActiveDown,
        reason: Reason::ActiveFailed,
        detail: "no reason".into(),
        at: Timestamp(6_000),
    }];
    assert_eq!(
        violation(events, Vec::new(), |_| {}),
        "5 (Unknown alone never changes the state)"
    );
}

#[test]
fn a_live_state_that_differs_from_the_fold_is_caught() {
    let harness = normal_cluster(&spec());
    let before = harness.engine.state().clone();
    let record = record(before.seq().next(), Vec::new(), Vec::new());
    let mut after = before.clone();
    after
        .apply_record(&record)
        .expect("the record follows the log");
    after.apply(&Event::AttemptCounted { attempts: 3 }); // not in the record
    let mut checker = Checker::from_state(before.clone());
    let error = checker
        .check(
            &Before::of(&before),
            Some(&record),
            &after,
            Timestamp(6_000),
        )
        .unwrap_err();
    assert_eq!(error.invariant, "7 (replay)");
}

/// Checks one record on a brand-new cluster that knows no active (a new cluster, or a driver
/// that lost its log): member 0 reports `lsn0` with a complete copy or not, member 1 `lsn1`, and
/// member 0 is promoted.
fn promotion_without_a_known_active(lsn0: u64, complete0: bool, lsn1: u64) -> String {
    let report = |lsn: u64, copy_complete: bool| tandem_engine::AgentReport {
        process: tandem_engine::Process::Running,
        lsn: tandem_engine::Lsn(lsn),
        copy_complete,
        ..tandem_engine::AgentReport::default()
    };
    let at = Timestamp(6_000);
    let mut async_spec = spec();
    async_spec.replication = Replication::Async;
    let events = vec![
        Event::Created {
            spec: async_spec,
            at,
        },
        Event::Contact {
            member: MemberId(0),
            at,
            report: report(lsn0, complete0),
            lag_bytes: 0,
        },
        Event::Contact {
            member: MemberId(1),
            at,
            report: report(lsn1, true),
            lag_bytes: 0,
        },
        Event::Promoting {
            member: MemberId(0),
            fence: FenceEvidence::NoPreviousActive,
            accepted_lag_bytes: None,
        },
    ];
    let before = tandem_engine::EngineState::new();
    let record = record(Seq(1), events, Vec::new());
    let mut after = before.clone();
    after
        .apply_record(&record)
        .expect("the record starts the log");
    let mut checker = Checker::from_state(before.clone());
    match checker.check(&Before::of(&before), Some(&record), &after, at) {
        Ok(()) => "none".to_string(),
        Err(violation) => violation.invariant.to_string(),
    }
}

#[test]
fn promoting_behind_another_copy_without_a_known_active_is_caught() {
    assert_eq!(promotion_without_a_known_active(900, true, 500), "none");
    assert_eq!(
        promotion_without_a_known_active(500, true, 900),
        "2 (promote only what is caught up)"
    );
}

#[test]
fn promoting_an_incomplete_copy_is_caught() {
    assert_eq!(
        promotion_without_a_known_active(900, false, 500),
        "2 (promote only what is caught up)"
    );
}
