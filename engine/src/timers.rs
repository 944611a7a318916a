//! The timer table: every deadline the rules depend on, defined once. A rule asks whether a
//! timer has expired ([`EngineState::expired`]); [`crate::Engine::next_deadline`] is the earliest
//! pending deadline over the same table, so the two cannot drift apart. A `Timer` input earlier
//! than that deadline changes nothing a rule can see.

use crate::event::EffectKey;
use crate::input::{CopyProgress, NodeStatus};
use crate::limits::{MAX_BACKOFF_EXPONENT, SYNC_RELAX_AFTER_MS};
use crate::state::{ClusterState, EngineState, StateKind};
use crate::types::{MemberId, NodeName, Replication, Timestamp};

/// One deadline of the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A member unreachable for `unreachableTimeout`: counted from the first failed poll after its
    /// last recorded contact (else from that contact, or from when the engine started observing).
    /// Its agent's lease, which runs from a poll no later than that failure, has run out.
    Silent(MemberId),
    /// The confirmed active's database has been starting for `unreachableTimeout`.
    Restarting(MemberId),
    /// A standby has been behind by more than `lagThresholdBytes` for `lagTimeout`.
    Lagging(MemberId),
    /// A node not ready for `nodeLostTimeout`: its local volumes count as lost.
    NodeLost(NodeName),
    /// The current state's own timeout: `initTimeout`, `standbyStartTimeout`,
    /// `unreachableTimeout` (replication not restored), `switchoverTimeout`,
    /// `waitForActiveTimeout`, or the patience of `Reexamine`.
    StateTimeout,
    /// `unreachableTimeout` spent in the current state: how long a member that is down is
    /// waited for before its pod is replaced.
    StateGrace,
    /// `StandbyDown`'s back-off after failed rebuilds: `pollingInterval × 2^attempts`.
    Backoff,
    /// When an effect under this key may be issued again.
    Retry(EffectKey),
    /// Under `syncPreferred`, the engine's active has reported no standby connected for
    /// `SYNC_RELAX_AFTER_MS`, and its writes wait for one: synchronous commit is relaxed.
    SyncRelax,
}

fn seconds(s: u32) -> u64 {
    u64::from(s) * 1000
}

impl EngineState {
    /// When `timer` expires, if it is running.
    pub(crate) fn deadline(&self, timer: &Timer) -> Option<Timestamp> {
        let spec = self.spec()?;
        match timer {
            Timer::Silent(member) => {
                let view = self.member(*member);
                let baseline = view
                    .unreachable_since
                    .or(view.last_contact)
                    .unwrap_or(self.observing_since);
                let silent = baseline.plus_ms(spec.unreachable_timeout_ms());
                Some(silent.max(self.lease_floor))
            }
            Timer::Restarting(member) => {
                let since = self.member(*member).starting_since?;
                (self.active() == Some(*member) && self.active_confirmed())
                    .then(|| since.plus_ms(spec.unreachable_timeout_ms()))
            }
            Timer::Lagging(member) => {
                let since = self.member(*member).lagging_since?;
                Some(since.plus_ms(seconds(spec.lag_timeout_s)))
            }
            Timer::NodeLost(name) => self.node_lost_deadline(name),
            Timer::StateTimeout => {
                let timeout_ms = match self.cluster().kind() {
                    StateKind::Initializing => Some(seconds(spec.init_timeout_s)),
                    StateKind::StandbyPartiallyStarting => {
                        Some(seconds(spec.standby_start_timeout_s))
                    }
                    StateKind::StandbyPartiallyDown => Some(spec.unreachable_timeout_ms()),
                    StateKind::Switchover => Some(seconds(spec.switchover_timeout_s)),
                    StateKind::WaitingForActive => spec.wait_for_active_timeout_s.map(seconds),
                    StateKind::Reexamine => Some(self.reexamine_patience_ms()),
                    _ => None,
                }?;
                Some(self.since().plus_ms(timeout_ms))
            }
            Timer::StateGrace => Some(self.since().plus_ms(spec.unreachable_timeout_ms())),
            Timer::Backoff => {
                let attempts = self.attempts();
                let backoff_ms = if attempts == 0 {
                    0
                } else {
                    spec.polling_interval_ms() << attempts.min(MAX_BACKOFF_EXPONENT)
                };
                Some(self.since().plus_ms(backoff_ms))
            }
            Timer::SyncRelax => {
                let waiting = !self.sync_relaxed() || self.sync_restore_confirmed().is_some();
                let due = spec.replication == Replication::SyncPreferred
                    && spec.auto_failover
                    && !self.cluster().is_hands_off()
                    && self.active_confirmed()
                    && waiting;
                let since = self.standby_missing_since()?;
                due.then(|| since.plus_ms(SYNC_RELAX_AFTER_MS))
            }
            Timer::Retry(key) => {
                let issued = self.issued().iter().find(|issued| issued.key == *key)?;
                if let EffectKey::Rebuild(member) = key {
                    // A copy its agent reports as failed since it was issued is due at once.
                    let view = self.member(*member);
                    let reported_after = view.last_contact.is_some_and(|at| at > issued.at);
                    if view.report.copy == CopyProgress::Failed && reported_after {
                        return Some(issued.at);
                    }
                }
                // A failed effect is retried soon; one without an outcome yet after a back-off;
                // one carried out only after the longest back-off, as a safety net should the
                // world have undone it without the engine noticing.
                let polling_ms = spec.polling_interval_ms();
                let delay_ms = if issued.failed {
                    polling_ms
                } else if issued.succeeded {
                    polling_ms << MAX_BACKOFF_EXPONENT
                } else {
                    polling_ms << issued.attempts.min(MAX_BACKOFF_EXPONENT)
                };
                Some(issued.at.plus_ms(delay_ms))
            }
        }
    }

    /// Whether `timer` runs and has expired at `now`.
    /// [`Timer::NodeLost`]'s deadline, without making the timer (the health of every member is
    /// derived at every step, and it asks this of the member's node).
    pub(crate) fn node_lost_deadline(&self, name: &NodeName) -> Option<Timestamp> {
        let spec = self.spec()?;
        let node = self.node(name)?;
        match (node.status, node.unavailable_since) {
            (NodeStatus::Deleted, _) => Some(Timestamp(0)),
            (NodeStatus::NotReady, Some(since)) => {
                Some(since.plus_ms(seconds(spec.node_lost_timeout_s)))
            }
            _ => None,
        }
    }

    pub(crate) fn expired(&self, timer: &Timer, now: Timestamp) -> bool {
        self.deadline(timer).is_some_and(|deadline| now >= deadline)
    }

    /// How long `Reexamine` waits for members it has not heard from: twice
    /// `unreachableTimeout`; after a recovery without log, until a lost node would be known as
    /// lost, since the engine then compares what every member reports rather than guess.
    pub(crate) fn reexamine_patience_ms(&self) -> u64 {
        let Some(spec) = self.spec() else { return 0 };
        let patience = 2 * spec.unreachable_timeout_ms();
        if self.log_lost() {
            patience.max(seconds(spec.node_lost_timeout_s) + spec.unreachable_timeout_ms())
        } else {
            patience
        }
    }

    /// Calls `visit` with every timer that runs now: the table [`crate::Engine::next_deadline`]
    /// takes the minimum of (without collecting it: the engine asks after every step).
    pub(crate) fn for_each_timer(&self, mut visit: impl FnMut(Timer)) {
        let Some(spec) = self.spec() else {
            return;
        };
        for member in spec.topology.members() {
            // A reachable member's lease runs out too when its node goes down between two
            // recorded contacts (a forced deletion waits for it); while its polls succeed, its
            // contacts are recorded at least every quarter of unreachableTimeout, so this
            // deadline stays ahead and wakes no one.
            visit(Timer::Silent(member));
            visit(Timer::Restarting(member));
            visit(Timer::Lagging(member));
        }
        // A ready node's loss has no deadline: only the others are timed.
        for node in self.nodes() {
            if node.status != NodeStatus::Ready {
                visit(Timer::NodeLost(node.name.clone()));
            }
        }
        visit(Timer::StateTimeout);
        visit(Timer::SyncRelax);
        if matches!(
            self.cluster().kind(),
            StateKind::WaitingForActive | StateKind::Reexamine
        ) {
            visit(Timer::StateGrace);
        }
        if self.cluster().kind() == StateKind::StandbyDown {
            visit(Timer::Backoff);
        }
        if !matches!(
            self.cluster(),
            ClusterState::ManualInterventionRequired | ClusterState::Failed
        ) {
            for issued in self.issued() {
                visit(Timer::Retry(issued.key));
            }
        }
    }
}
