//! The `ZenithCluster` custom resource (`huawei.cloudb.com/v1`, short name `zc`).
//!
//! - [`spec`]: what the user asks for: the database (`zenithSpec`), its agent (`agentSpec`), the
//!   pod template, the volume claim templates, and the HA engine's knobs (`haSpec`).
//! - [`status`]: what tandem reports: the cluster state, the members, conditions, the last
//!   transitions.
//! - [`validation`]: the rules the API server enforces through the schema, enforced again in
//!   Rust with the same messages ([`messages`]), so the operator and the simulator refuse what
//!   the API server refuses.
//! - `ZenithClusterSpec::to_engine`: the one conversion to the engine's configuration.
//! - [`generate`]: the CRD manifest that the `crdgen` binary writes to `crds/yaml/`.

mod engine_spec;
pub mod generate;
pub mod messages;
pub mod quantity;
mod rules;
mod schema;
pub mod spec;
pub mod status;
pub mod validation;

pub use generate::{crd, crd_yaml};
pub use spec::{
    AgentSpec, HaSpec, Replication, Switchover, ZenithCluster, ZenithClusterSpec, ZenithPodSpec,
    ZenithSpec, ZenithTemplate,
};
pub use status::{LogRefusal, MemberStatus, OperatorStatus, Transition, ZenithClusterStatus};
pub use validation::ValidationError;
