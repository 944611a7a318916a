//! The simulated world: nodes, pods with StatefulSet semantics, PVCs and local PVs, database
//! processes with roles and data, replication, agents with their self-fencing lease, and client
//! writes. It knows nothing of the engine: the runner feeds it faults and effects and reads
//! observations out of it. Its Kubernetes half is in `kubernetes`, its database half in
//! `database`; what both share (the members, the volumes, the clock's pending work) is here.

mod database;
mod kubernetes;
#[cfg(test)]
mod tests;

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

    // --- observations ---------------------------------------------------------------------

    // --- Kubernetes -------------------------------------------------------------------------

    // --- database commands --------------------------------------------------------------------

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
