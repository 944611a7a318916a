//! The simulated world: nodes, pods with StatefulSet semantics, PVCs and local PVs, database
//! processes with roles and data, replication, agents with their self-fencing lease, and client
//! writes. It knows nothing of the engine: the runner feeds it faults and effects and reads
//! observations out of it. Its Kubernetes half is in `kubernetes`, its database half in
//! `database`; what both share (the members, the volumes, the clock's pending work) is here.
//! Its state is its own: the runner asks it questions and tells it what happens through its
//! methods, which name members by their `MemberId` and nodes by their [`NodeIndex`].

mod database;
mod kubernetes;
#[cfg(test)]
mod tests;

use crate::data::{History, Position, WRITE_BYTES};
use crate::scenario::{Millis, WorldConfig};
use tandem_engine::{
    AgentReport, ConfigHash, CopyProgress, Lsn, MemberId, NodeName, NodeStatus, NotServing,
    PodObservation, PodUid, Process, PvName, PvcUid, Replication, Role, Timeline, Topology,
    VolumeObservation,
};

/// How long a graceful pod deletion takes on a working node.
pub const POD_GRACE_MS: Millis = 1_000;

/// How long the StatefulSet controller takes to notice a missing pod.
pub const STATEFULSET_DELAY_MS: Millis = 500;

/// A node, by its place among the world's nodes: node `N` is `node-N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIndex(pub usize);

/// A local PV, by its place among the PVs the world ever provisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VolumeIndex(usize);

/// A node.
#[derive(Clone, Debug)]
struct Node {
    /// `node-N`.
    name: String,
    /// Whether it runs (its kubelet, its pods, its disks).
    up: bool,
    /// Whether it went away for good, with its disks.
    gone_for_good: bool,
}

/// A local PV.
#[derive(Clone, Debug)]
struct Volume {
    /// Its name.
    name: String,
    /// The node holding its disk.
    node: NodeIndex,
    /// The member it is pre-bound to (`claimRef`).
    member: MemberId,
    /// The generation the engine gave it.
    generation: u32,
    /// The data on it.
    data: Position,
    /// Whether the data is a complete copy.
    copy_complete: bool,
    /// Whether the PV object exists.
    exists: bool,
}

/// A member's PVC.
#[derive(Clone, Debug)]
struct Pvc {
    /// Its UID.
    uid: String,
    /// The PV it is bound to.
    volume: Option<VolumeIndex>,
}

/// A pod object.
#[derive(Clone, Debug)]
struct Pod {
    /// Its UID.
    uid: String,
    /// The node it is scheduled on.
    node: Option<NodeIndex>,
    /// Whether a deletion is pending.
    deleting: bool,
    /// Its role label (`Role::None`: none), which routes the `-rw` and `-ro` Services.
    label: Role,
}

/// A database process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proc {
    /// Not running.
    Down,
    /// Starting: up at the given time.
    Starting(Millis),
    /// Running.
    Running,
}

/// One member in the world.
#[derive(Clone, Debug)]
struct Member {
    /// The pod object.
    pod: Option<Pod>,
    /// The PVC.
    pvc: Option<Pvc>,
    /// The database process.
    process: Proc,
    /// Its role.
    role: Role,
    /// The active it replicates from, once configured.
    replicating_from: Option<MemberId>,
    /// A copy in progress (a rebuild or a rewind): the active copied from, and a token.
    copying: Option<(MemberId, u64)>,
    /// The copy in progress is a rewind (else a full copy).
    rewinding: bool,
    /// As the active under `syncPreferred`, it acknowledges writes without waiting for a
    /// standby (`RelaxSync`, until `RestoreSync` or a promotion).
    sync_relaxed: bool,
    /// When the copy in progress started.
    copy_started: Millis,
    /// How long the copy in progress takes.
    copy_ms: Millis,
    /// The last rebuild stopped before it completed.
    copy_failed: bool,
    /// Why the database is not the active, as its agent reports it.
    not_serving: Option<NotServing>,
    /// The process crashed since it last came up.
    crashed: bool,
    /// The configuration hash it runs with.
    config_hash: u64,
    /// The last time the operator polled its agent successfully.
    last_polled: Option<Millis>,
    /// The lease that poll gave its agent; none for a standalone member, which never fences.
    lease_ms: Option<Millis>,
    /// Fault windows (until these times).
    partitioned_until: Millis,
    /// Replication stops too.
    isolated_until: Millis,
    /// Frozen.
    hung_until: Millis,
    /// The standby applies nothing.
    stalled_until: Millis,
    /// The replication link is broken.
    broken_until: Millis,
    /// The disk is full.
    disk_full_until: Millis,
    /// The agent alternates reachable/unreachable: (start, period, until).
    flapping: Option<(Millis, Millis, Millis)>,
    /// The next start takes this long instead of `podStartSeconds`.
    slow_start_ms: Option<Millis>,
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
            rewinding: false,
            sync_relaxed: false,
            copy_started: 0,
            copy_ms: 0,
            copy_failed: false,
            not_serving: Some(NotServing::Starting),
            crashed: false,
            config_hash: 0,
            last_polled: None,
            lease_ms: None,
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
        member: MemberId,
        /// The pod it started in.
        uid: String,
    },
    /// A graceful deletion completes.
    PodGone {
        /// The member.
        member: MemberId,
        /// The pod.
        uid: String,
    },
    /// The StatefulSet controller looks again.
    Reconcile,
    /// A rebuild's copy completes.
    CopyDone {
        /// The member.
        member: MemberId,
        /// The copy's token.
        token: u64,
    },
    /// An agent checks its lease.
    LeaseCheck {
        /// The member.
        member: MemberId,
        /// The poll the lease counts from.
        polled_at: Millis,
    },
    /// A crashed process is restarted by its container.
    Restart {
        /// The member.
        member: MemberId,
        /// The pod it crashed in.
        uid: String,
    },
    /// A lost node comes back.
    NodeBack {
        /// The node.
        node: NodeIndex,
    },
    /// A fault window ends (writes and replication change).
    Boundary,
}

/// What changed, for the operator's watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    /// A member's pod.
    Pod(MemberId),
    /// A member's PVC or PV.
    Volume(MemberId),
    /// A node.
    Node(NodeIndex),
}

/// What clients get from the cluster at a moment ([`World::service`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// A client's write is acknowledged.
    pub writes: bool,
    /// A standby receives the writes as well: a failover would lose none of them (under
    /// async, none beyond the replication lag).
    pub redundant: bool,
}

/// The world.
#[derive(Clone, Debug)]
pub struct World {
    /// The knobs.
    config: WorldConfig,
    /// The topology.
    topology: Topology,
    /// How writes are acknowledged.
    replication: Replication,
    /// Nodes.
    nodes: Vec<Node>,
    /// Members.
    members: Vec<Member>,
    /// Local PVs ever provisioned.
    volumes: Vec<Volume>,
    /// The ground truth about data.
    history: History,
    /// The StatefulSet's replicas.
    replicas: u8,
    /// The configuration hash the ConfigMaps hold now.
    config_hash: u64,
    next_uid: u64,
    next_token: u64,
    write_remainder: u64,
    last_write_at: Millis,
    /// Full copies started.
    copies_started: u32,
    /// Rewinds started.
    rewinds_started: u32,
    /// Things to happen later, drained by the runner.
    later: Vec<(Millis, Later)>,
    /// Changed objects, drained by the runner.
    changed: Vec<Changed>,
}

impl World {
    /// A world with its nodes and no cluster yet.
    pub fn new(config: WorldConfig, topology: Topology, replication: Replication) -> World {
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
            copies_started: 0,
            rewinds_started: 0,
            later: Vec::new(),
            changed: Vec::new(),
        }
    }

    // --- who is in the world ------------------------------------------------------------------

    /// The members, in ordinal order.
    pub fn members(&self) -> impl Iterator<Item = MemberId> + use<> {
        self.topology.members()
    }

    /// Whether the world has this member (the topology's members are the only ones).
    pub fn has_member(&self, member: MemberId) -> bool {
        member.index() < self.members.len()
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeIndex> + use<> {
        (0..self.nodes.len()).map(NodeIndex)
    }

    /// Whether the world has this node.
    pub fn has_node(&self, node: NodeIndex) -> bool {
        node.0 < self.nodes.len()
    }

    /// The node's name (`node-N`).
    pub fn node_name(&self, node: NodeIndex) -> &str {
        &self.nodes[node.0].name
    }

    /// Whether the node went away for good, with its disks.
    pub fn is_gone_for_good(&self, node: NodeIndex) -> bool {
        self.nodes[node.0].gone_for_good
    }

    // --- where the data is ----------------------------------------------------------------------

    /// The volume a member's PVC is bound to, if the PV exists.
    fn volume_of(&self, member: MemberId) -> Option<VolumeIndex> {
        let index = self.members[member.index()].pvc.as_ref()?.volume?;
        self.volumes[index.0].exists.then_some(index)
    }

    /// The member's data, if its volume exists.
    pub fn data(&self, member: MemberId) -> Option<Position> {
        self.volume_of(member)
            .map(|index| self.volumes[index.0].data)
    }

    /// The node a member's pod runs on (else its volume's node).
    pub fn node_of(&self, member: MemberId) -> Option<NodeIndex> {
        let pod_node = self.members[member.index()]
            .pod
            .as_ref()
            .and_then(|pod| pod.node);
        pod_node.or_else(|| {
            self.volume_of(member)
                .map(|index| self.volumes[index.0].node)
        })
    }

    fn node_up(&self, member: MemberId) -> bool {
        self.node_of(member)
            .is_some_and(|node| self.nodes[node.0].up)
    }

    /// The ground truth about written data: every branch of history, and the writes
    /// acknowledged on them.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The member holding the active role in the world (the first, if several do).
    pub fn active(&self) -> Option<MemberId> {
        self.members()
            .find(|m| self.members[m.index()].role == Role::Active && self.running(*m))
    }

    /// Whether wiping the member's data would lose acknowledged writes that no other copy holds.
    pub fn holds_the_newest_copy(&self, member: MemberId) -> bool {
        if !self.survives(member) {
            return false; // already destroyed by the node's loss
        }
        let Some(own) = self.data(member) else {
            return false;
        };
        // A copy that diverged from the running active (it kept writes past the point the active
        // was promoted from) lost those writes at that promotion, which the lost-writes check
        // counts; wiping it destroys nothing more. Only a copy ahead on the active's own history
        // is a newest copy the active could still have caught up from.
        if let Some(active) = self.active().filter(|active| *active != member)
            && let Some(leader) = self.data(active)
        {
            return !self.history.is_prefix(own, leader) && self.history.is_prefix(leader, own);
        }
        // Only copies that survive count: one on a node gone for good holds nothing any more.
        let others: Vec<Position> = self
            .members()
            .filter(|m| *m != member && self.survives(*m))
            .filter_map(|m| self.data(m))
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
    pub fn survives(&self, member: MemberId) -> bool {
        self.volume_of(member)
            .is_some_and(|index| !self.nodes[self.volumes[index.0].node.0].gone_for_good)
    }

    /// The complete copies that survive: their PV exists on a node not gone for good.
    fn surviving_complete_copies(&self) -> impl Iterator<Item = &Volume> {
        self.volumes.iter().filter(|volume| {
            volume.exists && volume.copy_complete && !self.nodes[volume.node.0].gone_for_good
        })
    }

    /// Whether any complete copy survives, whoever it belongs to.
    pub fn complete_copy_survives(&self) -> bool {
        self.surviving_complete_copies().next().is_some()
    }

    /// How many acknowledged writes the best surviving complete copy lacks (all of them when
    /// there is none): a copy on a node gone for good, or released, or still being copied does
    /// not count.
    pub fn best_copy_lacks(&self) -> u64 {
        self.surviving_complete_copies()
            .map(|volume| self.history.lost_writes(Some(volume.data)))
            .min()
            .unwrap_or_else(|| self.history.acknowledged_writes())
    }

    // --- the clock's pending work ---------------------------------------------------------------

    /// What the world scheduled since it was last asked, with when it is due; the runner queues
    /// each and hands it back to [`World::carry_out`] at that time.
    pub fn take_later(&mut self) -> Vec<(Millis, Later)> {
        std::mem::take(&mut self.later)
    }

    /// The objects that changed since it was last asked, for the operator's watches.
    pub fn take_changes(&mut self) -> Vec<Changed> {
        std::mem::take(&mut self.changed)
    }

    /// Carries out something the world scheduled, now that it is due.
    pub fn carry_out(&mut self, later: Later, now: Millis) {
        match later {
            Later::ProcessUp { member, uid } => self.process_up(member, &uid, now),
            Later::PodGone { member, uid } => self.pod_gone(member, &uid, now),
            Later::Reconcile => self.reconcile(now),
            Later::CopyDone { member, token } => self.copy_done(member, token, now),
            Later::LeaseCheck { member, polled_at } => self.lease_check(member, polled_at, now),
            Later::Restart { member, uid } => self.restart(member, &uid, now),
            Later::NodeBack { node } => self.node_back(node, now),
            Later::Boundary => {}
        }
    }
}
