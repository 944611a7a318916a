//! The timeline, carried out: faults on the world (resolved to a member or a node when they
//! fire), user actions on the operator, and the deliberate defects a run can be given.

use super::*;

impl Sim<'_> {
    /// The broken policy: promote the other member at once, fencing nothing.
    pub(super) fn sabotage_promote(&mut self, unreachable: MemberId) {
        if self.world.role(unreachable) != Role::Active {
            return;
        }
        let other = unreachable.peer();
        if self.world.has_member(other) && self.world.promote(other) {
            self.trace_line(
                "sabotage",
                format!("promoted {other} without fencing {unreachable}"),
            );
        }
    }

    /// The broken policy: wipe the other member to copy it from an active that did not answer.
    pub(super) fn sabotage_rebuild(&mut self, unreachable: MemberId) {
        let other = unreachable.peer();
        let is_active = self.operator.driver.engine().state().active() == Some(unreachable);
        if !is_active || !self.world.has_member(other) {
            return;
        }
        let action = Action::Rebuild {
            member: other,
            from: unreachable,
        };
        if self.apply(&action) {
            self.trace_line(
                "sabotage",
                format!("rebuilt {other} from the unreachable {unreachable}"),
            );
        }
    }

    pub(super) fn resolve_member(&self, target: Target) -> Option<MemberId> {
        match target {
            Target::Active => self
                .world
                .active()
                .or_else(|| self.operator.driver.engine().state().active()),
            Target::Standby => {
                let active = self.resolve_member(Target::Active)?;
                (self.world.members().count() > 1).then(|| active.peer())
            }
            Target::Member(member) => {
                let member = MemberId(member);
                self.world.has_member(member).then_some(member)
            }
            _ => None,
        }
    }

    pub(super) fn resolve_node(&self, target: Target) -> Option<NodeIndex> {
        match target {
            Target::NodeOfActive => self.world.node_of(self.resolve_member(Target::Active)?),
            Target::NodeOfStandby => self.world.node_of(self.resolve_member(Target::Standby)?),
            Target::Node(node) => Some(NodeIndex(node as usize)),
            other => self.world.node_of(self.resolve_member(other)?),
        }
        .filter(|node| self.world.has_node(*node))
    }

    pub(super) fn fire(&mut self, index: usize) -> Result<(), RunError> {
        let entry = self.scenario.timeline[index].clone();
        match &entry.what {
            What::Fault(fault, target) => self.fault(fault, *target),
            What::Action(action) => self.action(action)?,
        }
        Ok(())
    }

    pub(super) fn mark(&mut self, label: String, until: Option<Millis>, kind: MarkKind) {
        self.trace_line(
            if kind == MarkKind::Fault {
                "fault"
            } else {
                "action"
            },
            label.clone(),
        );
        self.timeline.marks.push(Mark {
            at_ms: self.now,
            until_ms: until,
            label,
            kind,
        });
        let end = until.unwrap_or(self.now);
        if kind == MarkKind::Fault {
            self.last_fault_end = self.last_fault_end.max(end);
        }
        if let Some(until) = until {
            self.push(until, Scheduled::Boundary);
        }
    }

    pub(super) fn fault(&mut self, fault: &Fault, target: Option<Target>) {
        let now = self.now;
        let label = |name: &str, who: &str| format!("{name} {who}");
        if let Fault::OperatorCrash {
            restart_after_ms,
            lose_log,
        } = fault
        {
            self.operator.up = false;
            self.operator.incarnation += 1;
            let until = now + restart_after_ms;
            self.mark(
                format!(
                    "operator-crash{}",
                    if *lose_log { " (log lost)" } else { "" }
                ),
                Some(until),
                MarkKind::Fault,
            );
            self.push(
                until,
                Scheduled::OperatorRestart {
                    lose_log: *lose_log,
                },
            );
            return;
        }
        if let Fault::ApiErrors { rate, for_ms } = fault {
            self.api_error_rate = *rate;
            self.api_errors_until = now + for_ms;
            self.mark(
                format!("api-errors {rate}"),
                Some(now + for_ms),
                MarkKind::Fault,
            );
            return;
        }
        let target = target.unwrap_or(Target::Active);
        if let Fault::NodeLoss { for_ms } = fault {
            let Some(node) = self.resolve_node(target) else {
                self.mark(
                    format!("node-loss: no such node {target:?}"),
                    None,
                    MarkKind::Fault,
                );
                return;
            };
            if self.world.is_gone_for_good(node) {
                // A node gone for good does not come back, with or without its disks.
                let name = self.world.node_name(node).to_string();
                self.mark(
                    format!("node-loss: {name} is gone for good already"),
                    None,
                    MarkKind::Fault,
                );
                return;
            }
            let lacking_before = self.world.best_copy_lacks();
            // A database that was made the active may have accepted writes, as far as anyone
            // outside the world can tell, even if none was acknowledged yet.
            let served = self.served
                || self.world.history().acknowledged_writes() > 0
                || self
                    .world
                    .members()
                    .any(|member| self.world.role(member) == Role::Active);
            let any_copy_before = self.world.complete_copy_survives();
            let copy_before = any_copy_before && served;
            self.world.node_loss(node, now, *for_ms);
            if for_ms.is_none() {
                let destroyed = self.world.best_copy_lacks().saturating_sub(lacking_before);
                self.destroyed_writes += destroyed;
                // Only a loss that took the last complete copy of a database that served
                // counts: before the first promotion there is nothing to lose.
                self.no_copy_left |= copy_before && !self.world.complete_copy_survives();
                self.unserved_copy_lost |= any_copy_before && !self.world.complete_copy_survives();
                self.note_unknowable();
            }
            let name = self.world.node_name(node).to_string();
            self.mark(
                label("node-loss", &name),
                for_ms.map(|d| now + d),
                MarkKind::Fault,
            );
            return;
        }
        let Some(member) = self.resolve_member(target) else {
            self.mark(
                format!("{}: no member for {target:?}", fault.name()),
                None,
                MarkKind::Fault,
            );
            return;
        };
        let who = member.to_string();
        let until = self.member_fault(member, fault);
        self.mark(label(fault.name(), &who), until, MarkKind::Fault);
    }

    /// Applies a fault to a member; returns when it ends, if it has a duration.
    pub(super) fn member_fault(&mut self, member: MemberId, fault: &Fault) -> Option<Millis> {
        let now = self.now;
        let window = |for_ms: Millis| now + for_ms;
        match *fault {
            Fault::CrashProcess { restart_after_ms } => {
                self.world.crash_process(member, now, restart_after_ms);
                None
            }
            Fault::HangProcess { for_ms } => {
                self.world.hang(member, window(for_ms));
                self.push(window(for_ms), Scheduled::Thaw(member));
                Some(window(for_ms))
            }
            Fault::DeletePod => {
                self.world.delete_pod(member, now, false);
                None
            }
            Fault::Partition { for_ms } => {
                self.world.partition(member, window(for_ms));
                Some(window(for_ms))
            }
            Fault::Isolate { for_ms } => {
                self.world.isolate(member, window(for_ms));
                Some(window(for_ms))
            }
            Fault::ReplicationStall { for_ms } => {
                self.world.stall_replication(member, window(for_ms));
                Some(window(for_ms))
            }
            Fault::ReplicationBreak { for_ms } => {
                self.world.break_replication(member, window(for_ms));
                Some(window(for_ms))
            }
            Fault::DiskFull { for_ms } => {
                self.world.fill_disk(member, window(for_ms));
                Some(window(for_ms))
            }
            Fault::SlowStart { start_ms } => {
                self.world.slow_next_start(member, start_ms);
                None
            }
            Fault::AgentFlap { period_ms, for_ms } => {
                self.world
                    .flap_agent(member, now, period_ms, window(for_ms));
                Some(window(for_ms))
            }
            Fault::NodeLoss { .. } | Fault::OperatorCrash { .. } | Fault::ApiErrors { .. } => None,
        }
    }

    pub(super) fn action(&mut self, action: &UserAction) -> Result<(), RunError> {
        let now = self.now;
        let spec = &mut self.operator.spec;
        match action {
            UserAction::Switchover { to } => {
                spec.switchover = Some(SwitchoverRequest {
                    token: format!("switchover-{now}"),
                    to: to.map(MemberId),
                });
            }
            UserAction::ConfigChange { hash } => {
                self.config_hash = hash.unwrap_or(self.config_hash.wrapping_add(1));
                self.world.set_config_hash(self.config_hash);
                spec.config_hash = tandem_engine::ConfigHash(self.config_hash);
            }
            UserAction::Stop => spec.stopped = true,
            UserAction::Start => spec.stopped = false,
            UserAction::Reexamine => spec.reexamine = format!("reexamine-{now}"),
            UserAction::PauseFailover => spec.auto_failover = false,
            UserAction::ResumeFailover => spec.auto_failover = true,
        }
        let input = Input::Spec(self.operator.spec.clone());
        self.mark(action.name().to_string(), None, MarkKind::Action);
        if self.operator.up {
            let incarnation = self.operator.incarnation;
            self.push(
                now + self.scenario.world.api_latency_ms,
                Scheduled::Deliver { incarnation, input },
            );
        }
        Ok(())
    }
}
