//! The world as the run drives it: through its public methods, with what it schedules carried
//! out in time order and the interval before each event settled first (`run::Sim::advance` and
//! `World::carry_out`); the assertions may also look at its private state. A builder takes a
//! master-slave world to its steady state (member 0 the active, member 1 a standby replicating
//! from it); the tests then break it one way at a time.

use super::*;
use tandem_engine::{NodeName, NotServing, Process, Replication, Role, Topology};

/// The members of a master-slave world: member 0 is the active of the steady worlds, member 1
/// their standby.
const M0: MemberId = MemberId(0);
const M1: MemberId = MemberId(1);

/// The agents' lease in these worlds.
const LEASE_MS: Millis = 20_000;

/// The replication lag of the steady worlds: a whole number of writes (50 at 50 writes/s), so
/// that an async standby trails by exactly `LAG_WRITES`.
const LAG_MS: Millis = 1_000;
const LAG_WRITES: u64 = 50;

/// A world with its clock and the work it scheduled, run as the simulator runs it.
struct Harness {
    world: World,
    now: Millis,
    pending: Vec<(Millis, Later)>,
}

impl Harness {
    fn new(topology: Topology, replication: Replication, config: WorldConfig) -> Harness {
        Harness {
            world: World::new(config, topology, replication),
            now: 0,
            pending: Vec::new(),
        }
    }

    /// Client writes and replication up to `to`, as `Sim::advance` settles them; a split brain
    /// fails the test.
    fn settle_to(&mut self, to: Millis) {
        assert!(to >= self.now, "time runs forwards");
        if let Some(members) = self.world.settle(self.now, to) {
            panic!("split brain at {}: {members:?}", self.now);
        }
        self.now = to;
    }

    /// Carries out what the world scheduled up to `to`, in time order (ties in the order
    /// scheduled), each after settling the interval before it; then settles up to `to`.
    fn run_until(&mut self, to: Millis) {
        loop {
            self.pending.extend(self.world.take_later());
            let next = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= to)
                .min_by_key(|(index, (at, _))| (*at, *index))
                .map(|(index, _)| index);
            let Some(index) = next else { break };
            let (at, later) = self.pending.remove(index);
            self.settle_to(at.max(self.now));
            self.world.carry_out(later, self.now);
        }
        self.settle_to(to);
        self.world.take_changes();
    }

    /// Lets `ms` of simulated time pass.
    fn wait(&mut self, ms: Millis) {
        self.run_until(self.now + ms);
    }

    fn uid(&self, member: MemberId) -> String {
        let uid = self.world.pod_uid(member).expect("the member has a pod");
        uid.to_string()
    }

    fn data(&self, member: MemberId) -> Position {
        self.world.data(member).expect("the member has a volume")
    }

    fn acked(&self) -> u64 {
        self.world.history().acknowledged_writes()
    }

    fn lost_on(&self, member: MemberId) -> u64 {
        self.world.history().lost_writes(self.world.data(member))
    }
}

/// The name of node `index`, as the engine names it in its effects.
fn node(index: usize) -> NodeName {
    NodeName(format!("node-{index}"))
}

fn lagging_config() -> WorldConfig {
    WorldConfig {
        replication_lag_ms: LAG_MS,
        ..WorldConfig::default()
    }
}

/// A master-slave world in its steady state, reached the way the engine's effects reach it:
/// the StatefulSet scaled to two, a local PV per member on its own node, the PVCs bound, both
/// databases up, member 0 promoted, member 1 rebuilt from it, then ten seconds of writes.
fn steady(replication: Replication) -> Harness {
    let mut h = Harness::new(Topology::MasterSlave, replication, lagging_config());
    h.world.set_replicas(2, 0);
    for member in [M0, M1] {
        let pod = h.world.members[member.index()].pod.as_ref();
        assert!(pod.is_some_and(|pod| pod.node.is_none()), "pending pod");
        assert!(h.world.provision(member, &node(member.index()), 1));
        assert!(h.world.bind_pvc(member, 0));
        assert_eq!(h.world.node_of(member), Some(NodeIndex(member.index())));
    }
    // Only member 0 initializes a fresh database; member 1 has no complete copy to promote.
    assert!(h.world.volumes[0].copy_complete);
    assert!(!h.world.volumes[1].copy_complete);
    let up = h.world.config.pod_start_ms;
    h.run_until(up - 1);
    assert!(!h.world.running(M0) && !h.world.running(M1));
    h.run_until(up);
    assert!(h.world.running(M0) && h.world.running(M1));
    assert_eq!(h.world.active(), None);
    assert!(!h.world.promote(M1), "an empty copy is never promoted");
    assert!(h.world.promote(M0));
    assert!(h.world.rebuild(M1, M0, h.now));
    let rebuilt = h.now + h.world.config.rebuild_ms;
    h.run_until(rebuilt);
    h.wait(10_000);

    let world = &h.world;
    assert_eq!(world.active(), Some(M0));
    assert_eq!(world.role(M1), Role::Standby);
    assert_eq!(world.members[1].replicating_from, Some(M0));
    assert!(world.connected(M1, h.now));
    assert!(world.volumes.iter().all(|volume| volume.copy_complete));
    assert!(h.acked() >= 500, "ten seconds of writes at 50/s");
    let (active, standby) = (h.data(M0), h.data(M1));
    assert_eq!(standby.branch, active.branch);
    match replication {
        Replication::Sync | Replication::SyncPreferred => assert_eq!(standby, active),
        Replication::Async => assert_eq!(standby.lsn + LAG_WRITES * WRITE_BYTES, active.lsn),
    }
    h
}

// --- split brain and who accepts writes -------------------------------------------------------

#[test]
fn a_steady_world_has_one_member_accepting_writes() {
    for replication in [Replication::Sync, Replication::Async] {
        let mut h = steady(replication);
        assert!(h.world.accepting_writes(M0, h.now));
        assert!(!h.world.accepting_writes(M1, h.now));
        assert_eq!(h.world.settle(h.now, h.now + 1_000), None);
    }
}

#[test]
fn settle_reports_two_members_accepting_writes_as_a_split_brain() {
    let mut h = steady(Replication::Async);
    let (acked, data) = (h.acked(), h.data(M0));
    // A promotion with the active still serving: both accept writes.
    assert!(h.world.promote(M1));
    assert_eq!(h.world.settle(h.now, h.now + 1_000), Some(vec![M0, M1]));
    // Nothing is written while the run stops on it.
    assert_eq!(h.acked(), acked);
    assert_eq!(h.data(M0), data);
    // Fenced, the old active leaves one member accepting writes, and writes flow to it.
    assert!(h.world.demote(M0, Role::None));
    assert_eq!(h.world.settle(h.now, h.now + 1_000), None);
    assert_eq!(h.acked(), acked + 50);
    assert_eq!(
        h.lost_on(M1),
        LAG_WRITES,
        "the promoted standby trailed by the lag"
    );
}

#[test]
fn a_hung_active_accepts_no_writes_until_it_thaws() {
    let mut h = steady(Replication::Sync);
    let acked = h.acked();
    h.world.hang(M0, h.now + 5_000);
    assert!(!h.world.accepting_writes(M0, h.now));
    assert!(!h.world.agent_reachable(M0, h.now));
    assert!(
        !h.world.connected(M1, h.now),
        "a frozen active streams nothing"
    );
    let thawed = h.now + 5_000;
    h.run_until(thawed - 1);
    assert_eq!(h.acked(), acked);
    assert!(!h.world.accepting_writes(M0, h.now));
    // The run settles up to the end of the hang, which it queues, then on.
    h.run_until(thawed);
    assert!(h.world.accepting_writes(M0, h.now));
    h.wait(1_000);
    assert_eq!(h.acked(), acked + 50);
}

#[test]
fn a_fenced_or_demoted_member_accepts_no_writes() {
    for (to, why) in [
        (Role::None, NotServing::Fenced),
        (Role::Standby, NotServing::Demoted),
    ] {
        let mut h = steady(Replication::Async);
        let acked = h.acked();
        assert!(h.world.demote(M0, to));
        assert_eq!(h.world.role(M0), to);
        assert_eq!(h.world.members[0].not_serving, Some(why));
        assert!(!h.world.accepting_writes(M0, h.now));
        assert_eq!(h.world.active(), None);
        h.wait(2_000);
        assert_eq!(h.acked(), acked);
        assert_eq!(
            h.world.report(M0, h.now, Some(LEASE_MS)).not_serving,
            Some(why)
        );
    }
}

#[test]
fn an_active_without_its_volume_accepts_no_writes() {
    let mut h = steady(Replication::Async);
    let acked = h.acked();
    assert!(h.world.release(M0, None, 1));
    assert_eq!(h.world.data(M0), None);
    assert!(h.world.running(M0));
    assert!(!h.world.accepting_writes(M0, h.now));
    h.wait(2_000);
    assert_eq!(h.acked(), acked);
}

#[test]
fn a_crashed_active_or_one_on_a_dead_node_accepts_no_writes() {
    let mut h = steady(Replication::Async);
    h.world.crash(M0);
    assert!(!h.world.accepting_writes(M0, h.now));
    assert_eq!(h.world.role(M0), Role::None);

    let mut h = steady(Replication::Async);
    h.world.node_loss(NodeIndex(0), h.now, Some(60_000));
    assert!(!h.world.running(M0));
    assert!(!h.world.accepting_writes(M0, h.now));
    assert!(!h.world.agent_reachable(M0, h.now));
}

#[test]
fn a_standalone_active_acknowledges_alone_and_holds_the_only_copy() {
    let mut h = Harness::new(
        Topology::Standalone,
        Replication::Sync,
        WorldConfig::default(),
    );
    h.world.set_replicas(1, 0);
    assert!(h.world.provision(M0, &node(2), 1));
    assert!(h.world.bind_pvc(M0, 0));
    h.wait(h.world.config.pod_start_ms);
    assert!(h.world.promote(M0));
    h.wait(2_000);
    assert_eq!(h.acked(), 100, "no standby to wait for");
    assert_eq!(h.lost_on(M0), 0);
    assert!(h.world.holds_the_newest_copy(M0));
    assert_eq!(h.world.node_of(M0), Some(NodeIndex(2)));
    h.world.node_loss(NodeIndex(2), h.now, None);
    assert!(!h.world.holds_the_newest_copy(M0));
    // A new volume for the member on another node starts empty: nothing to initialize from.
    assert!(h.world.provision(M0, &node(1), 2));
    assert!(!h.world.volumes[1].copy_complete);
}

// --- replication and acknowledged writes -------------------------------------------------------

#[test]
fn sync_acknowledges_writes_only_while_the_standby_receives_them() {
    type Fault = fn(&mut World, MemberId, Millis);
    let faults: [(&str, Fault); 4] = [
        ("isolated", World::isolate),
        ("stalled", World::stall_replication),
        ("broken", World::break_replication),
        ("frozen", World::hang),
    ];
    for (name, fault) in faults {
        let mut h = steady(Replication::Sync);
        let acked = h.acked();
        h.wait(1_000);
        assert_eq!(h.acked(), acked + 50, "{name}: connected, every write");
        assert_eq!(h.data(M1), h.data(M0));
        let (acked, data) = (h.acked(), h.data(M0));
        fault(&mut h.world, M1, h.now + 3_000);
        h.wait(3_000);
        assert_eq!(h.acked(), acked, "{name}: no write acknowledged");
        assert_eq!(h.data(M0), data, "{name}: the active wrote nothing");
        h.wait(1_000);
        assert_eq!(h.acked(), acked + 50, "{name}: writes again once it ends");
        assert_eq!(h.data(M1), h.data(M0));
    }
    // A standby that is down or being rebuilt leaves writes waiting too.
    let mut h = steady(Replication::Sync);
    h.world.crash(M1);
    let acked = h.acked();
    h.wait(3_000);
    assert_eq!(h.acked(), acked);
    let mut h = steady(Replication::Sync);
    let acked = h.acked();
    assert!(h.world.rebuild(M1, M0, h.now));
    h.wait(3_000);
    assert_eq!(h.acked(), acked);
}

#[test]
fn sync_preferred_waits_for_the_standby_until_relaxed_and_a_promotion_waits_again() {
    let mut h = steady(Replication::SyncPreferred);
    assert_eq!(h.data(M1), h.data(M0));
    h.world.crash(M1);
    let acked = h.acked();
    h.wait(3_000);
    assert_eq!(h.acked(), acked, "strict until relaxed");
    assert!(
        !h.world.set_sync_relaxed(M1, true),
        "only the active relaxes"
    );
    assert!(h.world.set_sync_relaxed(M0, true));
    h.wait(1_000);
    assert_eq!(h.acked(), acked + 50, "relaxed: acknowledged alone");
    assert!(h.world.set_sync_relaxed(M0, false));
    let acked = h.acked();
    h.wait(1_000);
    assert_eq!(h.acked(), acked, "restored: waits again");
    assert!(h.world.set_sync_relaxed(M0, true));
    // Demoted and promoted again, it waits for a standby until told otherwise.
    assert!(h.world.demote(M0, Role::None));
    assert!(h.world.promote(M0));
    let acked = h.acked();
    h.wait(1_000);
    assert_eq!(h.acked(), acked);
}

#[test]
fn async_acknowledges_at_once_and_the_standby_trails() {
    let mut h = steady(Replication::Async);
    let acked = h.acked();
    h.wait(1_000);
    assert_eq!(h.acked(), acked + 50);
    assert_eq!(h.lost_on(M0), 0);
    assert_eq!(h.lost_on(M1), LAG_WRITES);
    // Cut off, the standby stays where it was; the active acknowledges on.
    let behind = h.data(M1);
    h.world.isolate(M1, h.now + 5_000);
    h.wait(5_000);
    assert_eq!(h.acked(), acked + 300);
    assert_eq!(h.data(M1), behind);
    assert_eq!(h.lost_on(M1), LAG_WRITES + 250);
    // Back, it trails by the lag again; once writes stop (a full disk), it catches up.
    h.wait(1_000);
    assert_eq!(h.lost_on(M1), LAG_WRITES);
    h.world.fill_disk(M0, h.now + 10_000);
    let acked = h.acked();
    h.wait(LAG_MS);
    h.wait(1);
    assert_eq!(h.acked(), acked);
    assert_eq!(h.data(M1), h.data(M0));
    assert_eq!(h.lost_on(M1), 0);
}

#[test]
fn catching_up_takes_the_time_the_lag_takes_at_the_stream_rate() {
    // Under strict sync, a standby cut off for a while and back far behind acknowledges nothing
    // until it has caught up; twice the lag takes twice as long. At 1 MiB/s a millisecond
    // streams 1,048 bytes.
    let cut_ms = 2_000;
    for alone_ms in [400, 800] {
        let mut h = steady(Replication::Sync);
        h.world.config.copy_megabytes_per_second = 1;
        // The standby's lag is built while the active acknowledges alone (as async would), for
        // `alone_ms`; then the mode is strict again, and the cut ends.
        h.world.isolate(M1, h.now + cut_ms);
        h.world.replication = Replication::Async;
        h.wait(alone_ms);
        h.world.replication = Replication::Sync;
        h.wait(cut_ms - alone_ms);
        let lag = h.data(M0).lsn - h.data(M1).lsn;
        assert!(lag > 0, "it is behind once it reconnects");
        let catch_up_ms = lag.div_ceil(1_048);
        let acked = h.acked();
        h.wait(catch_up_ms / 2);
        assert!(h.data(M1).lsn < h.data(M0).lsn, "still catching up");
        assert_eq!(
            h.acked(),
            acked,
            "no write acknowledged while it catches up"
        );
        h.wait(catch_up_ms);
        assert_eq!(h.data(M1), h.data(M0), "caught up after lag / rate");
        h.wait(1_000);
        assert!(h.acked() > acked, "synchronous again");
    }
}

#[test]
fn the_standby_reports_what_it_received() {
    let mut h = steady(Replication::Sync);
    let report = h.world.report(M1, h.now, Some(LEASE_MS));
    assert_eq!(report.process, Process::Running);
    assert_eq!(report.role, Role::Standby);
    assert_eq!(report.lsn.0, h.data(M0).lsn);
    assert!(report.replication_connected && report.in_sync && report.copy_complete);
    let active = h.world.report(M0, h.now, Some(LEASE_MS));
    assert!(active.replication_connected);
    assert_eq!(active.not_serving, None);

    let mut h = steady(Replication::Async);
    let report = h.world.report(M1, h.now, Some(LEASE_MS));
    assert!(report.replication_connected);
    assert!(!report.in_sync);
    assert_eq!(report.lsn.0 + LAG_WRITES * WRITE_BYTES, h.data(M0).lsn);
    // Caught up once writes stop, an async standby is still not a synchronous one.
    h.world.fill_disk(M0, h.now + 10_000);
    h.wait(LAG_MS);
    h.wait(1);
    let report = h.world.report(M1, h.now, Some(LEASE_MS));
    assert_eq!(report.lsn.0, h.data(M0).lsn);
    assert!(report.replication_connected);
    assert!(!report.in_sync, "an async standby is never in sync");
}

// --- rebuilds ---------------------------------------------------------------------------------

#[test]
fn a_copy_completes_only_from_a_running_active() {
    let mut h = steady(Replication::Sync);
    let rebuild_ms = h.world.config.rebuild_ms;
    assert!(h.world.rebuild(M1, M0, h.now));
    assert_eq!(h.data(M1), Position::default(), "a rebuild wipes the copy");
    assert!(!h.world.volumes[1].copy_complete);
    assert!(
        !h.world.promote(M1),
        "nor can a copy in progress be promoted"
    );
    h.wait(rebuild_ms / 2);
    let copying = h.world.report(M1, h.now, Some(LEASE_MS)).copy;
    assert_eq!(
        copying,
        tandem_engine::CopyProgress::Copying { percent: 50 }
    );
    // The source crashes before the copy ends: the copy fails, and stays wiped.
    h.world.crash(M0);
    h.wait(rebuild_ms);
    assert!(!h.world.volumes[1].copy_complete);
    assert_eq!(h.data(M1), Position::default());
    let report = h.world.report(M1, h.now, Some(LEASE_MS));
    assert_eq!(report.copy, tandem_engine::CopyProgress::Failed);
    assert!(!report.copy_complete);
    // A rebuild on a restart of the member itself fails as well.
    let mut h = steady(Replication::Sync);
    assert!(h.world.rebuild(M1, M0, h.now));
    h.wait(1_000);
    h.world.crash(M1);
    let uid = h.uid(M1);
    h.world.restart(M1, &uid, h.now);
    h.wait(rebuild_ms);
    assert!(!h.world.volumes[1].copy_complete);
    assert_eq!(
        h.world.report(M1, h.now, Some(LEASE_MS)).copy,
        tandem_engine::CopyProgress::Failed
    );
}

// --- lost writes, the newest copy, and copies that survive ------------------------------------

/// The active's node is lost for good and the standby promoted: under async it lacks the writes
/// it trailed by, under sync nothing.
#[test]
fn a_failover_loses_what_an_async_standby_missed_and_nothing_under_sync() {
    for (replication, lost) in [(Replication::Async, LAG_WRITES), (Replication::Sync, 0)] {
        let mut h = steady(replication);
        assert_eq!(h.lost_on(M0), 0, "the active holds its own writes");
        assert_eq!(h.lost_on(M1), lost);
        let acked = h.acked();
        h.world.node_loss(NodeIndex(0), h.now, None);
        assert!(!h.world.survives(M0));
        assert!(h.world.survives(M1));
        assert!(!h.world.connected(M1, h.now));
        h.wait(5_000);
        assert_eq!(h.acked(), acked, "no one writes");
        assert_eq!(h.lost_on(M1), lost, "nothing arrives from a dead node");
        assert!(h.world.promote(M1));
        assert_eq!(h.world.active(), Some(M1));
        assert_eq!(h.lost_on(M1), lost, "{replication:?}");
        // The new active's own writes are not lost; under sync it waits for a standby.
        h.wait(5_000);
        assert_eq!(h.lost_on(M1), lost, "{replication:?}");
        let written = if replication == Replication::Async {
            250
        } else {
            0
        };
        assert_eq!(h.acked(), acked + written);
    }
}

#[test]
fn the_newest_copy_is_the_one_holding_every_acknowledged_write() {
    // Sync: both copies hold everything; wiping either loses nothing.
    let h = steady(Replication::Sync);
    assert!(!h.world.holds_the_newest_copy(M0));
    assert!(!h.world.holds_the_newest_copy(M1));

    // Async: the active is ahead of its standby.
    let mut h = steady(Replication::Async);
    assert!(h.world.holds_the_newest_copy(M0));
    assert!(!h.world.holds_the_newest_copy(M1));
    // With the standby down, the active keeps writing what no other copy has.
    h.world.crash(M1);
    h.wait(1_000);
    assert!(h.world.holds_the_newest_copy(M0));
    assert!(!h.world.holds_the_newest_copy(M1));

    // The active's node lost for good: the trailing standby is now the best copy left, and a
    // copy on a node gone for good holds nothing.
    let mut h = steady(Replication::Async);
    h.world.node_loss(NodeIndex(0), h.now, None);
    assert!(!h.world.survives(M0));
    assert!(!h.world.holds_the_newest_copy(M0));
    assert!(h.world.holds_the_newest_copy(M1));
    // Even under sync, the last surviving copy of acknowledged writes is the newest.
    let mut h = steady(Replication::Sync);
    h.world.node_loss(NodeIndex(0), h.now, None);
    assert!(h.world.holds_the_newest_copy(M1));
    // A released volume is no copy at all.
    let mut h = steady(Replication::Async);
    assert!(h.world.release(M1, None, 1));
    assert!(!h.world.survives(M1));
    assert!(!h.world.holds_the_newest_copy(M1));
    assert!(h.world.holds_the_newest_copy(M0));
}

#[test]
fn a_node_reboot_keeps_the_copy_and_a_loss_for_good_does_not() {
    let mut h = steady(Replication::Sync);
    h.world.node_loss(NodeIndex(1), h.now, Some(30_000));
    assert!(h.world.survives(M1));
    assert!(!h.world.running(M1));
    let up = h.now + 30_000 + h.world.config.pod_start_ms;
    h.run_until(up);
    assert!(
        h.world.running(M1),
        "back with its disk, the process restarts"
    );
    assert_eq!(h.world.members[1].not_serving, Some(NotServing::Restarted));
    assert!(h.world.survives(M1));

    // A loss for good overtakes a reboot in progress: the node never comes back.
    let mut h = steady(Replication::Sync);
    h.world.node_loss(NodeIndex(1), h.now, Some(30_000));
    h.wait(1_000);
    h.world.node_loss(NodeIndex(1), h.now, None);
    h.wait(120_000);
    assert!(!h.world.nodes[1].up);
    assert!(!h.world.survives(M1));
    assert!(!h.world.running(M1));
}

// --- branches: promotions fork, and a diverged copy cannot replicate ---------------------------

/// A switchover that promotes before the demoted active drained its standby forks history where
/// the standby was: the old active's last writes are on no branch the new one contains, and it
/// cannot replicate from it. Drained first, it can.
#[test]
fn a_promotion_forks_and_an_old_active_ahead_of_it_diverges() {
    let mut h = steady(Replication::Async);
    let old = h.data(M0);
    assert!(h.world.demote(M0, Role::Standby));
    assert!(h.world.promote(M1));
    let forked = h.data(M1);
    assert_ne!(forked.branch, old.branch);
    assert_eq!(forked.lsn + LAG_WRITES * WRITE_BYTES, old.lsn);
    h.wait(2_000);
    let new = h.data(M1);
    assert_eq!(new.branch, forked.branch);
    assert_eq!(new.lsn, forked.lsn + 100 * WRITE_BYTES);
    let history = &h.world.history;
    // The shared past is in both; the old active's last writes are not in the new one.
    let shared = Position {
        branch: old.branch,
        lsn: forked.lsn,
    };
    assert!(history.contains(new, shared));
    assert!(history.contains(old, shared));
    assert!(!history.contains(new, old));
    assert!(!history.contains(old, new));
    assert!(!history.is_prefix(old, new));
    assert_eq!(history.lost_writes(Some(new)), LAG_WRITES);
    assert_eq!(history.lost_writes(Some(old)), 100);
    // The diverged copy is not a newest copy: its extra writes were lost at the promotion.
    assert!(!h.world.holds_the_newest_copy(M0));
    assert!(h.world.restart_replication(M0, M1));
    assert!(!h.world.connected(M0, h.now));
    h.wait(2_000);
    assert_eq!(h.data(M0), old, "nothing replicates onto a diverged copy");

    // Drained first (writes stopped, the standby caught up), no write is lost and the old active
    // follows the new one.
    let mut h = steady(Replication::Async);
    assert!(h.world.demote(M0, Role::Standby));
    assert!(
        h.world.connected(M1, h.now),
        "a demoted active still streams"
    );
    h.wait(LAG_MS);
    h.wait(1);
    assert_eq!(h.data(M1), h.data(M0));
    assert!(h.world.promote(M1));
    assert!(h.world.history.is_prefix(h.data(M0), h.data(M1)));
    assert!(h.world.restart_replication(M0, M1));
    assert!(h.world.connected(M0, h.now));
    h.wait(2_000);
    assert_eq!(h.lost_on(M1), 0);
    assert_eq!(
        h.lost_on(M0),
        LAG_WRITES,
        "the new standby trails by the lag"
    );
}

// --- pods ---------------------------------------------------------------------------------------

#[test]
fn a_deleted_pod_is_recreated_after_the_statefulset_delay() {
    let mut h = steady(Replication::Sync);
    let old = h.uid(M1);
    let deleted = h.now;
    h.world.delete_pod(M1, deleted, false);
    assert!(h.world.members[1].pod.as_ref().unwrap().deleting);
    assert!(h.world.pod_observation(M1).unwrap().deleting);
    h.run_until(deleted + POD_GRACE_MS - 1);
    assert!(
        h.world.running(M1),
        "the process runs through its grace period"
    );
    h.run_until(deleted + POD_GRACE_MS);
    assert!(h.world.members[1].pod.is_none());
    assert!(!h.world.running(M1));
    h.run_until(deleted + POD_GRACE_MS + STATEFULSET_DELAY_MS - 1);
    assert!(h.world.members[1].pod.is_none());
    h.run_until(deleted + POD_GRACE_MS + STATEFULSET_DELAY_MS);
    let pod = h.world.members[1].pod.clone().expect("recreated");
    assert_ne!(pod.uid, old);
    assert_eq!(pod.node, Some(NodeIndex(1)), "on its PV's node");
    assert_eq!(pod.label, Role::None);
    assert!(!pod.deleting);
    h.wait(h.world.config.pod_start_ms);
    assert!(h.world.running(M1));
    assert_eq!(h.world.role(M1), Role::None);
    assert_eq!(h.world.members[1].not_serving, Some(NotServing::Restarted));
    assert!(h.world.volumes[1].copy_complete, "the PVC keeps its copy");
}

#[test]
fn a_graceful_deletion_on_a_dead_node_never_completes_and_a_forced_one_does() {
    let mut h = steady(Replication::Sync);
    h.world.node_loss(NodeIndex(1), h.now, None);
    let uid = h.uid(M1);
    h.world.delete_pod(M1, h.now, false);
    h.wait(3_600_000);
    let pod = h.world.members[1].pod.as_ref().expect("still there");
    assert!(pod.deleting);
    assert_eq!(pod.uid, uid);
    // Forced, it goes at once, and the StatefulSet recreates it on its PV's node, where it
    // cannot start.
    let forced = h.now;
    h.world.delete_pod(M1, forced, true);
    assert!(h.world.members[1].pod.is_none());
    assert_eq!(h.world.pod_observation(M1), None);
    h.run_until(forced + STATEFULSET_DELAY_MS);
    let pod = h.world.members[1].pod.clone().expect("recreated");
    assert_ne!(pod.uid, uid);
    assert_eq!(pod.node, Some(NodeIndex(1)));
    h.wait(60_000);
    assert!(!h.world.running(M1));
    assert_eq!(h.world.members[1].process, Proc::Down);

    // On a rebooting node, a graceful deletion completes when the node comes back.
    let mut h = steady(Replication::Sync);
    h.world.node_loss(NodeIndex(1), h.now, Some(30_000));
    let back = h.now + 30_000;
    let uid = h.uid(M1);
    h.world.delete_pod(M1, h.now, false);
    h.run_until(back - 1);
    assert!(
        h.world.members[1]
            .pod
            .as_ref()
            .is_some_and(|pod| pod.deleting)
    );
    // The kubelet confirms the deletion, and the StatefulSet, looking again as the node
    // returns, recreates the pod at once.
    h.run_until(back);
    let pod = h.world.members[1].pod.clone().expect("recreated");
    assert_ne!(pod.uid, uid);
    assert!(!pod.deleting);
    h.run_until(back + h.world.config.pod_start_ms);
    assert!(h.world.running(M1));
}

#[test]
fn scaling_to_zero_deletes_every_pod_gracefully() {
    let mut h = steady(Replication::Sync);
    h.world.set_replicas(0, h.now);
    assert!(
        h.world
            .members
            .iter()
            .all(|m| m.pod.as_ref().unwrap().deleting)
    );
    h.wait(POD_GRACE_MS + STATEFULSET_DELAY_MS + 10_000);
    assert!(h.world.members.iter().all(|m| m.pod.is_none()));
    assert!(h.world.members.iter().all(|m| m.pvc.is_some()), "PVCs stay");
    assert_eq!(h.world.active(), None);
}

#[test]
fn a_label_patch_with_a_stale_uid_changes_nothing() {
    let mut h = steady(Replication::Sync);
    let (uid0, uid1) = (h.uid(M0), h.uid(M1));
    assert!(h.world.labelled_active().is_empty());
    assert!(
        !h.world.label_pod(M0, &uid1, Role::Active),
        "another pod's uid"
    );
    assert!(!h.world.label_pod(M0, "pod-0", Role::Active));
    assert!(h.world.labelled_active().is_empty());
    assert!(h.world.label_pod(M0, &uid0, Role::Active));
    assert_eq!(h.world.labelled_active(), vec![M0]);
    // The pod replaced, the old uid no longer names it, and the new pod has no label.
    h.world.delete_pod(M0, h.now, true);
    h.wait(STATEFULSET_DELAY_MS);
    assert!(h.world.labelled_active().is_empty());
    assert!(!h.world.label_pod(M0, &uid0, Role::Active));
    assert!(h.world.labelled_active().is_empty());
    assert_eq!(h.world.members[0].pod.as_ref().unwrap().label, Role::None);
    assert!(!h.world.label_pod(M1, "", Role::Active));
    assert!(h.world.labelled_active().is_empty());
}

#[test]
fn labelled_active_lists_every_pod_labelled_active() {
    let mut h = steady(Replication::Sync);
    let (uid0, uid1) = (h.uid(M0), h.uid(M1));
    assert!(h.world.label_pod(M1, &uid1, Role::Active));
    assert_eq!(h.world.labelled_active(), vec![M1]);
    assert!(h.world.label_pod(M0, &uid0, Role::Active));
    assert_eq!(h.world.labelled_active(), vec![M0, M1]);
    assert!(h.world.label_pod(M1, &uid1, Role::Standby));
    assert_eq!(h.world.labelled_active(), vec![M0]);
    // A pod pending deletion still carries its label, and still counts.
    assert!(h.world.label_pod(M1, &uid1, Role::Active));
    h.world.delete_pod(M1, h.now, false);
    assert_eq!(h.world.labelled_active(), vec![M0, M1]);
    h.wait(POD_GRACE_MS);
    assert_eq!(h.world.labelled_active(), vec![M0]);
}

// --- the agents' lease ----------------------------------------------------------------------------

#[test]
fn an_agent_not_polled_for_its_lease_demotes_its_database() {
    let mut h = steady(Replication::Sync);
    let polled = h.now;
    assert_eq!(
        h.world.report(M0, polled, Some(LEASE_MS)).role,
        Role::Active
    );
    assert!(h.world.later.contains(&(
        polled + LEASE_MS,
        Later::LeaseCheck {
            member: M0,
            polled_at: polled
        }
    )));
    h.run_until(polled + LEASE_MS - 1);
    assert!(h.world.accepting_writes(M0, h.now));
    h.run_until(polled + LEASE_MS);
    assert_eq!(h.world.role(M0), Role::None);
    assert_eq!(
        h.world.members[0].not_serving,
        Some(NotServing::LeaseExpired)
    );
    assert!(!h.world.accepting_writes(M0, h.now));
    assert!(h.world.running(M0), "the process runs on, without a role");
    let acked = h.acked();
    h.wait(5_000);
    assert_eq!(h.acked(), acked);
    let report = h.world.report(M0, h.now, Some(LEASE_MS));
    assert_eq!(report.not_serving, Some(NotServing::LeaseExpired));
}

#[test]
fn a_poll_renews_the_lease() {
    let mut h = steady(Replication::Sync);
    let first = h.now;
    h.world.report(M0, first, Some(LEASE_MS));
    h.run_until(first + 10_000);
    h.world.report(M0, h.now, Some(LEASE_MS));
    h.run_until(first + LEASE_MS);
    assert_eq!(h.world.role(M0), Role::Active);
    h.run_until(first + 10_000 + LEASE_MS);
    assert_eq!(h.world.role(M0), Role::None);
    // A standby's lease running out changes nothing.
    let mut h = steady(Replication::Sync);
    h.world.report(M1, h.now, Some(LEASE_MS));
    h.wait(LEASE_MS);
    assert_eq!(h.world.role(M1), Role::Standby);
    assert_eq!(h.world.role(M0), Role::Active);
}

#[test]
fn a_frozen_agent_demotes_its_database_when_it_thaws_past_its_lease() {
    let mut h = steady(Replication::Sync);
    let polled = h.now;
    h.world.report(M0, polled, Some(LEASE_MS));
    h.world.hang(M0, polled + LEASE_MS + 5_000);
    h.run_until(polled + LEASE_MS);
    assert_eq!(h.world.role(M0), Role::Active, "frozen, it cannot act");
    h.run_until(polled + LEASE_MS + 5_000);
    h.world.thaw(M0, h.now);
    assert_eq!(h.world.role(M0), Role::None);
    assert_eq!(
        h.world.members[0].not_serving,
        Some(NotServing::LeaseExpired)
    );
    // Thawed within its lease, it serves on.
    let mut h = steady(Replication::Sync);
    let polled = h.now;
    h.world.report(M0, polled, Some(LEASE_MS));
    h.world.hang(M0, polled + 5_000);
    h.run_until(polled + 5_000);
    h.world.thaw(M0, h.now);
    assert_eq!(h.world.role(M0), Role::Active);
    assert!(h.world.accepting_writes(M0, h.now));
}

/// A poll that gives no lease (a standalone member's): the active holds its role however long
/// no poll comes, frozen and thawed included.
#[test]
fn an_agent_polled_without_a_lease_never_fences() {
    let mut h = steady(Replication::Sync);
    let polled = h.now;
    h.world.report(M0, polled, None);
    h.run_until(polled + 10 * LEASE_MS);
    assert_eq!(h.world.role(M0), Role::Active);
    h.world.hang(M0, h.now + LEASE_MS);
    h.run_until(h.now + LEASE_MS);
    h.world.thaw(M0, h.now);
    assert_eq!(h.world.role(M0), Role::Active);
    assert!(h.world.accepting_writes(M0, h.now));
    // The same member, polled with a lease, fences once it runs out.
    h.world.report(M0, h.now, Some(LEASE_MS));
    h.run_until(h.now + LEASE_MS);
    assert_eq!(h.world.role(M0), Role::None);
}

// --- faults on a member ---------------------------------------------------------------------------

#[test]
fn a_crashed_process_restarts_in_its_pod_only_if_its_container_restarts_it() {
    let mut h = steady(Replication::Sync);
    let uid = h.uid(M1);
    h.world.crash_process(M1, h.now, Some(10_000));
    assert_eq!(h.world.take_changes(), vec![Changed::Pod(M1)]);
    assert!(!h.world.running(M1));
    let up = h.now + 10_000 + h.world.config.pod_start_ms;
    h.run_until(up - 1);
    assert!(!h.world.running(M1));
    h.run_until(up);
    assert!(h.world.running(M1));
    assert_eq!(h.uid(M1), uid, "in the same pod");
    assert_eq!(h.world.members[1].not_serving, Some(NotServing::Restarted));

    // Without a restart, it stays down; a slow start delays the next start only.
    let mut h = steady(Replication::Sync);
    h.world.crash_process(M1, h.now, None);
    h.wait(600_000);
    assert!(!h.world.running(M1), "never restarted");
    let mut h = steady(Replication::Sync);
    h.world.slow_next_start(M1, 60_000);
    h.world.crash_process(M1, h.now, Some(0));
    h.run_until(h.now + 60_000 - 1);
    assert!(!h.world.running(M1));
    h.wait(1);
    assert!(h.world.running(M1));
    h.world.crash_process(M1, h.now, Some(0));
    h.wait(h.world.config.pod_start_ms);
    assert!(
        h.world.running(M1),
        "the next start takes podStartSeconds again"
    );
}

#[test]
fn a_partitioned_agent_is_unreachable_while_its_database_replicates_on() {
    let mut h = steady(Replication::Sync);
    let (acked, until) = (h.acked(), h.now + 5_000);
    h.world.partition(M1, until);
    assert!(!h.world.agent_reachable(M1, h.now));
    assert!(h.world.connected(M1, h.now));
    h.run_until(until - 1);
    assert!(!h.world.agent_reachable(M1, h.now));
    h.run_until(until);
    assert!(h.world.agent_reachable(M1, h.now));
    assert_eq!(h.acked(), acked + 250, "the standby received every write");
}

#[test]
fn a_flapping_agent_alternates_between_reachable_and_unreachable_until_the_window_ends() {
    let mut h = steady(Replication::Sync);
    let start = h.now;
    h.world.flap_agent(M1, start, 1_000, start + 4_000);
    let reachable: Vec<bool> = (0..6)
        .map(|second| h.world.agent_reachable(M1, start + second * 1_000))
        .collect();
    assert_eq!(reachable, [true, false, true, false, true, true]);
    assert!(
        h.world.agent_reachable(M0, start + 1_000),
        "only its own agent"
    );
}
