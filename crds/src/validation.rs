//! The Rust side of the schema's validation rules: the same rules, the same messages, the same
//! field paths as the API server reports them (`spec.zenithSpec.replicas`), so the operator and
//! the simulator refuse exactly what the API server refuses.

use crate::messages;
use crate::quantity::is_quantity;
use crate::spec::{HaSpec, ZenithCluster, ZenithClusterSpec, ZenithSpec};

/// One broken rule: the field it is about and the message the API server gives for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field's path from the object's root, as the API server writes it
    /// (`spec.haSpec.lagTimeout`).
    pub field: String,
    /// The rule's message; it names the field.
    pub message: String,
}

impl ValidationError {
    fn new(field: &str, message: &str) -> Self {
        Self {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Reads a `ZenithCluster` from its JSON form and validates its spec (`previous`: the spec
/// before an update). A value the schema's types refuse (`replication: quorum`) is refused here
/// too, with the path of the offending field.
pub fn parse_and_validate(
    object: serde_json::Value,
    previous: Option<&ZenithClusterSpec>,
) -> Result<ZenithCluster, Vec<ValidationError>> {
    let cluster: ZenithCluster = serde_path_to_error::deserialize(object).map_err(|error| {
        let field = error.path().to_string();
        let message = error.into_inner().to_string();
        vec![ValidationError { field, message }]
    })?;
    cluster.spec.validate(previous)?;
    Ok(cluster)
}

impl ZenithClusterSpec {
    /// Checks every rule of the schema; `previous` is the spec before an update (`None` on
    /// creation), for the rules that forbid changes. Returns every broken rule, in a fixed order.
    pub fn validate(&self, previous: Option<&Self>) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        check_zenith(&self.zenith_spec, &mut errors);
        check_ha(&self.ha_spec, &mut errors);
        check_across(self, &mut errors);
        if let Some(previous) = previous {
            check_change(&self.zenith_spec, &previous.zenith_spec, &mut errors);
            if self.ha_spec.replication != previous.ha_spec.replication {
                errors.push(ValidationError::new(
                    "spec.haSpec.replication",
                    messages::REPLICATION_IMMUTABLE,
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn check_zenith(spec: &ZenithSpec, errors: &mut Vec<ValidationError>) {
    let mut fail = |field: &str, message: &str| {
        errors.push(ValidationError::new(
            &format!("spec.zenithSpec.{field}"),
            message,
        ));
    };
    if !matches!(spec.replicas, 1 | 2) {
        fail("replicas", messages::REPLICAS);
    }
    if !is_quantity(&spec.storage_size) {
        fail("storageSize", messages::STORAGE_SIZE);
    }
    if spec.polling_interval < 1 {
        fail("pollingInterval", messages::POLLING_INTERVAL);
    }
    // CEL's int64 arithmetic fails on overflow, and a failing rule refuses the object: an
    // overflow breaks the rule here too.
    let twice_polling = spec.polling_interval.checked_mul(2);
    if twice_polling.is_none_or(|twice| spec.unreachable_timeout < twice) {
        fail("unreachableTimeout", messages::UNREACHABLE_TIMEOUT_POLLING);
    }
}

fn check_ha(spec: &HaSpec, errors: &mut Vec<ValidationError>) {
    let at_least_one: [(&str, Option<i64>, &str); 9] = [
        (
            "agentLeaseSeconds",
            Some(spec.agent_lease_seconds),
            messages::AGENT_LEASE_SECONDS,
        ),
        (
            "nodeLostTimeout",
            Some(spec.node_lost_timeout),
            messages::NODE_LOST_TIMEOUT,
        ),
        ("lagTimeout", Some(spec.lag_timeout), messages::LAG_TIMEOUT),
        (
            "initTimeout",
            Some(spec.init_timeout),
            messages::INIT_TIMEOUT,
        ),
        (
            "standbyStartTimeout",
            Some(spec.standby_start_timeout),
            messages::STANDBY_START_TIMEOUT,
        ),
        (
            "switchoverTimeout",
            Some(spec.switchover_timeout),
            messages::SWITCHOVER_TIMEOUT,
        ),
        (
            "maxRebuildAttempts",
            Some(spec.max_rebuild_attempts),
            messages::MAX_REBUILD_ATTEMPTS,
        ),
        (
            "maxRestartAttempts",
            Some(spec.max_restart_attempts),
            messages::MAX_RESTART_ATTEMPTS,
        ),
        (
            "waitForActiveTimeout",
            spec.wait_for_active_timeout,
            messages::WAIT_FOR_ACTIVE_TIMEOUT,
        ),
    ];
    for (field, value, message) in at_least_one {
        if value.is_some_and(|value| value < 1) {
            errors.push(ValidationError::new(
                &format!("spec.haSpec.{field}"),
                message,
            ));
        }
    }
}

/// Rules that tie fields of `zenithSpec` and `haSpec` together; the schema states them on `spec`.
fn check_across(spec: &ZenithClusterSpec, errors: &mut Vec<ValidationError>) {
    // As in CEL, an int64 overflow breaks the rule.
    let unreachable = spec.zenith_spec.unreachable_timeout.checked_mul(3);
    let lease = spec.ha_spec.agent_lease_seconds.checked_mul(4);
    let holds =
        matches!((unreachable, lease), (Some(unreachable), Some(lease)) if unreachable > lease);
    if !holds {
        errors.push(ValidationError::new(
            "spec.zenithSpec.unreachableTimeout",
            messages::UNREACHABLE_TIMEOUT_LEASE,
        ));
    }
    let target = spec
        .ha_spec
        .switchover
        .as_ref()
        .and_then(|switchover| switchover.to);
    if target.is_some_and(|to| to < 0 || to >= spec.zenith_spec.replicas) {
        errors.push(ValidationError::new(
            "spec.haSpec.switchover.to",
            messages::SWITCHOVER_TO,
        ));
    }
}

fn check_change(spec: &ZenithSpec, previous: &ZenithSpec, errors: &mut Vec<ValidationError>) {
    if spec.replicas != previous.replicas {
        errors.push(ValidationError::new(
            "spec.zenithSpec.replicas",
            messages::REPLICAS_IMMUTABLE,
        ));
    }
    if spec.storage_class_name != previous.storage_class_name {
        errors.push(ValidationError::new(
            "spec.zenithSpec.storageClassName",
            messages::STORAGE_CLASS_IMMUTABLE,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Switchover, ZenithCluster};

    fn example(name: &str) -> ZenithCluster {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        let text = std::fs::read_to_string(&path).expect("the example exists");
        serde_saphyr::from_str(&text).expect("the example parses as a ZenithCluster")
    }

    fn broken(spec: &ZenithClusterSpec, previous: Option<&ZenithClusterSpec>) -> Vec<String> {
        match spec.validate(previous) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn examples_are_valid() {
        for name in ["master-slave.yaml", "standalone.yaml"] {
            let cluster = example(name);
            assert_eq!(cluster.spec.validate(None), Ok(()), "{name}");
            assert_eq!(cluster.spec.validate(Some(&cluster.spec)), Ok(()), "{name}");
        }
    }

    #[test]
    fn missing_knobs_take_the_engine_defaults() {
        let cluster = example("standalone.yaml");
        assert_eq!(cluster.spec.ha_spec, HaSpec::default());
        assert_eq!(cluster.spec.zenith_spec.polling_interval, 10);
        assert_eq!(cluster.spec.zenith_spec.unreachable_timeout, 30);
    }

    #[test]
    fn each_rule_names_its_field() {
        let valid = example("master-slave.yaml").spec;
        let mut spec = valid.clone();
        spec.zenith_spec.replicas = 3;
        spec.zenith_spec.polling_interval = 0;
        spec.ha_spec.lag_timeout = 0;
        spec.ha_spec.wait_for_active_timeout = Some(0);
        spec.zenith_spec.storage_size = "five".into();
        assert_eq!(
            broken(&spec, None),
            [
                format!("spec.zenithSpec.replicas: {}", messages::REPLICAS),
                format!("spec.zenithSpec.storageSize: {}", messages::STORAGE_SIZE),
                format!(
                    "spec.zenithSpec.pollingInterval: {}",
                    messages::POLLING_INTERVAL
                ),
                format!("spec.haSpec.lagTimeout: {}", messages::LAG_TIMEOUT),
                format!(
                    "spec.haSpec.waitForActiveTimeout: {}",
                    messages::WAIT_FOR_ACTIVE_TIMEOUT
                ),
            ]
        );
    }

    #[test]
    fn unreachable_timeout_bounds_are_exact() {
        let valid = example("master-slave.yaml").spec;
        let at = |unreachable: i64, polling: i64, lease: i64| {
            let mut spec = valid.clone();
            spec.zenith_spec.unreachable_timeout = unreachable;
            spec.zenith_spec.polling_interval = polling;
            spec.ha_spec.agent_lease_seconds = lease;
            broken(&spec, None)
        };
        // 2 x pollingInterval is allowed; one second less is not.
        assert!(at(20, 10, 1).is_empty());
        assert_eq!(at(19, 10, 1).len(), 1);
        // unreachableTimeout * 3 > agentLeaseSeconds * 4: 27 * 3 = 81 > 80, 26 * 3 = 78 is not.
        assert!(at(27, 1, 20).is_empty());
        assert_eq!(
            at(26, 1, 20),
            [format!(
                "spec.zenithSpec.unreachableTimeout: {}",
                messages::UNREACHABLE_TIMEOUT_LEASE
            )]
        );
        // Huge values do not wrap around into acceptance; an overflow breaks the rule, as the
        // API server's CEL arithmetic does.
        assert_eq!(at(i64::MIN, 1, 20).len(), 2);
        assert_eq!(at(i64::MAX, 1, 20).len(), 1);
        assert_eq!(at(30, i64::MAX, 20).len(), 1);
    }

    #[test]
    fn switchover_target_must_be_a_member() {
        let mut spec = example("standalone.yaml").spec;
        spec.ha_spec.switchover = Some(Switchover {
            token: "t1".into(),
            to: Some(1),
        });
        assert_eq!(
            broken(&spec, None),
            [format!(
                "spec.haSpec.switchover.to: {}",
                messages::SWITCHOVER_TO
            )]
        );
        spec.zenith_spec.replicas = 2;
        assert!(broken(&spec, None).is_empty());
    }

    #[test]
    fn topology_and_storage_class_are_immutable() {
        let previous = example("master-slave.yaml").spec;
        let mut spec = previous.clone();
        spec.zenith_spec.replicas = 1;
        spec.zenith_spec.storage_class_name = "other".into();
        assert_eq!(
            broken(&spec, Some(&previous)),
            [
                format!("spec.zenithSpec.replicas: {}", messages::REPLICAS_IMMUTABLE),
                format!(
                    "spec.zenithSpec.storageClassName: {}",
                    messages::STORAGE_CLASS_IMMUTABLE
                ),
            ]
        );
        // On creation there is nothing to compare with.
        assert!(broken(&spec, None).is_empty());
    }
}
