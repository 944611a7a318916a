//! Identifiers, positions and small value types shared by inputs, events, effects and state.
//!
//! Everything here is persisted in log records, so widths are explicit (`u64`, `u32`, `u8`) and
//! never `usize`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time, in milliseconds since an epoch chosen by the driver.
///
/// The engine never reads a clock: every input arrives with the time at which it is observed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The time `ms` milliseconds later, saturating at the end of time.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero when `earlier` is later.
    pub fn since_ms(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// A member of a cluster: the StatefulSet ordinal. Member `N` has pod `<cluster>-N` and PVC
/// `data-<cluster>-N`. A member outlives its pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId(pub u8);

impl MemberId {
    /// Member 0, the first active of a new cluster.
    pub const FIRST: MemberId = MemberId(0);

    /// The ordinal as an index into per-member arrays.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The other member of a master-slave pair.
    pub fn peer(self) -> MemberId {
        MemberId(1 - (self.0 & 1))
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member-{}", self.0)
    }
}

/// A log sequence number: a position in the database's redo log.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Bytes by which `self` is ahead of `other` (zero when it is not).
    pub fn ahead_of(self, other: Lsn) -> u64 {
        self.0.saturating_sub(other.0)
    }
}

/// The sequence number of a record in a cluster's log stream. The first record is `Seq(1)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number that follows this one.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The identity of an effect emitted by the engine, unique within a cluster's history. The
/// outcome of an effect comes back as an input carrying this id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct EffectId(pub u64);

/// A pod's UID. Pod deletions carry it as a precondition, so a recreated pod (new UID) is never
/// deleted by mistake.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PodUid(pub String);

/// A PVC's UID, the precondition of its deletion.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PvcUid(pub String);

/// A Kubernetes node name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeName(pub String);

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PersistentVolume name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PvName(pub String);

impl fmt::Display for PvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A hash of the instance and database configuration (the ConfigMaps) a member runs with.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ConfigHash(pub u64);

/// The shape of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Topology {
    /// An active/standby pair: two members.
    MasterSlave,
    /// A single instance.
    Standalone,
}

impl Topology {
    /// How many members the topology has.
    pub fn member_count(self) -> u8 {
        match self {
            Topology::MasterSlave => 2,
            Topology::Standalone => 1,
        }
    }

    /// The members of the topology, in ordinal order.
    pub fn members(self) -> impl Iterator<Item = MemberId> {
        (0..self.member_count()).map(MemberId)
    }

    /// The name used in scenario files and the CRD (`master-slave`, `standalone`).
    pub fn name(self) -> &'static str {
        match self {
            Topology::MasterSlave => "master-slave",
            Topology::Standalone => "standalone",
        }
    }
}

/// The role a database instance holds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Role {
    /// Accepts writes.
    Active,
    /// Replicates from the active.
    Standby,
    /// Neither: starting, fenced, demoted or not yet configured.
    #[default]
    None,
}

/// How writes are replicated from the active to the standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Replication {
    /// Strict: a write is acknowledged once the standby has it, and with no standby, writes
    /// wait for one.
    Sync,
    /// A write is acknowledged by the active alone; the standby trails.
    Async,
    /// A write is acknowledged once the standby has it, as under `Sync`; but when the standby
    /// is out for [`crate::limits::SYNC_RELAX_AFTER_MS`], the engine records that it is no
    /// longer a lossless failover candidate and only then tells the active to stop waiting for
    /// it. Strict waiting resumes once the standby is back in sync.
    SyncPreferred,
}

impl Replication {
    /// The name used in scenario files and the CRD.
    pub fn name(self) -> &'static str {
        match self {
            Replication::Sync => "sync",
            Replication::Async => "async",
            Replication::SyncPreferred => "syncPreferred",
        }
    }

    /// Every mode, in the order of their names in messages.
    pub const ALL: [Replication; 3] = [
        Replication::Sync,
        Replication::SyncPreferred,
        Replication::Async,
    ];

    /// The mode named `name` (as [`Replication::name`] writes it).
    pub fn from_name(name: &str) -> Option<Replication> {
        Replication::ALL
            .into_iter()
            .find(|mode| mode.name() == name)
    }
}
