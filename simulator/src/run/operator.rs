//! The operator process in the simulated world: the driver (the same one the real operator
//! runs) fed with polls, watches and timers, and its effects carried out by the world after
//! their latency, each outcome sent back; restarts, with or without the log.

use super::*;

impl Sim<'_> {
    pub(super) fn start_polls(&mut self) {
        let polling_ms = self.operator.spec.polling_interval_ms();
        for member in self.world.members() {
            let offset = 1_000 + u64::from(member.0) * 100;
            self.push(self.now + offset.min(polling_ms), Scheduled::Poll(member));
        }
    }

    pub(super) fn poll(&mut self, member: MemberId) {
        if !self.operator.up {
            return;
        }
        let incarnation = self.operator.incarnation;
        let (delay, poll) = if self.world.agent_reachable(member, self.now) {
            // The lease of the spec in force, as the operator's poll gives it.
            let lease_ms = self
                .operator
                .driver
                .engine()
                .state()
                .spec()
                .and_then(Spec::agent_lease)
                .map(|seconds| u64::from(seconds) * 1000);
            let report = self.world.report(member, self.now, lease_ms);
            (self.scenario.world.agent_latency_ms, Poll::Report(report))
        } else {
            (POLL_TIMEOUT_MS, Poll::Unreachable)
        };
        if poll == Poll::Unreachable {
            match self.options.sabotage {
                Sabotage::None => {}
                Sabotage::PromoteWithoutFencing => self.sabotage_promote(member),
                Sabotage::RebuildFromUnreachableActive => self.sabotage_rebuild(member),
            }
        }
        let ticket = self.operator.driver.ask(member);
        self.push(
            self.now + delay,
            Scheduled::Answer {
                incarnation,
                ticket,
                poll,
                asked_at: self.now,
            },
        );
    }

    /// Once a poll asked at `asked_at` is answered, the member's next poll: as the operator
    /// does, after the interval the engine gives for it ([`Driver::poll_interval_ms`]).
    pub(super) fn schedule_poll(&mut self, member: MemberId, asked_at: Millis) {
        let interval = self.operator.driver.poll_interval_ms(member);
        let at = (asked_at + interval).max(self.now);
        self.push(at, Scheduled::Poll(member));
    }

    /// An agent's answer reaches the operator: given to the engine unless the engine replaced
    /// or wiped the member's data since the poll was asked (the operator does the same).
    pub(super) fn answer(&mut self, ticket: AskTicket, poll: Poll) -> Result<(), RunError> {
        let member = ticket.member();
        self.note_input(&Input::Agent {
            member,
            poll: poll.clone(),
        });
        match self
            .operator
            .driver
            .answer(Timestamp(self.now), ticket, poll)?
        {
            Some(observed) => self.handle_observed(observed),
            None => self.trace_line(
                "operator",
                format!("dropped {member}'s answer to a poll asked before its data changed"),
            ),
        }
        Ok(())
    }

    pub(super) fn operator_input(&mut self, input: Input) -> Result<(), RunError> {
        self.note_input(&input);
        let observed = self.operator.driver.observe(Timestamp(self.now), input)?;
        self.handle_observed(observed);
        Ok(())
    }

    /// What the driver's step produced: traced, checked against the world, and its effects
    /// sent on their way.
    pub(super) fn handle_observed(&mut self, observed: Observed) {
        if let Some(record) = &observed.record {
            self.records += 1;
            if !self.options.skip_record_hash {
                self.hash = postcard::serialize_with_flavor(record, FnvFlavor(self.hash))
                    .expect("hashing a record cannot fail");
            }
            self.note_record(record);
        }
        if let Some(violation) = observed.violation {
            self.fail(violation.invariant, violation.detail);
        }
        if self.options.check_timer_table
            && let Err(violation) =
                tandem_engine::testing::check_timer_table(self.operator.driver.engine())
        {
            self.fail(violation.invariant, violation.detail);
        }
        if let Some(record) = &observed.record {
            self.check_stopped(record);
        }
        for effect in observed.effects {
            self.dispatch(effect);
        }
        self.schedule_wake();
    }

    pub(super) fn note_record(&mut self, record: &Record) {
        for event in &record.events {
            if let tandem_engine::Event::Transition {
                to, reason, detail, ..
            } = event
            {
                self.visited.push((self.now, *to));
                self.trace_line("event", format!("-> {to} ({reason:?}): {detail}"));
            } else if self.options.trace {
                self.trace_line("event", format!("{event:?}"));
            }
        }
        if self.options.trace {
            for effect in &record.effects {
                self.trace_line("effect", format!("{:?}", effect.action));
            }
        }
    }

    pub(super) fn schedule_wake(&mut self) {
        let Some(deadline) = self.operator.driver.next_wake() else {
            return;
        };
        let at = deadline.0;
        if self.operator.wake_at.is_some_and(|wake| wake <= at) {
            return;
        }
        self.operator.wake_at = Some(at);
        let incarnation = self.operator.incarnation;
        self.push(at, Scheduled::Wake { incarnation });
    }

    pub(super) fn dispatch(&mut self, effect: Effect) {
        // A promotion asked for may have taken effect, as far as the engine can tell.
        self.served |= matches!(effect.action, Action::Promote { .. });
        let latency = match effect.action.executor() {
            Executor::Agent => self.scenario.world.agent_latency_ms,
            Executor::Kubernetes | Executor::Report => self.scenario.world.api_latency_ms,
        };
        let incarnation = self.operator.incarnation;
        self.push(
            self.now + latency,
            Scheduled::Effect {
                incarnation,
                effect,
            },
        );
    }

    /// The world carries out an effect, and its outcome goes back to the operator.
    pub(super) fn carry_out(&mut self, incarnation: u64, effect: Effect) {
        let current = self.operator.up && incarnation == self.operator.incarnation;
        // Right before a destructive call, the driver asks the engine whether it still wants it.
        let withdrawn = current
            .then(|| self.operator.driver.before_carrying_out(&effect))
            .flatten();
        let outcome = if let Some(outcome) = withdrawn {
            self.trace_line(
                "withdrawn",
                format!("{:?}: no longer wanted", effect.action),
            );
            outcome
        } else {
            self.execute(&effect.action)
        };
        if !self.operator.up || incarnation != self.operator.incarnation {
            return;
        }
        let latency = self.scenario.world.api_latency_ms;
        self.push(
            self.now + latency,
            Scheduled::Finished {
                incarnation,
                effect,
                outcome,
            },
        );
    }

    pub(super) fn api_error(&mut self) -> Option<EffectError> {
        if self.now >= self.api_errors_until || self.rng.fraction() >= self.api_error_rate {
            return None;
        }
        Some(match self.rng.below(3) {
            0 => EffectError::Conflict,
            1 => EffectError::ServerError,
            _ => EffectError::Timeout,
        })
    }

    pub(super) fn execute(&mut self, action: &Action) -> Outcome {
        let now = self.now;
        if action.executor() == Executor::Agent {
            let member = action.member().expect("agent commands name a member");
            if !self.world.agent_reachable(member, now) {
                return Outcome::Failed(EffectError::Timeout);
            }
        } else if let Some(error) = self.api_error() {
            // A timed-out call may still have been carried out.
            if error != EffectError::Timeout || self.rng.below(2) == 0 {
                return Outcome::Failed(error);
            }
            self.apply(action);
            return Outcome::Failed(error);
        }
        if self.apply(action) {
            Outcome::Ok
        } else {
            Outcome::Failed(EffectError::Rejected)
        }
    }

    pub(super) fn apply(&mut self, action: &Action) -> bool {
        let now = self.now;
        match action {
            Action::DeletePod {
                member,
                uid,
                grace_period_s,
            } => {
                let matches = self.world.pod_uid(*member) == Some(uid.0.as_str());
                if matches {
                    self.world.delete_pod(*member, now, *grace_period_s == 0);
                }
                matches
            }
            Action::Promote { member } => {
                let others_accepting = self
                    .world
                    .members()
                    .filter(|m| m != member)
                    .any(|m| self.world.accepting_writes(m, now));
                let promoted = self.world.promote(*member);
                if promoted && others_accepting {
                    self.fail(
                        "fence before promote",
                        format!("{member} promoted while another member accepts writes"),
                    );
                }
                promoted
            }
            Action::Demote { member } => self.world.demote(*member, Role::Standby),
            Action::Fence { member } => self.world.demote(*member, Role::None),
            Action::Rebuild { member, from } => {
                self.guard_newest(*member, "rebuild");
                self.world.rebuild(*member, *from, now)
            }
            Action::RelaxSync { member } => self.world.set_sync_relaxed(*member, true),
            Action::RestoreSync { member } => self.world.set_sync_relaxed(*member, false),
            Action::Rewind { member, from } => {
                self.guard_newest(*member, "rewind");
                self.world.rewind(*member, *from, now)
            }
            Action::RestartReplication { member, from } => {
                self.world.restart_replication(*member, *from)
            }
            Action::ProvisionLocalPv {
                member,
                node,
                generation,
            } => self.world.provision(*member, node, *generation),
            Action::BindPvc { member, .. } => self.world.bind_pvc(*member, now),
            Action::ReleaseVolume {
                member,
                pvc,
                generation,
            } => {
                self.guard_newest(*member, "release-volume");
                self.world.release(*member, pvc.as_ref(), *generation)
            }
            Action::SetReplicas { replicas } => {
                self.world.set_replicas(*replicas, now);
                true
            }
            Action::LabelPod { member, uid, role } => {
                let labelled = self.world.label_pod(*member, &uid.0, *role);
                let active = self.world.labelled_active();
                if active.len() > 1 {
                    self.fail(
                        "one address for the active",
                        format!(
                            "the pods of members {:?} both carry the active label",
                            ordinals(&active)
                        ),
                    );
                }
                labelled
            }
            Action::UpdateStatus(_) | Action::EmitEvent { .. } => true,
        }
    }

    pub(super) fn operator_restart(&mut self, lose_log: bool) -> Result<(), RunError> {
        self.operator.up = true;
        self.operator.incarnation += 1;
        self.operator.wake_at = None;
        if lose_log {
            self.operator.lost_logs += 1;
            let stream = stream_after_lost_log(&self.operator.stream, self.operator.lost_logs);
            self.operator.driver = Driver::fresh(self.log, &stream)?;
        } else {
            let stream = self.operator.driver.stream().to_string();
            self.operator.driver = Driver::recover(self.log, &stream)?;
        }
        self.trace_line("operator", format!("restarted (log lost: {lose_log})"));
        // The watches list everything again; the driver gives it to the engine before the spec.
        let listing = Listing {
            nodes: self
                .world
                .nodes()
                .map(|node| self.world.node_observation(node))
                .collect(),
            members: self
                .world
                .members()
                .map(|member| MemberListing {
                    member,
                    volume: self.world.volume_observation(member),
                    pod: self.world.pod_observation(member),
                })
                .collect(),
        };
        let spec = self.operator.spec.clone();
        let steps = self
            .operator
            .driver
            .relist(Timestamp(self.now), lose_log, listing, spec)?;
        for (index, (input, observed)) in steps.into_iter().enumerate() {
            self.note_input(&input);
            self.handle_observed(observed);
            if index == 0 {
                self.note_unknowable();
            }
        }
        self.start_polls();
        Ok(())
    }
}
