//! The messages of the validation rules, shared by the CRD schema (CEL rules), the Rust-side
//! validation and the engine: they are the engine's own (`tandem_engine::config::messages`), so
//! the API server, the operator and the simulator all refuse an object with the same sentence,
//! and each sentence names the field it is about.

pub use tandem_engine::config::messages::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-field messages follow one pattern.
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
            ("unreachableTimeout", UNREACHABLE_TIMEOUT),
            ("agentLeaseSeconds", AGENT_LEASE_SECONDS),
        ];
        for (field, message) in seconds {
            assert_eq!(
                message,
                format!("{field} must be from 1 to 4294967295 seconds")
            );
        }
        for (field, message) in [
            ("maxRebuildAttempts", MAX_REBUILD_ATTEMPTS),
            ("maxRestartAttempts", MAX_RESTART_ATTEMPTS),
        ] {
            assert_eq!(message, format!("{field} must be from 1 to 4294967295"));
        }
        assert_eq!(
            UNREACHABLE_TIMEOUT_LEASE,
            "unreachableTimeout must exceed agentLeaseSeconds plus a quarter of unreachableTimeout \
             (the contact-time granularity): unreachableTimeout * 3 > agentLeaseSeconds * 4"
        );
    }
}
