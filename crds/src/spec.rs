//! The spec of a `ZenithCluster`: the database's fields and names as Zenith deployments write them
//! (`zenithSpec`, `agentSpec`, `template`, `volumeClaimTemplates`), plus the HA engine's knobs in
//! `haSpec`.
//!
//! Each validation rule lives next to its field as a CEL rule whose message is the one in
//! [`crate::messages`]; [`ZenithClusterSpec::validate`] checks the same rules in Rust.
//!
//! Durations are whole seconds, and lags whole bytes. They are `i64` on purpose: an unsigned type
//! would add an OpenAPI `minimum: 0` whose generic message would pre-empt the rule's own message
//! for negative values. Each one's range, and the timing rules between them, come from the
//! engine's tables (`crate::rules`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Container, PersistentVolumeClaim, Volume};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::messages;
use crate::status::ZenithClusterStatus;

/// What a user asks of a Zenith database cluster.
// Each printer column repeats `type_ = "string"`, which the lint mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "huawei.cloudb.com",
    version = "v1",
    kind = "ZenithCluster",
    plural = "zenithclusters",
    singular = "zenithcluster",
    shortname = "zc",
    namespaced,
    status = "ZenithClusterStatus",
    derive = "PartialEq",
    doc = "A Zenith database cluster: standalone (1 replica) or master-slave (2), kept available by tandem.",
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Active", type_ = "string", json_path = ".status.activeMember"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(
        "!has(self.haSpec.switchover) || !has(self.haSpec.switchover.to) || \
         (self.haSpec.switchover.to >= 0 && self.haSpec.switchover.to < self.zenithSpec.replicas)"
    )
    .message(messages::SWITCHOVER_TO)
    .field_path(".haSpec.switchover.to")
)]
// The timing rules between fields, from the engine's table.
#[schemars(transform = crate::rules::timing_rules)]
#[serde(rename_all = "camelCase")]
pub struct ZenithClusterSpec {
    /// The database: topology, package, storage, configuration, and how often it is polled.
    pub zenith_spec: ZenithSpec,
    /// The HA engine's knobs; every field has a default.
    #[serde(default)]
    pub ha_spec: HaSpec,
    /// The database agent that runs beside each member.
    pub agent_spec: AgentSpec,
    /// The pod template of the members: affinity, containers, volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ZenithTemplate>,
    /// Claims each member gets, beside the data volume tandem binds to a local PV.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
}

/// The database of the cluster (`zenithSpec`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ZenithSpec {
    /// 1: standalone; 2: master-slave. Immutable: it decides the topology.
    #[x_kube(
        validation = Rule::new("self == 1 || self == 2").message(messages::REPLICAS),
        validation = Rule::new("self == oldSelf").message(messages::REPLICAS_IMMUTABLE)
    )]
    pub replicas: i64,
    /// The database software version, for example `v1.0.0`.
    pub version: String,
    /// The name of the database software package, for example `Zenith`.
    pub package_name: String,
    /// The kind of package, for example `tar`.
    pub package_type: String,
    /// The storage class of the members' data volumes (local PVs). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message(messages::STORAGE_CLASS_IMMUTABLE))]
    pub storage_class_name: String,
    /// The size of each member's data volume, as a Kubernetes quantity (`5Gi`).
    #[x_kube(validation = Rule::new(crate::quantity::STORAGE_SIZE_RULE).message(messages::STORAGE_SIZE))]
    pub storage_size: String,
    /// Whether replication between the members must use TLS.
    #[serde(default, rename = "replicationSSLMandatory")]
    pub replication_ssl_mandatory: bool,
    /// How often, in seconds, each member's agent is polled.
    #[serde(default = "defaults::polling_interval")]
    #[x_kube(validation = crate::rules::range("pollingInterval"))]
    pub polling_interval: i64,
    /// Seconds without contact after which a member counts as unreachable.
    #[serde(default = "defaults::unreachable_timeout")]
    #[x_kube(validation = crate::rules::range("unreachableTimeout"))]
    pub unreachable_timeout: i64,
    /// ConfigMaps holding the instance configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_config_map: Vec<String>,
    /// ConfigMaps holding the database configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db_config_map: Vec<String>,
    /// Secrets holding the database credentials and certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db_secrets: Vec<String>,
    /// Free-form database settings, passed to the database as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub db_specs: Option<BTreeMap<String, serde_json::Value>>,
}

/// The agent beside each member (`agentSpec`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// The agent software version.
    pub version: String,
    /// The name of the agent package, for example `DBAgent`.
    pub package_name: String,
    /// The kind of package, for example `tar`.
    pub package_type: String,
    /// ConfigMaps holding the agent configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_config: Vec<String>,
}

/// The pod template of the members (`template`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ZenithTemplate {
    /// Where the members may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The containers and volumes of each member's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ZenithPodSpec>,
}

/// The containers and volumes of a member's pod. The selector and labels are tandem's to set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ZenithPodSpec {
    /// Containers that run to completion before the database starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The database and agent containers, with resources, ports, volume mounts and env.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    /// The pod's volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

/// The HA engine's knobs (`docs/state-machine.md`, Configuration). Every field has a default, so an
/// object without `haSpec` gets the engine's defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HaSpec {
    /// Seconds an agent's lease lasts; an active whose agent is not polled within it stops
    /// accepting writes. When absent, it follows unreachableTimeout: the longest lease below three
    /// quarters of it (22 for the default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = crate::rules::range("agentLeaseSeconds"))]
    pub agent_lease_seconds: Option<i64>,
    /// Seconds a node may be NotReady before its members count as lost.
    #[serde(default = "defaults::node_lost_timeout")]
    #[x_kube(validation = crate::rules::range("nodeLostTimeout"))]
    pub node_lost_timeout: i64,
    /// Whether a commit waits for the standby (`sync`) or not (`async`). Immutable: the engine
    /// relies on every complete copy holding every acknowledged write under `sync`.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message(messages::REPLICATION_IMMUTABLE))]
    pub replication: Replication,
    /// The most bytes of log a standby may lag and still be promoted on failover.
    #[serde(default = "defaults::max_lag_on_failover_bytes")]
    #[x_kube(validation = crate::rules::range("maxLagOnFailoverBytes"))]
    pub max_lag_on_failover_bytes: i64,
    /// Lag in bytes above which the standby counts as lagging.
    #[serde(default = "defaults::lag_threshold_bytes")]
    #[x_kube(validation = crate::rules::range("lagThresholdBytes"))]
    pub lag_threshold_bytes: i64,
    /// Seconds the standby may stay lagging before it is reported.
    #[serde(default = "defaults::lag_timeout")]
    #[x_kube(validation = crate::rules::range("lagTimeout"))]
    pub lag_timeout: i64,
    /// Seconds the cluster may take to initialise.
    #[serde(default = "defaults::init_timeout")]
    #[x_kube(validation = crate::rules::range("initTimeout"))]
    pub init_timeout: i64,
    /// Seconds a standby may take to start.
    #[serde(default = "defaults::standby_start_timeout")]
    #[x_kube(validation = crate::rules::range("standbyStartTimeout"))]
    pub standby_start_timeout: i64,
    /// Seconds a requested switchover may take.
    #[serde(default = "defaults::switchover_timeout")]
    #[x_kube(validation = crate::rules::range("switchoverTimeout"))]
    pub switchover_timeout: i64,
    /// How many times a member's volume is rebuilt before the cluster is declared failed.
    #[serde(default = "defaults::max_rebuild_attempts")]
    #[x_kube(validation = crate::rules::range("maxRebuildAttempts"))]
    pub max_rebuild_attempts: i64,
    /// How many times a member is restarted before it is rebuilt.
    #[serde(default = "defaults::max_restart_attempts")]
    #[x_kube(validation = crate::rules::range("maxRestartAttempts"))]
    pub max_restart_attempts: i64,
    /// Seconds to wait for the member holding the newest data to come back before a person is
    /// asked.
    #[serde(
        default = "defaults::wait_for_active_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(validation = crate::rules::range("waitForActiveTimeout"))]
    pub wait_for_active_timeout: Option<i64>,
    /// Whether tandem fails over on its own when the active is lost.
    #[serde(default = "defaults::enabled")]
    pub auto_failover: bool,
    /// Stop the database, keeping its storage and network identity.
    #[serde(default)]
    pub stopped: bool,
    /// A free-form token: changing it asks tandem to leave a hands-off state and look again.
    #[serde(default)]
    #[x_kube(validation = crate::rules::reexamine_token())]
    #[schemars(length(max = tandem_engine::limits::MAX_NAME_BYTES))]
    pub reexamine: String,
    /// A requested switchover; a new token is a new request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<Switchover>,
}

impl Default for HaSpec {
    fn default() -> Self {
        Self {
            agent_lease_seconds: None,
            node_lost_timeout: defaults::node_lost_timeout(),
            replication: Replication::default(),
            max_lag_on_failover_bytes: defaults::max_lag_on_failover_bytes(),
            lag_threshold_bytes: defaults::lag_threshold_bytes(),
            lag_timeout: defaults::lag_timeout(),
            init_timeout: defaults::init_timeout(),
            standby_start_timeout: defaults::standby_start_timeout(),
            switchover_timeout: defaults::switchover_timeout(),
            max_rebuild_attempts: defaults::max_rebuild_attempts(),
            max_restart_attempts: defaults::max_restart_attempts(),
            wait_for_active_timeout: defaults::wait_for_active_timeout(),
            auto_failover: defaults::enabled(),
            stopped: false,
            reexamine: String::new(),
            switchover: None,
        }
    }
}

/// Whether a commit on the active waits for the standby.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Replication {
    /// A commit waits for the standby: no committed data is lost on failover.
    #[default]
    Sync,
    /// A commit does not wait: failover may lose up to `maxLagOnFailoverBytes`.
    Async,
    /// A commit waits for the standby, as under `sync`, while the standby is there. When it is
    /// out for 5 seconds, tandem records that it is no longer a lossless failover candidate and
    /// only then lets commits go on without it; a failover to it then needs a person (`reexamine`).
    /// Strict waiting resumes once the standby is back in sync.
    #[serde(rename = "syncPreferred")]
    SyncPreferred,
}

/// A requested switchover: hand the active role to the other member.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Switchover {
    /// Identifies the request; tandem acts once per token.
    #[x_kube(validation = crate::rules::switchover_token())]
    #[schemars(length(max = tandem_engine::limits::MAX_NAME_BYTES))]
    pub token: String,
    /// The ordinal of the member to make active (0 or 1); unset: the current standby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
}

/// The defaults of the engine's knobs: the engine's own (`tandem_engine::Spec::defaults`), so
/// that they are written in one place.
pub mod defaults {
    use tandem_engine::{Spec, Topology};

    fn engine() -> Spec {
        Spec::defaults(Topology::MasterSlave)
    }

    /// `zenithSpec.pollingInterval`.
    pub fn polling_interval() -> i64 {
        i64::from(engine().polling_interval_s)
    }
    /// `zenithSpec.unreachableTimeout`.
    pub fn unreachable_timeout() -> i64 {
        i64::from(engine().unreachable_timeout_s)
    }
    /// `haSpec.nodeLostTimeout`.
    pub fn node_lost_timeout() -> i64 {
        i64::from(engine().node_lost_timeout_s)
    }
    /// `haSpec.maxLagOnFailoverBytes`.
    pub fn max_lag_on_failover_bytes() -> i64 {
        i64::try_from(engine().max_lag_on_failover_bytes).unwrap_or(i64::MAX)
    }
    /// `haSpec.lagThresholdBytes`.
    pub fn lag_threshold_bytes() -> i64 {
        i64::try_from(engine().lag_threshold_bytes).unwrap_or(i64::MAX)
    }
    /// `haSpec.waitForActiveTimeout`.
    pub fn wait_for_active_timeout() -> Option<i64> {
        engine().wait_for_active_timeout_s.map(i64::from)
    }
    /// `haSpec.lagTimeout`.
    pub fn lag_timeout() -> i64 {
        i64::from(engine().lag_timeout_s)
    }
    /// `haSpec.initTimeout`.
    pub fn init_timeout() -> i64 {
        i64::from(engine().init_timeout_s)
    }
    /// `haSpec.standbyStartTimeout`.
    pub fn standby_start_timeout() -> i64 {
        i64::from(engine().standby_start_timeout_s)
    }
    /// `haSpec.switchoverTimeout`.
    pub fn switchover_timeout() -> i64 {
        i64::from(engine().switchover_timeout_s)
    }
    /// `haSpec.maxRebuildAttempts`.
    pub fn max_rebuild_attempts() -> i64 {
        i64::from(engine().max_rebuild_attempts)
    }
    /// `haSpec.maxRestartAttempts`.
    pub fn max_restart_attempts() -> i64 {
        i64::from(engine().max_restart_attempts)
    }
    /// `haSpec.autoFailover`.
    pub fn enabled() -> bool {
        engine().auto_failover
    }
}
