//! The judgement of a run: the invariants checked as it goes that the world alone can tell
//! (a stopped cluster runs no pod, the newest copy is never destroyed, clients reach the
//! active), and at the end, the lost writes and the scenario's expectations.

use super::*;

impl Sim<'_> {
    /// A cluster the engine declares stopped runs no pod: the engine saw every pod gone.
    pub(super) fn check_stopped(&mut self, record: &Record) {
        let stopped = record.events.iter().any(|event| {
            matches!(
                event,
                tandem_engine::Event::Transition {
                    to: tandem_engine::ClusterState::Stopped,
                    ..
                }
            )
        });
        if !stopped {
            return;
        }
        let running: Vec<String> = self
            .world
            .members()
            .filter(|member| self.world.pod_observation(*member).is_some())
            .map(|member| member.to_string())
            .collect();
        if !running.is_empty() {
            self.fail(
                "a stopped cluster runs no pod",
                format!("Stopped while the pods of {} exist", running.join(" and ")),
            );
        }
    }

    pub(super) fn note_unknowable(&mut self) {
        self.unknowable |= self.unserved_copy_lost
            && !self.world.complete_copy_survives()
            && self.operator.driver.engine().state().log_lost();
    }

    pub(super) fn guard_newest(&mut self, member: MemberId, what: &str) {
        if self.world.holds_the_newest_copy(member) {
            self.fail(
                "no destruction of the newest copy",
                format!("{what} of {member}, which holds acknowledged writes no other copy has"),
            );
        }
    }

    pub(super) fn final_data(&self) -> Option<Position> {
        let designated = self.operator.driver.engine().state().active();
        let holder = self.world.active().or(designated)?;
        // A copy on a node gone for good holds nothing any more.
        self.world
            .survives(holder)
            .then(|| self.world.data(holder))
            .flatten()
    }

    pub(super) fn finish(mut self, seed: u64, started: Instant) -> RunReport {
        let end = self.scenario.duration_ms;
        let final_state = self.operator.driver.engine().state().cluster();
        let lost_writes = self.world.history().lost_writes(self.final_data());
        if self.failure.is_none() {
            self.now = end;
            self.judge(final_state, lost_writes);
        }
        let recovered_after_ms = self
            .reached_final_state_at()
            .map(|at| at.saturating_sub(self.last_fault_end));
        self.hash = fnv(self.hash, format!("{final_state} {lost_writes}").as_bytes());
        // Only a failure shows them: a passing run does not format its last inputs.
        let last_steps = if self.failure.is_some() {
            merge_steps(self.last_steps, self.recent_inputs)
        } else {
            Vec::new()
        };
        RunReport {
            name: self.scenario.name.clone(),
            topology: self.scenario.topology,
            seed,
            failure: self.failure,
            last_steps,
            transitions: self.operator.driver.engine().state().transitions(),
            visited: self.visited.iter().map(|(_, state)| *state).collect(),
            final_state,
            recovered_after_ms,
            simulated_ms: end,
            wall: started.elapsed(),
            acknowledged_writes: self.world.history().acknowledged_writes(),
            lost_writes,
            destroyed_writes: self.destroyed_writes,
            trace_hash: self.hash,
            records: self.records,
            streams: (0..=self.operator.lost_logs)
                .map(|lost| stream_after_lost_log(&self.operator.stream, lost))
                .collect(),
            trace: self.trace,
            timeline: self.timeline,
            costs: self.meter.costs(self.world.started_copies()),
        }
    }

    /// When the run last entered the final state it expects (`Normal` unless the scenario says),
    /// staying in it since.
    pub(super) fn reached_final_state_at(&self) -> Option<Millis> {
        let wanted = self
            .scenario
            .expect
            .final_state
            .unwrap_or(ClusterStateName::of_kind(StateKind::Normal));
        self.visited
            .iter()
            .rev()
            .take_while(|(_, state)| wanted.matches(*state))
            .last()
            .map(|(at, _)| *at)
    }

    /// A cluster that has been `Normal` for [`ROUTING_SETTLE_MS`] at the end routes clients to
    /// its active: the active's pod, and no other, carries the active label.
    pub(super) fn misrouted(&self, final_state: tandem_engine::ClusterState) -> Option<String> {
        let state = self.operator.driver.engine().state();
        let settled = self.now.saturating_sub(state.since().0) >= ROUTING_SETTLE_MS;
        if final_state != tandem_engine::ClusterState::Normal || !self.operator.up || !settled {
            return None;
        }
        let wanted: Vec<MemberId> = state.active().into_iter().collect();
        let labelled = self.world.labelled_active();
        (labelled != wanted).then(|| {
            format!(
                "Normal since {} ms with active {:?}, but the pods of {:?} carry the active label",
                state.since().0,
                ordinals(&wanted),
                ordinals(&labelled),
            )
        })
    }

    pub(super) fn judge(&mut self, final_state: tandem_engine::ClusterState, lost_writes: u64) {
        let destroyed = self.destroyed_writes > 0 || self.no_copy_left || self.unknowable;
        if self.options.intervention_after_destroyed_writes && destroyed {
            let kind = final_state.kind();
            if !matches!(
                kind,
                StateKind::ManualInterventionRequired | StateKind::Failed
            ) {
                let detail = format!(
                    "the cluster ends in {final_state}, not ManualInterventionRequired or Failed, \
                     although a node lost for good took the only copy of {} acknowledged writes \
                     (no complete copy left: {})",
                    self.destroyed_writes, self.no_copy_left
                );
                self.fail("expect.finalState", detail);
            }
            return;
        }
        // Without its log, the engine waits a bounded time for members it has not heard from
        // (a member cut off longer may hold the newest data), then a person decides: explore
        // cannot tell that apart from a stuck cluster, and accepts it.
        let gave_up_without_log = self.operator.lost_logs > 0
            && final_state == tandem_engine::ClusterState::ManualInterventionRequired
            && self.operator.driver.engine().state().previous()
                == Some(tandem_engine::ClusterState::Reexamine);
        if self.options.intervention_after_destroyed_writes && gave_up_without_log {
            return;
        }
        let expect = &self.scenario.expect;
        if lost_writes > expect.max_lost_writes {
            let detail = format!(
                "{lost_writes} acknowledged writes are missing from the final active (at most {})",
                expect.max_lost_writes
            );
            self.fail("no lost writes", detail);
            return;
        }
        if let Some(wanted) = &expect.final_state
            && !wanted.matches(final_state)
        {
            self.fail(
                "expect.finalState",
                format!("the cluster ends in {final_state}, not {wanted}"),
            );
            return;
        }
        if let Some(detail) = self.misrouted(final_state) {
            self.fail("clients reach the active", detail);
            return;
        }
        let visited: Vec<ClusterState> = self.visited.iter().map(|(_, state)| *state).collect();
        let mut remaining = expect.visits.iter().peekable();
        for state in &visited {
            if remaining
                .peek()
                .is_some_and(|wanted| wanted.matches(*state))
            {
                remaining.next();
            }
        }
        if let Some(missing) = remaining.next() {
            let visited: Vec<String> = visited.iter().map(ToString::to_string).collect();
            self.fail(
                "expect.visits",
                format!(
                    "{missing} was not visited in order; visited: {}",
                    visited.join(", ")
                ),
            );
            return;
        }
        for never in &expect.never {
            if let Some(state) = visited.iter().find(|state| never.matches(**state)) {
                self.fail("expect.never", format!("{state} was entered"));
                return;
            }
        }
        let costs = self.meter.costs(self.world.started_copies());
        let over = [
            (
                "expect.maxFullCopies",
                u64::from(costs.full_copies),
                expect.max_full_copies.map(u64::from),
                "full copies",
            ),
            (
                "expect.maxWriteOutage",
                costs.write_outage_ms,
                expect.max_write_outage_ms,
                "ms without writes",
            ),
            (
                "expect.maxDegradedTime",
                costs.degraded_ms,
                expect.max_degraded_ms,
                "ms without a standby receiving the writes",
            ),
        ];
        for (key, measured, most, what) in over {
            if let Some(most) = most
                && measured > most
            {
                self.fail(key, format!("{measured} {what}, more than {most}"));
                return;
            }
        }
        if let Some(within) = expect.recovered_within_ms {
            let reached = self.reached_final_state_at().unwrap_or(0);
            let took = reached.saturating_sub(self.last_fault_end);
            if took > within {
                self.fail(
                    "expect.recoveredWithin",
                    format!(
                        "recovered {} ms after the last fault ended, more than {within} ms",
                        took
                    ),
                );
            }
        }
    }
}
