//! The messages of the validation rules, shared by the CRD schema (CEL rules) and the Rust-side
//! validation. They are the engine's configuration-validation messages, word for word: the API
//! server, the operator and the simulator all refuse an object with the same sentence, and each
//! sentence names the field it is about.

/// `zenithSpec.replicas` is neither 1 nor 2.
pub const REPLICAS: &str = "replicas must be 1 (standalone) or 2 (master-slave)";
/// `zenithSpec.replicas` changed after creation.
pub const REPLICAS_IMMUTABLE: &str =
    "replicas is immutable after creation (it decides the topology)";
/// `zenithSpec.storageClassName` changed after creation.
pub const STORAGE_CLASS_IMMUTABLE: &str = "storageClassName is immutable after creation";
/// `zenithSpec.storageSize` is not a Kubernetes quantity.
pub const STORAGE_SIZE: &str = "storageSize must be a quantity, for example 5Gi";
/// `zenithSpec.pollingInterval` is below 1.
pub const POLLING_INTERVAL: &str = "pollingInterval must be at least 1 second";
/// `zenithSpec.unreachableTimeout` is below twice `pollingInterval`.
pub const UNREACHABLE_TIMEOUT_POLLING: &str =
    "unreachableTimeout must be at least twice pollingInterval";
/// `zenithSpec.unreachableTimeout` does not exceed `haSpec.agentLeaseSeconds` by more than the
/// engine's contact-time granularity (a quarter of `unreachableTimeout`).
pub const UNREACHABLE_TIMEOUT_LEASE: &str = "unreachableTimeout must exceed agentLeaseSeconds plus \
a quarter of unreachableTimeout (the contact-time granularity): unreachableTimeout * 3 > \
agentLeaseSeconds * 4";
/// `haSpec.agentLeaseSeconds` is below 1.
pub const AGENT_LEASE_SECONDS: &str = "agentLeaseSeconds must be at least 1 second";
/// `haSpec.nodeLostTimeout` is below 1.
pub const NODE_LOST_TIMEOUT: &str = "nodeLostTimeout must be at least 1 second";
/// `haSpec.lagTimeout` is below 1.
pub const LAG_TIMEOUT: &str = "lagTimeout must be at least 1 second";
/// `haSpec.initTimeout` is below 1.
pub const INIT_TIMEOUT: &str = "initTimeout must be at least 1 second";
/// `haSpec.standbyStartTimeout` is below 1.
pub const STANDBY_START_TIMEOUT: &str = "standbyStartTimeout must be at least 1 second";
/// `haSpec.switchoverTimeout` is below 1.
pub const SWITCHOVER_TIMEOUT: &str = "switchoverTimeout must be at least 1 second";
/// `haSpec.waitForActiveTimeout` is set and below 1.
pub const WAIT_FOR_ACTIVE_TIMEOUT: &str = "waitForActiveTimeout must be at least 1 second";
/// `haSpec.maxRebuildAttempts` is below 1.
pub const MAX_REBUILD_ATTEMPTS: &str = "maxRebuildAttempts must be at least 1";
/// `haSpec.maxRestartAttempts` is below 1.
pub const MAX_RESTART_ATTEMPTS: &str = "maxRestartAttempts must be at least 1";
/// `haSpec.switchover.to` is not the ordinal of a member of the cluster.
pub const SWITCHOVER_TO: &str = "switchover.to must name a member of the cluster (0 or 1)";

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-field messages follow the engine's pattern exactly.
    #[test]
    fn per_field_messages_follow_the_engine_pattern() {
        let seconds = [
            ("nodeLostTimeout", NODE_LOST_TIMEOUT),
            ("lagTimeout", LAG_TIMEOUT),
            ("initTimeout", INIT_TIMEOUT),
            ("standbyStartTimeout", STANDBY_START_TIMEOUT),
            ("switchoverTimeout", SWITCHOVER_TIMEOUT),
            ("waitForActiveTimeout", WAIT_FOR_ACTIVE_TIMEOUT),
            ("pollingInterval", POLLING_INTERVAL),
            ("agentLeaseSeconds", AGENT_LEASE_SECONDS),
        ];
        for (field, message) in seconds {
            assert_eq!(message, format!("{field} must be at least 1 second"));
        }
        for (field, message) in [
            ("maxRebuildAttempts", MAX_REBUILD_ATTEMPTS),
            ("maxRestartAttempts", MAX_RESTART_ATTEMPTS),
        ] {
            assert_eq!(message, format!("{field} must be at least 1"));
        }
        assert_eq!(
            UNREACHABLE_TIMEOUT_LEASE,
            "unreachableTimeout must exceed agentLeaseSeconds plus a quarter of unreachableTimeout \
             (the contact-time granularity): unreachableTimeout * 3 > agentLeaseSeconds * 4"
        );
    }
}
