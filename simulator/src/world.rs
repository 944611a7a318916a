//! The simulated world: nodes, pods with StatefulSet semantics, PVCs and local PVs, database
//! processes with roles and data, replication, agents with their self-fencing lease, and client
//! writes. It knows nothing of the engine: the runner feeds it faults and effects and reads
//! observations out of it.

use crate::data::{History, Position, WRITE_BYTES};
use crate::scenario::{Millis, WorldConfig};
use tandem_engine::{
    AgentReport, ConfigHash, CopyProgress, Lsn, MemberId, NodeName, NodeStatus, NotServing,
    PodObservation, PodUid, Process, PvName, PvcUid, Replication, Role, Topology,
    VolumeObservation,
};

/// How long a graceful pod deletion takes on a working node.
pub const POD_GRACE_MS: Millis = 1_000;

/// How long the StatefulSet controller takes to notice a missing pod.
pub const STATEFULSET_DELAY_MS: Millis = 500;

/// A node.
#[derive(Clone, Debug)]
pub struct Node {
    /// `node-N`.
    pub name: String,
    /// Whether it runs (its kubelet, its pods, its disks).
    pub up: bool,
    /// Whether it went away for good, with its disks.
    pub gone_for_good: bool,
}

/// A local PV.
#[derive(Clone, Debug)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// The node holding its disk.
    pub node: usize,
    /// The member it is pre-bound to (`claimRef`).
    pub member: u8,
    /// The generation the engine gave it.
    pub generation: u32,
    /// The data on it.
    pub data: Position,
    /// Whether the data is a complete copy.
    pub copy_complete: bool,
    /// Whether the PV object exists.
    pub exists: bool,
}

/// A member's PVC.
#[derive(Clone, Debug)]
pub struct Pvc {
    /// Its UID.
    pub uid: String,
    /// The PV it is bound to.
    pub volume: Option<usize>,
}

/// A pod object.
#[derive(Clone, Debug)]
pub struct Pod {
    /// Its UID.
    pub uid: String,
    /// The node it is scheduled on.
    pub node: Option<usize>,
    /// Whether a deletion is pending.
    pub deleting: bool,
    /// Its role label (`Role::None`: none), which routes the `-rw` and `-ro` Services.
    pub label: Role,
}

/// A database process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    /// Not running.
    Down,
    /// Starting: up at the given time.
    Starting(Millis),
    /// Running.
    Running,
}

/// One member in the world.
#[derive(Clone, Debug)]
pub struct Member {
    /// The pod object.
    pub pod: Option<Pod>,
    /// The PVC.
    pub pvc: Option<Pvc>,
    /// The database process.
    pub process: Proc,
    /// Its role.
    pub role: Role,
    /// The active it replicates from, once configured.
    pub replicating_from: Option<u8>,
    /// A rebuild in progress: the active copied from, and a token.
    pub copying: Option<(u8, u64)>,
    /// When the rebuild in progress started.
    pub copy_started: Millis,
    /// The last rebuild stopped before it completed.
    pub copy_failed: bool,
    /// Why the database is not the active, as its agent reports it.
    pub not_serving: Option<NotServing>,
    /// The process crashed since it last came up.
    pub crashed: bool,
    /// The configuration hash it runs with.
    pub config_hash: u64,
    /// The last time the operator polled its agent successfully.
    pub last_polled: Option<Millis>,
    /// Fault windows (until these times).
    pub partitioned_until: Millis,
    /// Replication stops too.
    pub isolated_until: Millis,
    /// Frozen.
    pub hung_until: Millis,
    /// The standby applies nothing.
    pub stalled_until: Millis,
    /// The replication link is broken.
    pub broken_until: Millis,
    /// The disk is full.
    pub disk_full_until: Millis,
    /// The agent alternates reachable/unreachable: (start, period, until).
    pub flapping: Option<(Millis, Millis, Millis)>,
    /// The next start takes this long instead of `podStartSeconds`.
    pub slow_start_ms: Option<Millis>,
}

impl Member {
    fn new() -> Member {
        Member {
            pod: None,
            pvc: None,
            process: Proc::Down,
            role: Role::None,
            replicating_from: None,
            copying: None,
            copy_started: 0,
            copy_failed: false,
            not_serving: Some(NotServing::Starting),
            crashed: false,
            config_hash: 0,
            last_polled: None,
            partitioned_until: 0,
            isolated_until: 0,
            hung_until: 0,
            stalled_until: 0,
            broken_until: 0,
            disk_full_until: 0,
            flapping: None,
            slow_start_ms: None,
        }
    }
}

/// Something the world wants to happen later (the runner queues it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Later {
    /// A starting process is up.
    ProcessUp {
        /// The member.
        member: u8,
        /// The pod it started in.
        uid: String,
    },
    /// A graceful deletion completes.
    PodGone {
        /// The member.
        member: u8,
        /// The pod.
        uid: String,
    },
    /// The StatefulSet controller looks again.
    Reconcile,
    /// A rebuild's copy completes.
    CopyDone {
        /// The member.
        member: u8,
        /// The copy's token.
        token: u64,
    },
    /// An agent checks its lease.
    LeaseCheck {
        /// The member.
        member: u8,
        /// The poll the lease counts from.
        polled_at: Millis,
    },
    /// A crashed process is restarted by its container.
    Restart {
        /// The member.
        member: u8,
        /// The pod it crashed in.
        uid: String,
    },
    /// A lost node comes back.
    NodeBack {
        /// The node.
        node: usize,
    },
    /// A fault window ends (writes and replication change).
    Boundary,
}

/// What changed, for the operator's watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    /// A member's pod.
    Pod(u8),
    /// A member's PVC or PV.
    Volume(u8),
    /// A node.
    Node(usize),
}

/// The world.
#[derive(Clone, Debug)]
pub struct World {
    /// The knobs.
    pub config: WorldConfig,
    /// The topology.
    pub topology: Topology,
    /// How writes are acknowledged.
    pub replication: Replication,
    /// The agents' self-fencing lease.
    pub lease_ms: Millis,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Members.
    pub members: Vec<Member>,
    /// Local PVs ever provisioned.
    pub volumes: Vec<Volume>,
    /// The ground truth about data.
    pub history: History,
    /// The StatefulSet's replicas.
    pub replicas: u8,
    /// The configuration hash the ConfigMaps hold now.
    pub config_hash: u64,
    next_uid: u64,
    next_token: u64,
    write_remainder: u64,
    last_write_at: Millis,
    /// Things to happen later, drained by the runner.
    pub later: Vec<(Millis, Later)>,
    /// Changed objects, drained by the runner.
    pub changed: Vec<Changed>,
}

impl World {
    /// A world with its nodes and no cluster yet.
    pub fn new(
        config: WorldConfig,
        topology: Topology,
        replication: Replication,
        lease_ms: Millis,
    ) -> World {
        let nodes = (0..config.nodes)
            .map(|index| Node {
                name: format!("node-{index}"),
                up: true,
                gone_for_good: false,
            })
            .collect();
        let members = topology.members().map(|_| Member::new()).collect();
        World {
            config,
            topology,
            replication,
            lease_ms,
            nodes,
            members,
            volumes: Vec::new(),
            history: History::default(),
            replicas: 0,
            config_hash: 0,
            next_uid: 0,
            next_token: 0,
            write_remainder: 0,
            last_write_at: 0,
            later: Vec::new(),
            changed: Vec::new(),
        }
    }

    fn uid(&mut self, prefix: &str) -> String {
        self.next_uid += 1;
        format!("{prefix}-{}", self.next_uid)
    }

    /// The volume a member's PVC is bound to, if the PV exists.
    pub fn volume_of(&self, member: u8) -> Option<usize> {
        let index = self.members[usize::from(member)].pvc.as_ref()?.volume?;
        self.volumes[index].exists.then_some(index)
    }

    /// The member's data, if its volume exists.
    pub fn data_of(&self, member: u8) -> Option<Position> {
        self.volume_of(member).map(|index| self.volumes[index].data)
    }

    /// The node a member's pod runs on (else its volume's node).
    pub fn node_of(&self, member: u8) -> Option<usize> {
        let pod_node = self.members[usize::from(member)]
            .pod
            .as_ref()
            .and_then(|pod| pod.node);
        pod_node.or_else(|| self.volume_of(member).map(|index| self.volumes[index].node))
    }

    fn node_up(&self, member: u8) -> bool {
        self.node_of(member).is_some_and(|node| self.nodes[node].up)
    }

    /// Whether the member's process runs (on a live node, in a pod).
    pub fn running(&self, member: u8) -> bool {
        let state = &self.members[usize::from(member)];
        state.process == Proc::Running && state.pod.is_some() && self.node_up(member)
    }

    /// Whether the member accepts client writes now.
    pub fn accepting_writes(&self, member: u8, now: Millis) -> bool {
        let state = &self.members[usize::from(member)];
        self.running(member)
            && state.role == Role::Active
            && state.hung_until <= now
            && self.volume_of(member).is_some()
    }

    /// Whether the operator can reach the member's agent now.
    pub fn agent_reachable(&self, member: u8, now: Millis) -> bool {
        let state = &self.members[usize::from(member)];
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
    pub fn connected(&self, standby: u8, now: Millis) -> bool {
        let state = &self.members[usize::from(standby)];
        let Some(active) = state.replicating_from else {
            return false;
        };
        let leader = &self.members[usize::from(active)];
        let link_up = |m: &Member| m.isolated_until <= now && m.hung_until <= now;
        let compatible = match (self.data_of(standby), self.data_of(active)) {
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
    fn followers(&self, active: u8, now: Millis) -> impl Iterator<Item = u8> + '_ {
        (0..self.members.len() as u8)
            .filter(move |m| {
                *m != active && self.members[usize::from(*m)].replicating_from == Some(active)
            })
            .filter(move |m| self.connected(*m, now))
    }

    /// Client writes and replication from `from` to `to`: call before anything changes. Returns
    /// the members that accepted writes at the same time, if more than one did.
    pub fn settle(&mut self, from: Millis, to: Millis) -> Option<Vec<u8>> {
        let accepting: Vec<u8> = (0..self.members.len() as u8)
            .filter(|m| self.accepting_writes(*m, from))
            .collect();
        if accepting.len() > 1 {
            return Some(accepting);
        }
        if let Some(&active) = accepting.first() {
            self.write(active, from, to);
        }
        self.replicate(from);
        None
    }

    fn write(&mut self, active: u8, from: Millis, to: Millis) {
        let state = &self.members[usize::from(active)];
        if state.disk_full_until > from {
            return;
        }
        let followers: Vec<u8> = self.followers(active, from).collect();
        let receiving = followers
            .iter()
            .any(|m| self.members[usize::from(*m)].stalled_until <= from);
        let ackable = match (self.topology, self.replication) {
            (Topology::Standalone, _) | (_, Replication::Async) => true,
            (Topology::MasterSlave, Replication::Sync) => receiving,
        };
        if !ackable {
            return; // Strict sync: a commit waits for the standby; clients time out.
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
        let before = self.volumes[index].data;
        let after = Position {
            lsn: before.lsn + writes * WRITE_BYTES,
            ..before
        };
        self.volumes[index].data = after;
        self.history
            .acknowledge(before.branch, before.lsn, after.lsn);
        self.last_write_at = to;
    }

    /// Connected, unstalled standbys receive: all of it under sync, all but the replication lag
    /// under async.
    fn replicate(&mut self, now: Millis) {
        for standby in 0..self.members.len() as u8 {
            if !self.connected(standby, now)
                || self.members[usize::from(standby)].stalled_until > now
            {
                continue;
            }
            let active = self.members[usize::from(standby)]
                .replicating_from
                .expect("connected");
            let (Some(leader), Some(index)) = (self.data_of(active), self.volume_of(standby))
            else {
                continue;
            };
            // Async trails by the replication lag while writes flow, and catches up when they stop.
            let quiet = now >= self.last_write_at + self.config.replication_lag_ms;
            let lag_bytes = match self.replication {
                Replication::Sync => 0,
                Replication::Async if quiet => 0,
                Replication::Async => {
                    u64::from(self.config.writes_per_second)
                        * self.config.replication_lag_ms
                        * WRITE_BYTES
                        / 1000
                }
            };
            let target = leader.lsn.saturating_sub(lag_bytes);
            let current = self.volumes[index].data;
            let lsn = current.lsn.max(target).min(leader.lsn);
            self.volumes[index].data = Position {
                branch: leader.branch,
                lsn,
            };
        }
    }

    /// The agent's report, as a poll at `now` returns it (the caller checked reachability).
    pub fn report(&mut self, member: u8, now: Millis) -> AgentReport {
        self.members[usize::from(member)].last_polled = Some(now);
        self.later.push((
            now + self.lease_ms,
            Later::LeaseCheck {
                member,
                polled_at: now,
            },
        ));
        let state = &self.members[usize::from(member)];
        let process = match state.process {
            Proc::Down => Process::Down,
            Proc::Starting(_) => Process::Starting,
            Proc::Running => Process::Running,
        };
        let volume = self.volume_of(member).map(|index| &self.volumes[index]);
        let lsn = volume.map_or(0, |volume| volume.data.lsn);
        let connected = match state.role {
            Role::Active => self.followers(member, now).next().is_some(),
            _ => self.connected(member, now),
        };
        let in_sync = state.role == Role::Standby
            && connected
            && state
                .replicating_from
                .and_then(|active| self.data_of(active))
                .map(|data| data.lsn)
                == Some(lsn);
        let copy = match state.copying {
            Some(_) => {
                let elapsed = now.saturating_sub(state.copy_started);
                let percent = (elapsed * 100 / self.config.rebuild_ms.max(1)).min(99);
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
            in_sync: in_sync && self.replication == Replication::Sync,
            copy_complete: volume.is_some_and(|volume| volume.copy_complete),
            config_hash: ConfigHash(state.config_hash),
            copy,
            not_serving: (state.role != Role::Active)
                .then_some(state.not_serving)
                .flatten(),
        }
    }

    /// An agent whose lease ran out stops accepting writes: it demotes its database.
    pub fn lease_check(&mut self, member: u8, polled_at: Millis, now: Millis) {
        let state = &mut self.members[usize::from(member)];
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
    pub fn thaw(&mut self, member: u8, now: Millis) {
        let state = &mut self.members[usize::from(member)];
        let expired = state.last_polled.is_none_or(|at| now >= at + self.lease_ms);
        if expired && state.role == Role::Active {
            state.role = Role::None;
            state.replicating_from = None;
            state.not_serving = Some(NotServing::LeaseExpired);
        }
    }

    // --- observations ---------------------------------------------------------------------

    /// The pod as the API server shows it.
    pub fn pod_observation(&self, member: u8) -> Option<PodObservation> {
        let pod = self.members[usize::from(member)].pod.as_ref()?;
        Some(PodObservation {
            uid: PodUid(pod.uid.clone()),
            node: pod.node.map(|node| NodeName(self.nodes[node].name.clone())),
            running: self.members[usize::from(member)].process != Proc::Down,
            deleting: pod.deleting,
        })
    }

    /// The PVC and PV as the API server shows them.
    pub fn volume_observation(&self, member: u8) -> VolumeObservation {
        let state = &self.members[usize::from(member)];
        let Some(pvc) = &state.pvc else {
            return VolumeObservation {
                pvc: None,
                pv: None,
                lost: false,
            };
        };
        let bound = pvc.volume.map(|index| &self.volumes[index]);
        let lost = bound.is_some_and(|volume| !volume.exists);
        let pv = bound.filter(|volume| volume.exists).map(|volume| {
            (
                PvName(volume.name.clone()),
                NodeName(self.nodes[volume.node].name.clone()),
            )
        });
        VolumeObservation {
            pvc: Some(PvcUid(pvc.uid.clone())),
            pv,
            lost,
        }
    }

    /// The node as the API server shows it.
    pub fn node_observation(&self, node: usize) -> (NodeName, NodeStatus) {
        let status = if self.nodes[node].up {
            NodeStatus::Ready
        } else {
            NodeStatus::NotReady
        };
        (NodeName(self.nodes[node].name.clone()), status)
    }

    // --- Kubernetes -------------------------------------------------------------------------

    /// The StatefulSet controller: creates missing pods (and PVCs) for ordinals below the
    /// replicas, deletes those above.
    pub fn reconcile(&mut self, now: Millis) {
        for member in 0..self.members.len() as u8 {
            let wanted = member < self.replicas;
            let has_pod = self.members[usize::from(member)].pod.is_some();
            if wanted && !has_pod {
                self.create_pod(member, now);
            } else if !wanted && has_pod {
                self.delete_pod(member, now, false);
            } else if wanted {
                self.schedule_pending(member, now);
            }
        }
    }

    fn create_pod(&mut self, member: u8, now: Millis) {
        if self.members[usize::from(member)].pvc.is_none() {
            let uid = self.uid("pvc");
            self.members[usize::from(member)].pvc = Some(Pvc { uid, volume: None });
            self.bind(member);
            self.changed.push(Changed::Volume(member));
        }
        let uid = self.uid("pod");
        self.members[usize::from(member)].pod = Some(Pod {
            uid,
            node: None,
            deleting: false,
            label: Role::None,
        });
        self.members[usize::from(member)].process = Proc::Down;
        self.schedule_pending(member, now);
        self.changed.push(Changed::Pod(member));
    }

    /// Binds a member's unbound PVC to the newest PV pre-bound to it.
    fn bind(&mut self, member: u8) {
        let candidate = self
            .volumes
            .iter()
            .enumerate()
            .filter(|(_, volume)| volume.exists && volume.member == member)
            .max_by_key(|(_, volume)| volume.generation)
            .map(|(index, _)| index);
        if let (Some(pvc), Some(index)) =
            (self.members[usize::from(member)].pvc.as_mut(), candidate)
            && pvc.volume.is_none()
        {
            pvc.volume = Some(index);
        }
    }

    /// The scheduler: a pending pod whose PVC is bound goes to its PV's node and starts.
    fn schedule_pending(&mut self, member: u8, now: Millis) {
        let node = self.volume_of(member).map(|index| self.volumes[index].node);
        let state = &mut self.members[usize::from(member)];
        let Some(pod) = state.pod.as_mut() else {
            return;
        };
        if pod.node.is_some() || pod.deleting {
            return;
        }
        let Some(node) = node else { return };
        pod.node = Some(node);
        let uid = pod.uid.clone();
        self.changed.push(Changed::Pod(member));
        if self.nodes[node].up {
            self.start_process(member, uid, now);
        }
    }

    fn start_process(&mut self, member: u8, uid: String, now: Millis) {
        let start_ms = self.members[usize::from(member)]
            .slow_start_ms
            .take()
            .unwrap_or(self.config.pod_start_ms);
        let state = &mut self.members[usize::from(member)];
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
    pub fn process_up(&mut self, member: u8, uid: &str, now: Millis) {
        let pod_matches = self.members[usize::from(member)]
            .pod
            .as_ref()
            .is_some_and(|pod| pod.uid == uid);
        if !pod_matches || !self.node_up(member) {
            return;
        }
        let state = &mut self.members[usize::from(member)];
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

    /// Sets the role label of the member's pod if it is still the pod `uid` (the patch's UID
    /// precondition).
    pub fn label_pod(&mut self, member: u8, uid: &str, role: Role) -> bool {
        match self.members[usize::from(member)].pod.as_mut() {
            Some(pod) if pod.uid == uid => {
                pod.label = role;
                true
            }
            _ => false,
        }
    }

    /// The members whose pods carry the active label.
    pub fn labelled_active(&self) -> Vec<u8> {
        (0..self.members.len() as u8)
            .filter(|member| {
                self.members[usize::from(*member)]
                    .pod
                    .as_ref()
                    .is_some_and(|pod| pod.label == Role::Active)
            })
            .collect()
    }

    /// Deletes a member's pod: gracefully (the object stays until the kubelet confirms), or
    /// forced (the object goes at once). A pod never scheduled on a node has no kubelet to
    /// confirm anything: it goes at once either way.
    pub fn delete_pod(&mut self, member: u8, now: Millis, force: bool) {
        let node_up = self.node_up(member);
        let state = &mut self.members[usize::from(member)];
        let Some(pod) = state.pod.as_mut() else {
            return;
        };
        if force || pod.node.is_none() {
            self.remove_pod(member, now);
            return;
        }
        if !pod.deleting {
            pod.deleting = true;
            self.changed.push(Changed::Pod(member));
        }
        if node_up {
            let uid = pod.uid.clone();
            self.later
                .push((now + POD_GRACE_MS, Later::PodGone { member, uid }));
        }
    }

    /// A graceful deletion completes.
    pub fn pod_gone(&mut self, member: u8, uid: &str, now: Millis) {
        let state = &mut self.members[usize::from(member)];
        if state.pod.as_ref().is_none_or(|pod| pod.uid != uid) {
            return;
        }
        self.remove_pod(member, now);
    }

    /// The pod object goes, with its process; the StatefulSet notices shortly.
    fn remove_pod(&mut self, member: u8, now: Millis) {
        self.members[usize::from(member)].pod = None;
        self.crash(member);
        self.changed.push(Changed::Pod(member));
        self.later
            .push((now + STATEFULSET_DELAY_MS, Later::Reconcile));
    }

    /// Provisions a local PV pre-bound to a member.
    pub fn provision(&mut self, member: u8, node: &NodeName, generation: u32) -> bool {
        let Some(node) = self
            .nodes
            .iter()
            .position(|candidate| candidate.name == node.0)
        else {
            return false;
        };
        let exists = self
            .volumes
            .iter()
            .any(|v| v.member == member && v.generation == generation && v.exists);
        if !exists {
            // Member 0's agent initializes a new database on an empty volume while the cluster
            // holds none yet (no write was ever acknowledged, and no complete copy exists).
            let fresh_cluster = self.history.acknowledged_writes() == 0
                && !self.volumes.iter().any(|volume| {
                    volume.copy_complete && volume.exists && !self.nodes[volume.node].gone_for_good
                });
            self.volumes.push(Volume {
                name: format!("pv-{member}-{generation}"),
                node,
                member,
                generation,
                data: Position::default(),
                copy_complete: member == 0 && fresh_cluster,
                exists: true,
            });
        }
        true
    }

    /// Binds the member's PVC (now, or when it is created) to the PV of `generation`.
    pub fn bind_pvc(&mut self, member: u8, now: Millis) -> bool {
        self.bind(member);
        self.changed.push(Changed::Volume(member));
        self.schedule_pending(member, now);
        true
    }

    /// Deletes the member's PVC (if its UID matches) and its PV of `generation`.
    pub fn release(&mut self, member: u8, pvc_uid: Option<&PvcUid>, generation: u32) -> bool {
        let state = &mut self.members[usize::from(member)];
        let matches = match (&state.pvc, pvc_uid) {
            (Some(pvc), Some(uid)) => pvc.uid == uid.0,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if !matches {
            return false;
        }
        state.pvc = None;
        for volume in &mut self.volumes {
            if volume.member == member && volume.generation == generation {
                volume.exists = false;
            }
        }
        self.changed.push(Changed::Volume(member));
        true
    }

    /// Scales the StatefulSet.
    pub fn set_replicas(&mut self, replicas: u8, now: Millis) {
        self.replicas = replicas;
        self.reconcile(now);
    }

    // --- database commands --------------------------------------------------------------------

    /// Promotes the member: it becomes the active, on a new branch of history.
    pub fn promote(&mut self, member: u8) -> bool {
        let complete = self
            .volume_of(member)
            .is_some_and(|index| self.volumes[index].copy_complete);
        if !self.running(member) || !complete {
            return false;
        }
        if self.members[usize::from(member)].role != Role::Active {
            let index = self.volume_of(member).expect("checked");
            let forked = self.history.fork(self.volumes[index].data);
            self.volumes[index].data = forked;
            let state = &mut self.members[usize::from(member)];
            state.role = Role::Active;
            state.replicating_from = None;
            state.copying = None;
            state.not_serving = None;
        }
        true
    }

    /// Demotes (`demote`: to a standby) or fences (to no role) the member.
    pub fn demote(&mut self, member: u8, to: Role) -> bool {
        let state = &mut self.members[usize::from(member)];
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
    pub fn rebuild(&mut self, member: u8, from: u8, now: Millis) -> bool {
        if !self.running(member) || self.members[usize::from(member)].role == Role::Active {
            return false;
        }
        if self.members[usize::from(member)].copying.is_some() {
            return true;
        }
        let Some(index) = self.volume_of(member) else {
            return false;
        };
        self.volumes[index].data = Position::default();
        self.volumes[index].copy_complete = false;
        self.next_token += 1;
        let token = self.next_token;
        let state = &mut self.members[usize::from(member)];
        state.role = Role::Standby;
        state.replicating_from = None;
        state.copying = Some((from, token));
        state.copy_started = now;
        state.copy_failed = false;
        self.later.push((
            now + self.config.rebuild_ms,
            Later::CopyDone { member, token },
        ));
        true
    }

    /// A rebuild's copy ends: it succeeds if the source is still the running active.
    pub fn copy_done(&mut self, member: u8, token: u64, now: Millis) {
        let Some((from, current)) = self.members[usize::from(member)].copying else {
            return;
        };
        if current != token {
            return;
        }
        self.members[usize::from(member)].copying = None;
        self.members[usize::from(member)].copy_failed = true; // unless it completes below
        let source_ok = self.running(from)
            && self.members[usize::from(from)].role == Role::Active
            && self.running(member)
            && self.members[usize::from(member)].broken_until <= now;
        let (Some(source), Some(index)) = (self.data_of(from), self.volume_of(member)) else {
            return;
        };
        if source_ok {
            self.volumes[index].data = source;
            self.volumes[index].copy_complete = true;
            self.members[usize::from(member)].replicating_from = Some(from);
            self.members[usize::from(member)].copy_failed = false;
        }
    }

    /// Points the member's replication at `from`.
    pub fn restart_replication(&mut self, member: u8, from: u8) -> bool {
        let complete = self
            .volume_of(member)
            .is_some_and(|index| self.volumes[index].copy_complete);
        let state = &mut self.members[usize::from(member)];
        if state.role != Role::Standby || !complete || state.copying.is_some() {
            return false;
        }
        state.replicating_from = Some(from);
        true
    }

    /// The container restarts a crashed process.
    pub fn restart(&mut self, member: u8, uid: &str, now: Millis) {
        let matches = self.members[usize::from(member)]
            .pod
            .as_ref()
            .is_some_and(|pod| pod.uid == uid);
        if matches
            && self.node_up(member)
            && self.members[usize::from(member)].process == Proc::Down
        {
            self.start_process(member, uid.to_string(), now);
        }
    }

    /// The process dies.
    pub fn crash(&mut self, member: u8) {
        let state = &mut self.members[usize::from(member)];
        state.process = Proc::Down;
        state.role = Role::None;
        state.replicating_from = None;
        state.copy_failed |= state.copying.is_some();
        state.copying = None;
        state.crashed = true;
    }

    /// A node goes away (processes on it die); with `back_after`, it reboots later.
    pub fn node_loss(&mut self, node: usize, now: Millis, back_after: Option<Millis>) {
        self.nodes[node].up = false;
        self.nodes[node].gone_for_good = back_after.is_none();
        for member in 0..self.members.len() as u8 {
            if self.node_of(member) == Some(node) {
                self.crash(member);
            }
        }
        self.changed.push(Changed::Node(node));
        if let Some(after) = back_after {
            self.later.push((now + after, Later::NodeBack { node }));
        }
    }

    /// A node comes back with its disks: pods pending deletion go, the others restart.
    pub fn node_back(&mut self, node: usize, now: Millis) {
        self.nodes[node].up = true;
        self.changed.push(Changed::Node(node));
        for member in 0..self.members.len() as u8 {
            let state = &self.members[usize::from(member)];
            let Some(pod) = state.pod.as_ref().filter(|pod| pod.node == Some(node)) else {
                continue;
            };
            let uid = pod.uid.clone();
            if pod.deleting {
                self.pod_gone(member, &uid, now);
            } else if state.process == Proc::Down {
                self.start_process(member, uid, now);
            }
        }
        self.later.push((now, Later::Reconcile));
    }

    /// The member holding the active role in the world (the first, if several do).
    pub fn active(&self) -> Option<u8> {
        (0..self.members.len() as u8)
            .find(|m| self.members[usize::from(*m)].role == Role::Active && self.running(*m))
    }

    /// Whether wiping the member's data would lose acknowledged writes that no other copy holds.
    pub fn holds_the_newest_copy(&self, member: u8) -> bool {
        if !self.survives(member) {
            return false; // already destroyed by the node's loss
        }
        let Some(own) = self.data_of(member) else {
            return false;
        };
        // A copy that diverged from the running active (it kept writes past the point the active
        // was promoted from) lost those writes at that promotion, which the lost-writes check
        // counts; wiping it destroys nothing more. Only a copy ahead on the active's own history
        // is a newest copy the active could still have caught up from.
        if let Some(active) = self.active().filter(|active| *active != member)
            && let Some(leader) = self.data_of(active)
        {
            return !self.history.is_prefix(own, leader) && self.history.is_prefix(leader, own);
        }
        // Only copies that survive count: one on a node gone for good holds nothing any more.
        let others: Vec<Position> = (0..self.members.len() as u8)
            .filter(|m| *m != member && self.survives(*m))
            .filter_map(|m| self.data_of(m))
            .collect();
        let lost_without = others
            .iter()
            .map(|data| self.history.lost_writes(Some(*data)))
            .min();
        let lost_without = lost_without.unwrap_or(self.history.acknowledged_writes());
        self.history.lost_writes(Some(own)) < lost_without
    }

    /// Whether the member's copy survives: it has a volume, and the volume's node is not gone
    /// for good.
    pub fn survives(&self, member: u8) -> bool {
        self.volume_of(member)
            .is_some_and(|index| !self.nodes[self.volumes[index].node].gone_for_good)
    }

    /// The member by id.
    pub fn member_id(member: u8) -> MemberId {
        MemberId(member)
    }
}
