//! The status tandem reports on a `ZenithCluster`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How many of the most recent transitions the status keeps.
pub const TRANSITIONS_KEPT: usize = 20;

/// What tandem reports about a cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ZenithClusterStatus {
    /// The cluster state (`Initializing`, `Normal`, `ActiveDown`, `StandbyDown`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The state before the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<String>,
    /// When the cluster entered its current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Why the cluster entered its current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The name of the member holding the active role, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_member: Option<String>,
    /// One entry per member, keyed by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub members: Vec<MemberStatus>,
    /// `Ready`, `Degraded` and `Progressing`, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` of the spec this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The sequence number of the last event in tandem's log for this cluster: a witness,
    /// outside the log, of how far the log reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
    /// The leadership epoch of the operator that wrote this status (its Lease's
    /// `leaseTransitions`; 0 without leader election). With `lastSequence`, the witness an
    /// operator replica checks its own log against when it takes the cluster over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The incarnation of the log stream that wrote this status: chosen when a log starts the
    /// cluster's stream, kept by every copy of that log. A replica whose stream has another
    /// incarnation holds a log that did not write this status (another replica acted since):
    /// it recovers the cluster from observation. One with the same incarnation but fewer
    /// records than `lastSequence` holds an older copy of the log that did: it waits for a
    /// person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_incarnation: Option<u64>,
    /// The operator process that acts on this cluster, and how it took it over: after an
    /// operator restart or a change of leader, this says whether it resumed from its log or
    /// recovered the cluster from observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorStatus>,
    /// Set while tandem refuses to act on this cluster because its log cannot be trusted
    /// (damaged, or behind `lastSequence`): it waits for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_refused: Option<LogRefusal>,
    /// The most recent transitions, oldest first, at most [`TRANSITIONS_KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::transitions")]
    pub transitions: Vec<Transition>,
}

/// One member of the cluster as tandem sees it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// The member's pod name.
    pub name: String,
    /// `Active`, `Standby`, or unset while undecided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `Healthy`, `Unhealthy`, `Unknown`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The node the member runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The claim of the member's data volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<String>,
    /// The member's last reported database log sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<u64>,
    /// The hash of the configuration the member runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

/// The operator process that acts on a cluster, as it wrote when it took the cluster over.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorStatus {
    /// Its identity in the leader election (the Lease's holder when it took over).
    pub identity: String,
    /// When it took the cluster over.
    pub since: Time,
    /// How: `ResumedFromLog` (the log it holds reaches the status), `RecoveredFromObservation`
    /// (no log it could resume from: the cluster's state is derived from what its members
    /// report), or `NewCluster`.
    pub start: String,
    /// The same, in words (the record the log resumed at, or why it was set aside).
    pub message: String,
}

/// Why tandem refuses to act on a cluster's log, and how a person lets it go on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogRefusal {
    /// When tandem refused.
    pub since: Time,
    /// What is wrong with the log.
    pub reason: String,
    /// The `spec.ha.reexamine` token in force when tandem refused. Setting the spec's token to
    /// any other value tells tandem to set the log aside and recover the cluster from what its
    /// members report, as after a lost log.
    pub reexamine: String,
}

/// A change of the cluster state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// When it happened.
    pub time: Time,
    /// The state left.
    pub from: String,
    /// The state entered.
    pub to: String,
    /// Why.
    pub reason: String,
}
