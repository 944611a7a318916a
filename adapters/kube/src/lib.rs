//! tandem-kube: what carries the engine's decisions out on a real cluster.
//!
//! - [`controller`]: the operator: one task per `ZenithCluster` around the one driver, its
//!   watches, polls, timers and effects; the binary `tandem-operator` runs it.
//! - [`agent`]: the agent protocol (`docs/agent-protocol.md`): its messages, the client the
//!   operator polls and commands each member's agent with, and the resolver from members to
//!   agents.
//! - [`effects`]: the engine's effects on the Kubernetes API (pods, the StatefulSet, local PVs
//!   and their claims).
//! - [`leader`]: leader election with a Lease, and the leadership epoch.
//! - [`observe`]: what the watches see (pods, claims, PVs, nodes) as the engine's observations.
//! - [`resources`]: the objects the operator owns for each cluster (the StatefulSet, the
//!   headless Service, the `-rw` and `-ro` Services), applied server-side.
//! - [`report`]: the engine's reports as the `ZenithCluster`'s status and Kubernetes Events.
//! - [`agent_double`]: a small agent that speaks the real protocol and stands in for the
//!   database in tests, where no database can run; every Kubernetes interaction stays real.

pub mod agent;
pub mod agent_double;
pub mod controller;
pub mod effects;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod report;
pub mod resources;
