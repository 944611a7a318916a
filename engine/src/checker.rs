//! The invariant checker: after every step, the invariants are recomputed from the engine's
//! state before and after it and the step's record, independently of the deciding code. It is
//! part of the engine's public API, so a driver can run it in production as well as in tests
//! (the simulator runs it after every step).

use crate::effect::{Action, Effect};
use crate::event::Event;
use crate::input::Process;
use crate::record::Record;
use crate::state::{ClusterState, EngineState, Guarantee, Health, StateKind};
use crate::types::{MemberId, Role, Timestamp, Topology};

/// A violated invariant: which, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invariant {invariant} violated at {at} (record {seq}): {detail}")]
pub struct Violation {
    /// The invariant's number and name, e.g. "1 (fence before promote)".
    pub invariant: &'static str,
    /// When.
    pub at: Timestamp,
    /// The record's sequence number (0 for a quiet step).
    pub seq: u64,
    /// What was seen.
    pub detail: String,
}

/// Checks the invariants (`docs/state-machine.md`, Invariants) after every step. It keeps its own fold of the records
/// (invariant 7) and judges each step from the states before and after it.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    folded: EngineState,
}

impl Checker {
    /// A checker for a new cluster.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// A checker resuming from a state (after a recovery).
    pub fn from_state(state: EngineState) -> Checker {
        Checker { folded: state }
    }

    /// Checks one step: `before` summarizes the engine's state before it, `record` is what it
    /// recorded (`None` for a quiet step), `after` the engine's state after it, at `now`.
    pub fn check(
        &mut self,
        before: &Before,
        record: Option<&Record>,
        after: &EngineState,
        now: Timestamp,
    ) -> Result<(), Violation> {
        let seq = record.map_or(0, |record| record.seq.0);
        let fail = |invariant: &'static str, detail: String| Violation {
            invariant,
            at: now,
            seq,
            detail,
        };
        let Some(record) = record else {
            // A state changed without a record would differ from the fold at the next record.
            if after.seq() != before.seq {
                return Err(fail("7 (replay)", "a quiet step moved the sequence".into()));
            }
            return Ok(());
        };
        self.folded
            .apply_record(record)
            .map_err(|error| fail("7 (replay)", error.to_string()))?;
        check_promotions(before, record, after, now).map_err(|(i, d)| fail(i, d))?;
        check_effects(before, record, after).map_err(|(i, d)| fail(i, d))?;
        check_unknown_alone(before, record, after, now).map_err(|(i, d)| fail(i, d))?;
        if self.folded != *after {
            return Err(fail(
                "7 (replay)",
                "the fold of the records differs from the live state".into(),
            ));
        }
        Ok(())
    }
}

/// What the checker needs of the state before a step: cheap to take at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Before {
    /// The engine's active.
    pub active: Option<MemberId>,
    /// The cluster state.
    pub cluster: ClusterState,
    /// The last record's sequence number.
    pub seq: crate::types::Seq,
    /// What the standby's copy was known to hold.
    pub guarantee: Guarantee,
}

impl Before {
    /// The summary of `state`.
    pub fn of(state: &EngineState) -> Before {
        Before {
            active: state.active(),
            cluster: state.cluster(),
            seq: state.seq(),
            guarantee: state.guarantee(),
        }
    }
}

type Failure = (&'static str, String);

/// Independent fencing check: the previous active's pod is gone, its agent says it accepts no
/// writes, or it was not contacted for `unreachableTimeout`.
fn fenced(state: &EngineState, member: MemberId, now: Timestamp) -> bool {
    let view = state.member(member);
    if view.pod.is_none() {
        return true;
    }
    if view.reachable {
        return view.report.process != Process::Running || view.report.role != Role::Active;
    }
    let Some(spec) = state.spec() else {
        return false;
    };
    let baseline = view.last_contact.unwrap_or(state.observing_since);
    now.since_ms(baseline) >= spec.unreachable_timeout_ms()
}

fn check_promotions(
    before: &Before,
    record: &Record,
    after: &EngineState,
    now: Timestamp,
) -> Result<(), Failure> {
    let Some(spec) = after.spec() else {
        return Ok(());
    };
    let mut previous = before.active;
    for event in &record.events {
        let Event::Promoting {
            member,
            accepted_lag_bytes,
            ..
        } = event
        else {
            continue;
        };
        let view = after.member(*member);
        if !view.report.copy_complete {
            return Err((
                "2 (promote only what is caught up)",
                format!("{member} promoted with an incomplete copy"),
            ));
        }
        // Whom the promoted member must have caught up with: the previous active; with none
        // known (a new cluster, a lost log), every other member whose position is recorded.
        let others: Vec<MemberId> = match previous {
            Some(old) if old == *member => Vec::new(),
            Some(old) => vec![old],
            None => spec
                .topology
                .members()
                .filter(|other| other != member)
                .collect(),
        };
        if let Some(old) = previous.filter(|old| old != member)
            && !fenced(after, old, now)
        {
            return Err((
                "1 (fence before promote)",
                format!("{member} promoted while {old} is not fenced"),
            ));
        }
        for other in others {
            let lag = after.member(other).report.lsn.ahead_of(view.report.lsn);
            // Relaxed if it was before the record or is after it: a record that relaxes and
            // promotes is judged as relaxed.
            let guarantee = if before.guarantee == Guarantee::Relaxed {
                Guarantee::Relaxed
            } else {
                after.guarantee()
            };
            let caught_up = match (accepted_lag_bytes, guarantee) {
                (Some(accepted), _) => lag <= *accepted,
                // Under strict sync a complete copy holds every acknowledged write (the active
                // acknowledges only what its standby has; a copy being made receives every
                // write), so a copy not known in sync may replace one whose data is lost for
                // good. While the other copy survives, it must have been in sync or level.
                (None, Guarantee::Strict) => {
                    view.in_sync || lag == 0 || after.data_lost(other, now)
                }
                // Relaxed, the active acknowledged writes its standby may lack: only a level copy
                // (the member resumed where it is, ahead of the other) may be promoted without
                // a person.
                (None, Guarantee::Relaxed) => lag == 0,
                (None, Guarantee::Async) => lag <= spec.max_lag_on_failover_bytes,
            };
            if !caught_up {
                return Err((
                    "2 (promote only what is caught up)",
                    format!(
                        "{member} promoted {lag} bytes behind {other} (in sync: {})",
                        view.in_sync
                    ),
                ));
            }
        }
        previous = Some(*member);
    }
    for effect in &record.effects {
        if let Action::Promote { member } = effect.action
            && after.active() != Some(member)
        {
            return Err((
                "1 (fence before promote)",
                format!("promote {member}, not the engine's active"),
            ));
        }
    }
    Ok(())
}

fn check_effects(before: &Before, record: &Record, after: &EngineState) -> Result<(), Failure> {
    let hands_off = (before.cluster.is_hands_off() && after.cluster().is_hands_off())
        || after.spec().is_some_and(|spec| !spec.auto_failover);
    for Effect { action, .. } in &record.effects {
        if hands_off && !action.is_report() {
            return Err((
                "4 (hands off)",
                format!("{} in {}", action.name(), after.cluster()),
            ));
        }
        let target = match action {
            Action::Rebuild { member, .. }
            | Action::Rewind { member, .. }
            | Action::ReleaseVolume { member, .. } => *member,
            _ => continue,
        };
        // A cluster initializing that never promoted a member accepted no write: no copy is
        // newer than another.
        let nothing_written = after.cluster() == ClusterState::Initializing
            && after.active().is_none()
            && !after.log_lost();
        let newest = after.active() == Some(target)
            || after.cluster() == ClusterState::WaitingForActive(target)
            || after.topology() == Some(Topology::Standalone);
        if newest && !nothing_written {
            return Err((
                "3 (never destroy the newest copy)",
                format!("{} of {target}", action.name()),
            ));
        }
    }
    Ok(())
}

fn check_unknown_alone(
    before: &Before,
    record: &Record,
    after: &EngineState,
    now: Timestamp,
) -> Result<(), Failure> {
    let Some(topology) = after.topology() else {
        return Ok(());
    };
    for event in &record.events {
        let Event::Transition {
            from: ClusterState::Normal,
            to,
            ..
        } = event
        else {
            continue;
        };
        if matches!(to.kind(), StateKind::Switchover | StateKind::Stopping) {
            continue;
        }
        let calm = topology
            .members()
            .all(|member| matches!(after.health(member, now), Health::Healthy | Health::Unknown));
        if calm && before.cluster == ClusterState::Normal {
            return Err((
                "5 (Unknown alone never changes the state)",
                format!("Normal -> {to}"),
            ));
        }
    }
    Ok(())
}
