//! The world's database half: processes with roles and data, replication and copies, client
//! writes, and the agents with their self-fencing lease.

use super::*;

impl World {
    /// The role the member's database holds.
    pub fn role(&self, member: MemberId) -> Role {
        self.members[member.index()].role
    }

    /// Whether the member's process runs (on a live node, in a pod).
    pub(super) fn running(&self, member: MemberId) -> bool {
        let state = &self.members[member.index()];
        state.process == Proc::Running && state.pod.is_some() && self.node_up(member)
    }

    /// Whether the member's agent is copying its data afresh (a rebuild) now.
    pub fn copying(&self, member: MemberId) -> bool {
        let state = &self.members[member.index()];
        state.copying.is_some() && !state.rewinding
    }

    /// Whether the member's agent is rewinding its data now.
    pub fn rewinding(&self, member: MemberId) -> bool {
        let state = &self.members[member.index()];
        state.copying.is_some() && state.rewinding
    }

    /// Whether the member accepts client writes now.
    pub fn accepting_writes(&self, member: MemberId, now: Millis) -> bool {
        let state = &self.members[member.index()];
        self.running(member)
            && state.role == Role::Active
            && state.hung_until <= now
            && self.volume_of(member).is_some()
    }

    /// Whether the operator can reach the member's agent now.
    pub fn agent_reachable(&self, member: MemberId, now: Millis) -> bool {
        let state = &self.members[member.index()];
        let flapping_down = state.flapping.is_some_and(|(start, period, until)| {
            now < until && period > 0 && ((now - start) / period) % 2 == 1
        });
        state.pod.is_some()
            && self.node_up(member)
            && state.partitioned_until <= now
            && state.isolated_until <= now
            && state.hung_until <= now
            && !flapping_down
    }

    /// Whether the standby is connected to the active it replicates from.
    pub(super) fn connected(&self, standby: MemberId, now: Millis) -> bool {
        let state = &self.members[standby.index()];
        let Some(active) = state.replicating_from else {
            return false;
        };
        let leader = &self.members[active.index()];
        let link_up = |m: &Member| m.isolated_until <= now && m.hung_until <= now;
        let compatible = match (self.data(standby), self.data(active)) {
            (Some(follower), Some(leader)) => self.history.is_prefix(follower, leader),
            _ => false,
        };
        // A demoted active still streams what its standby lacks (a planned switchover drains it).
        let leads = leader.role == Role::Active
            || (leader.role == Role::Standby && leader.replicating_from.is_none());
        state.role == Role::Standby
            && state.copying.is_none()
            && self.running(standby)
            && self.running(active)
            && leads
            && state.broken_until <= now
            && link_up(state)
            && link_up(leader)
            && compatible
    }

    /// The standbys connected to `active`.
    pub(super) fn followers(
        &self,
        active: MemberId,
        now: Millis,
    ) -> impl Iterator<Item = MemberId> + '_ {
        self.members()
            .filter(move |m| {
                *m != active && self.members[m.index()].replicating_from == Some(active)
            })
            .filter(move |m| self.connected(*m, now))
    }

    /// Client writes and replication from `from` to `to`: call before anything changes. Returns
    /// the members that accepted writes at the same time, if more than one did.
    pub fn settle(&mut self, from: Millis, to: Millis) -> Option<Vec<MemberId>> {
        let accepting: Vec<MemberId> = self
            .members()
            .filter(|m| self.accepting_writes(*m, from))
            .collect();
        if accepting.len() > 1 {
            return Some(accepting);
        }
        if let Some(&active) = accepting.first() {
            self.write(active, from, to);
        }
        self.replicate(from, to);
        None
    }

    pub(super) fn write(&mut self, active: MemberId, from: Millis, to: Millis) {
        if !self.acknowledges(active, from) {
            return; // A full disk, or strict sync without a standby: clients time out.
        }
        let numerator =
            u64::from(self.config.writes_per_second) * (to - from) + self.write_remainder;
        let writes = numerator / 1000;
        self.write_remainder = numerator % 1000;
        if writes == 0 {
            return;
        }
        let index = self
            .volume_of(active)
            .expect("an accepting member has a volume");
        let before = self.volumes[index.0].data;
        let after = Position {
            lsn: before.lsn + writes * WRITE_BYTES,
            ..before
        };
        self.volumes[index.0].data = after;
        self.history
            .acknowledge(before.branch, before.lsn, after.lsn);
        self.last_write_at = to;
    }

    /// Whether a client's write to the accepting `active` is acknowledged at `now`: its disk has
    /// room, and under strict sync a standby receives it.
    fn acknowledges(&self, active: MemberId, now: Millis) -> bool {
        if self.members[active.index()].disk_full_until > now {
            return false;
        }
        match (self.topology, self.replication) {
            (Topology::Standalone, _) | (_, Replication::Async) => true,
            (Topology::MasterSlave, Replication::Sync) => self.synchronous(active, now),
            (Topology::MasterSlave, Replication::SyncPreferred) => {
                self.members[active.index()].sync_relaxed || self.synchronous(active, now)
            }
        }
    }

    /// Whether a standby receives what `active` writes at `now`: connected and not stalled.
    fn receives(&self, active: MemberId, now: Millis) -> bool {
        self.followers(active, now)
            .any(|m| self.members[m.index()].stalled_until <= now)
    }

    /// Whether a standby is synchronous with `active` at `now`: it receives, and has caught up
    /// (one still catching up on what it lacks does not acknowledge yet).
    fn synchronous(&self, active: MemberId, now: Millis) -> bool {
        let leader = self.data(active).map(|data| data.lsn);
        self.followers(active, now).any(|m| {
            self.members[m.index()].stalled_until <= now
                && self.data(m).map(|data| data.lsn) == leader
        })
    }

    /// What clients get at `now`, until the next change: whether their writes are acknowledged
    /// (one member accepts them and acknowledges), and whether a standby receives them as well.
    pub fn service(&self, now: Millis) -> Service {
        let mut accepting = self.members().filter(|m| self.accepting_writes(*m, now));
        match (accepting.next(), accepting.next()) {
            (Some(active), None) => Service {
                writes: self.acknowledges(active, now),
                redundant: self.receives(active, now),
            },
            _ => Service::default(),
        }
    }

    /// Full copies and rewinds started, from the first.
    pub fn started_copies(&self) -> (u32, u32) {
        (self.copies_started, self.rewinds_started)
    }

    /// Connected, unstalled standbys receive from `now` to `until`: all of it under sync, all but
    /// the replication lag under async, at most at the stream's rate (`copyMegabytesPerSecond`),
    /// so that a standby that reconnects far behind takes the time its lag takes to catch up.
    pub(super) fn replicate(&mut self, now: Millis, until: Millis) {
        let allowance = self
            .config
            .stream_bytes_per_ms()
            .saturating_mul(until - now);
        for standby in self.members() {
            if !self.connected(standby, now) || self.members[standby.index()].stalled_until > now {
                continue;
            }
            let active = self.members[standby.index()]
                .replicating_from
                .expect("connected");
            let (Some(leader), Some(index)) = (self.data(active), self.volume_of(standby)) else {
                continue;
            };
            // Async trails by the replication lag while writes flow, and catches up when they stop.
            let quiet = now >= self.last_write_at + self.config.replication_lag_ms;
            let lag_bytes = match self.replication {
                Replication::Sync | Replication::SyncPreferred => 0,
                Replication::Async if quiet => 0,
                Replication::Async => {
                    u64::from(self.config.writes_per_second)
                        * self.config.replication_lag_ms
                        * WRITE_BYTES
                        / 1000
                }
            };
            let target = leader.lsn.saturating_sub(lag_bytes);
            let current = self.volumes[index.0].data;
            let lsn = current
                .lsn
                .max(target.min(current.lsn.saturating_add(allowance)))
                .min(leader.lsn);
            self.volumes[index.0].data = Position {
                branch: leader.branch,
                lsn,
            };
        }
    }

    /// The agent's report, as a poll at `now` returns it (the caller checked reachability); the
    /// poll renews the agent's lease for `lease_ms`, or gives it none (`Spec::agent_lease`).
    pub fn report(
        &mut self,
        member: MemberId,
        now: Millis,
        lease_ms: Option<Millis>,
    ) -> AgentReport {
        self.members[member.index()].last_polled = Some(now);
        self.members[member.index()].lease_ms = lease_ms;
        if let Some(lease_ms) = lease_ms {
            self.later.push((
                now + lease_ms,
                Later::LeaseCheck {
                    member,
                    polled_at: now,
                },
            ));
        }
        let state = &self.members[member.index()];
        let process = match state.process {
            Proc::Down => Process::Down,
            Proc::Starting(_) => Process::Starting,
            Proc::Running => Process::Running,
        };
        let volume = self.volume_of(member).map(|index| &self.volumes[index.0]);
        let lsn = volume.map_or(0, |volume| volume.data.lsn);
        let connected = match state.role {
            Role::Active => self.followers(member, now).next().is_some(),
            _ => self.connected(member, now),
        };
        let in_sync = state.role == Role::Standby
            && connected
            && state
                .replicating_from
                .and_then(|active| self.data(active))
                .map(|data| data.lsn)
                == Some(lsn);
        let copy = match state.copying {
            Some(_) => {
                let elapsed = now.saturating_sub(state.copy_started);
                let percent = (elapsed * 100 / state.copy_ms.max(1)).min(99);
                CopyProgress::Copying {
                    percent: u8::try_from(percent).unwrap_or(99),
                }
            }
            None if state.copy_failed => CopyProgress::Failed,
            None => CopyProgress::Idle,
        };
        AgentReport {
            process,
            role: state.role,
            lsn: Lsn(lsn),
            replication_connected: connected,
            in_sync: in_sync && self.replication != Replication::Async,
            copy_complete: volume.is_some_and(|volume| volume.copy_complete),
            config_hash: ConfigHash(state.config_hash),
            copy,
            not_serving: (state.role != Role::Active)
                .then_some(state.not_serving)
                .flatten(),
            timeline: volume
                .filter(|_| self.config.agents_report_history)
                .map_or_else(Timeline::default, |volume| {
                    self.history.timeline(volume.data)
                }),
        }
    }

    /// An agent whose lease ran out stops accepting writes: it demotes its database.
    pub(super) fn lease_check(&mut self, member: MemberId, polled_at: Millis, now: Millis) {
        let state = &mut self.members[member.index()];
        if state.last_polled != Some(polled_at) {
            return; // polled since
        }
        if state.hung_until > now {
            // Frozen: it fences the moment it thaws (see `thaw`).
            return;
        }
        if state.role == Role::Active {
            state.role = Role::None;
            state.replicating_from = None;
            state.not_serving = Some(NotServing::LeaseExpired);
        }
    }

    /// A frozen member thaws: its agent first checks its lease.
    pub fn thaw(&mut self, member: MemberId, now: Millis) {
        let state = &mut self.members[member.index()];
        // Never polled, or the last poll's lease is over; a poll that gave no lease keeps it.
        let expired = match (state.last_polled, state.lease_ms) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(at), Some(lease_ms)) => now >= at + lease_ms,
        };
        if expired && state.role == Role::Active {
            state.role = Role::None;
            state.replicating_from = None;
            state.not_serving = Some(NotServing::LeaseExpired);
        }
    }

    pub(super) fn start_process(&mut self, member: MemberId, uid: String, now: Millis) {
        let start_ms = self.members[member.index()]
            .slow_start_ms
            .take()
            .unwrap_or(self.config.pod_start_ms);
        let state = &mut self.members[member.index()];
        state.process = Proc::Starting(now + start_ms);
        state.role = Role::None;
        state.replicating_from = None;
        state.copy_failed |= state.copying.is_some();
        state.copying = None;
        state.not_serving = Some(NotServing::Starting);
        state.config_hash = self.config_hash;
        self.later
            .push((now + start_ms, Later::ProcessUp { member, uid }));
    }

    /// A starting process is up: read-only, with no role, waiting for the engine.
    pub(super) fn process_up(&mut self, member: MemberId, uid: &str, now: Millis) {
        let pod_matches = self.members[member.index()]
            .pod
            .as_ref()
            .is_some_and(|pod| pod.uid == uid);
        if !pod_matches || !self.node_up(member) {
            return;
        }
        let state = &mut self.members[member.index()];
        if matches!(state.process, Proc::Starting(at) if at <= now) {
            state.process = Proc::Running;
            state.role = Role::None;
            state.not_serving = Some(if state.crashed {
                NotServing::Restarted
            } else {
                NotServing::Starting
            });
            state.crashed = false;
            self.changed.push(Changed::Pod(member));
        }
    }

    /// Promotes the member: it becomes the active, on a new branch of history.
    pub fn promote(&mut self, member: MemberId) -> bool {
        let complete = self
            .volume_of(member)
            .is_some_and(|index| self.volumes[index.0].copy_complete);
        if !self.running(member) || !complete {
            return false;
        }
        if self.members[member.index()].role != Role::Active {
            let index = self.volume_of(member).expect("checked");
            let forked = self.history.fork(self.volumes[index.0].data);
            self.volumes[index.0].data = forked;
            let state = &mut self.members[member.index()];
            state.role = Role::Active;
            state.replicating_from = None;
            state.copying = None;
            state.not_serving = None;
            // A promoted database waits for its standby until told otherwise.
            state.sync_relaxed = false;
        }
        true
    }

    /// The active stops waiting for its standby (`relax`), or waits for it again. Refused by a
    /// member that is not the running active.
    pub fn set_sync_relaxed(&mut self, member: MemberId, relax: bool) -> bool {
        if !self.running(member) || self.members[member.index()].role != Role::Active {
            return false;
        }
        self.members[member.index()].sync_relaxed = relax;
        true
    }

    /// Demotes (`demote`: to a standby) or fences (to no role) the member.
    pub fn demote(&mut self, member: MemberId, to: Role) -> bool {
        let state = &mut self.members[member.index()];
        if state.role == Role::Active {
            state.role = to;
            state.replicating_from = None;
            state.not_serving = Some(if to == Role::Standby {
                NotServing::Demoted
            } else {
                NotServing::Fenced
            });
        }
        true
    }

    /// Starts copying the member's data afresh from `from`.
    pub fn rebuild(&mut self, member: MemberId, from: MemberId, now: Millis) -> bool {
        if !self.running(member) || self.members[member.index()].role == Role::Active {
            return false;
        }
        if self.members[member.index()].copying.is_some() {
            return true;
        }
        if self.volume_of(member).is_none() {
            return false;
        }
        let copy_ms = self.config.copy_ms();
        self.start_copy(member, from, Position::default(), now, copy_ms, false);
        true
    }

    /// Starts a copy into `member`'s volume (a rebuild, or a rewind when `rewinding`): its data
    /// becomes `data`, incomplete until the copy ends `copy_ms` from `now`.
    fn start_copy(
        &mut self,
        member: MemberId,
        from: MemberId,
        data: Position,
        now: Millis,
        copy_ms: Millis,
        rewinding: bool,
    ) {
        let index = self.volume_of(member).expect("a copy goes into a volume");
        self.volumes[index.0].data = data;
        self.volumes[index.0].copy_complete = false;
        self.next_token += 1;
        let token = self.next_token;
        let state = &mut self.members[member.index()];
        state.role = Role::Standby;
        state.replicating_from = None;
        state.copying = Some((from, token));
        state.rewinding = rewinding;
        state.copy_started = now;
        state.copy_ms = copy_ms;
        state.copy_failed = false;
        if rewinding {
            self.rewinds_started += 1;
        } else {
            self.copies_started += 1;
        }
        self.later
            .push((now + copy_ms, Later::CopyDone { member, token }));
    }

    /// Starts rewinding the member's data against `from`'s: its suffix past the last position
    /// the two histories share is discarded at once, and the database is back once the rewind
    /// copied the diverged blocks from `from` and restarted ([`WorldConfig::rewind_ms`]). An
    /// agent that cannot rewind (`agentsRewind: false`) refuses.
    pub fn rewind(&mut self, member: MemberId, from: MemberId, now: Millis) -> bool {
        if !self.config.agents_rewind
            || !self.running(member)
            || self.members[member.index()].role == Role::Active
        {
            return false;
        }
        if self.members[member.index()].copying.is_some() {
            return self.members[member.index()].rewinding;
        }
        let (Some(index), Some(leader)) = (self.volume_of(member), self.data(from)) else {
            return false;
        };
        if !self.volumes[index.0].copy_complete {
            return false;
        }
        let own = self.volumes[index.0].data;
        let common = self.history.common(own, leader);
        let diverged_bytes = own.lsn.saturating_sub(common.lsn);
        let copy_ms = self.config.rewind_ms(diverged_bytes);
        self.start_copy(member, from, common, now, copy_ms, true);
        self.members[member.index()].not_serving = None;
        true
    }

    /// A rebuild's copy ends: it succeeds if the source is still the running active.
    pub(super) fn copy_done(&mut self, member: MemberId, token: u64, now: Millis) {
        let Some((from, current)) = self.members[member.index()].copying else {
            return;
        };
        if current != token {
            return;
        }
        self.members[member.index()].copying = None;
        self.members[member.index()].copy_failed = true; // unless it completes below
        let source_ok = self.running(from)
            && self.members[from.index()].role == Role::Active
            && self.running(member)
            && self.members[member.index()].broken_until <= now;
        let (Some(source), Some(index)) = (self.data(from), self.volume_of(member)) else {
            return;
        };
        if source_ok {
            // A full copy takes the source's data; a rewind keeps the prefix it rewound to.
            if !self.members[member.index()].rewinding {
                self.volumes[index.0].data = source;
            }
            self.volumes[index.0].copy_complete = true;
            self.members[member.index()].replicating_from = Some(from);
            self.members[member.index()].copy_failed = false;
        }
    }

    /// Points the member's replication at `from`; a member with no role (restarted, fenced)
    /// becomes a standby first. It connects only if its data is a prefix of `from`'s.
    pub fn restart_replication(&mut self, member: MemberId, from: MemberId) -> bool {
        let complete = self
            .volume_of(member)
            .is_some_and(|index| self.volumes[index.0].copy_complete);
        let running = self.running(member);
        let state = &mut self.members[member.index()];
        if state.role == Role::Active || !running || !complete || state.copying.is_some() {
            return false;
        }
        state.role = Role::Standby;
        state.not_serving = None;
        state.replicating_from = Some(from);
        true
    }

    /// The container restarts a crashed process.
    pub(super) fn restart(&mut self, member: MemberId, uid: &str, now: Millis) {
        let matches = self.members[member.index()]
            .pod
            .as_ref()
            .is_some_and(|pod| pod.uid == uid);
        if matches && self.node_up(member) && self.members[member.index()].process == Proc::Down {
            self.start_process(member, uid.to_string(), now);
        }
    }

    /// The process dies.
    pub(super) fn crash(&mut self, member: MemberId) {
        let state = &mut self.members[member.index()];
        state.process = Proc::Down;
        state.role = Role::None;
        state.replicating_from = None;
        state.copy_failed |= state.copying.is_some();
        state.copying = None;
        state.crashed = true;
    }

    // --- faults ---------------------------------------------------------------------------------

    /// The process crashes (its pod's watch sees it); its container restarts it after
    /// `restart_after`, if given.
    pub fn crash_process(&mut self, member: MemberId, now: Millis, restart_after: Option<Millis>) {
        let uid = self.pod_uid(member).map(str::to_string);
        self.crash(member);
        self.changed.push(Changed::Pod(member));
        if let (Some(after), Some(uid)) = (restart_after, uid) {
            self.later
                .push((now + after, Later::Restart { member, uid }));
        }
    }

    /// The process freezes until `until`: it accepts no write, streams nothing and its agent
    /// answers no poll; the agent checks its lease when it thaws (see [`World::thaw`]).
    pub fn hang(&mut self, member: MemberId, until: Millis) {
        self.members[member.index()].hung_until = until;
    }

    /// The operator cannot reach the member's agent until `until`; replication goes on.
    pub fn partition(&mut self, member: MemberId, until: Millis) {
        self.members[member.index()].partitioned_until = until;
    }

    /// The member is cut off from the operator and from its replication peer until `until`: its
    /// agent is unreachable, and nothing replicates to or from it.
    pub fn isolate(&mut self, member: MemberId, until: Millis) {
        self.members[member.index()].isolated_until = until;
    }

    /// The standby stays connected but applies nothing until `until`.
    pub fn stall_replication(&mut self, member: MemberId, until: Millis) {
        self.members[member.index()].stalled_until = until;
    }

    /// The member's replication link is broken until `until` (a copy to it fails too).
    pub fn break_replication(&mut self, member: MemberId, until: Millis) {
        self.members[member.index()].broken_until = until;
    }

    /// The member's disk is full until `until`: as the active, it acknowledges no write.
    pub fn fill_disk(&mut self, member: MemberId, until: Millis) {
        self.members[member.index()].disk_full_until = until;
    }

    /// The member's next start takes `start_ms` instead of `podStartSeconds`.
    pub fn slow_next_start(&mut self, member: MemberId, start_ms: Millis) {
        self.members[member.index()].slow_start_ms = Some(start_ms);
    }

    /// From `now` until `until`, the member's agent alternates between reachable and
    /// unreachable every `period_ms`.
    pub fn flap_agent(&mut self, member: MemberId, now: Millis, period_ms: Millis, until: Millis) {
        self.members[member.index()].flapping = Some((now, period_ms, until));
    }
}
