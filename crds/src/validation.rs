//! The Rust side of the schema's validation rules: the same rules, the same messages, the same
//! field paths as the API server reports them (`spec.zenithSpec.replicas`), so the operator and
//! the simulator refuse exactly what the API server refuses.

use crate::messages;
use crate::quantity::is_storage_size;
use crate::spec::{ZenithCluster, ZenithClusterSpec, ZenithSpec};
use tandem_engine::config::{
    is_reexamine_token, is_switchover_token, numeric_violations, spec_field,
};

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
        check_engine_fields(self, &mut errors);
        check_requests(self, &mut errors);
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
    if !matches!(spec.replicas, 1 | 2) {
        errors.push(ValidationError::new(
            "spec.zenithSpec.replicas",
            messages::REPLICAS,
        ));
    }
    if !is_storage_size(&spec.storage_size) {
        errors.push(ValidationError::new(
            "spec.zenithSpec.storageSize",
            messages::STORAGE_SIZE,
        ));
    }
}

/// The engine's rules on its numeric fields (`numeric_violations`), on the values as written,
/// before any conversion: each field's range, then the timing rules, which apply when both of
/// their fields are within range, as the schema's CEL rules do.
fn check_engine_fields(spec: &ZenithClusterSpec, errors: &mut Vec<ValidationError>) {
    let object = serde_json::to_value(spec).unwrap_or_default();
    let number = |name: &str| {
        let field = spec_field(name)?;
        let value = &object[field.section][field.name];
        value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from))
    };
    for error in numeric_violations(number) {
        errors.push(ValidationError::new(&path(error.field), &error.message));
    }
}

/// A field's path from the object's root, as the API server writes it: `name` is a spec field
/// of the engine's table, or one of the requests (`switchover.to`, `switchover.token`,
/// `reexamine`), which `haSpec` holds.
pub(crate) fn path(name: &str) -> String {
    let section = spec_field(name).map_or("haSpec", |field| field.section);
    format!("spec.{section}.{name}")
}

/// The requests a person makes through the spec: a switchover's target and token, and the
/// reexamine token.
fn check_requests(spec: &ZenithClusterSpec, errors: &mut Vec<ValidationError>) {
    let ha = &spec.ha_spec;
    if let Some(switchover) = &ha.switchover {
        if !is_switchover_token(&switchover.token) {
            errors.push(ValidationError::new(
                "spec.haSpec.switchover.token",
                messages::SWITCHOVER_TOKEN,
            ));
        }
        if switchover
            .to
            .is_some_and(|to| to < 0 || to >= spec.zenith_spec.replicas)
        {
            errors.push(ValidationError::new(
                "spec.haSpec.switchover.to",
                messages::SWITCHOVER_TO,
            ));
        }
    }
    if !is_reexamine_token(&ha.reexamine) {
        errors.push(ValidationError::new(
            "spec.haSpec.reexamine",
            messages::REEXAMINE,
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
    use crate::spec::{HaSpec, Switchover, ZenithCluster};

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
            spec.ha_spec.agent_lease_seconds = Some(lease);
            broken(&spec, None)
        };
        // 2 x pollingInterval is allowed; one second less is not.
        assert!(at(20, 4, 7).is_empty());
        assert_eq!(at(19, 10, 13).len(), 1);
        // unreachableTimeout * 3 > agentLeaseSeconds * 4: 27 * 3 = 81 > 80, 26 * 3 = 78 is not.
        assert!(at(27, 1, 20).is_empty());
        assert_eq!(
            at(26, 1, 20),
            [format!(
                "spec.zenithSpec.unreachableTimeout: {}",
                messages::UNREACHABLE_TIMEOUT_LEASE
            )]
        );
        // Huge values are refused by their range alone: no rule wraps around into acceptance,
        // and none overflows.
        assert_eq!(
            at(i64::MIN, 1, 20),
            [format!(
                "spec.zenithSpec.unreachableTimeout: {}",
                messages::UNREACHABLE_TIMEOUT
            )]
        );
        assert_eq!(at(i64::MAX, 1, 20).len(), 1);
        assert_eq!(
            at(30, i64::MAX, 20),
            [format!(
                "spec.zenithSpec.pollingInterval: {}",
                messages::POLLING_INTERVAL
            )]
        );
    }

    /// Without `agentLeaseSeconds`, the lease follows `unreachableTimeout`; a timeout that leaves
    /// no room for a lease longer than the gap between polls is refused, naming it.
    #[test]
    fn without_a_lease_it_follows_the_timeout() {
        let mut spec = example("master-slave.yaml").spec;
        spec.ha_spec.agent_lease_seconds = None;
        spec.zenith_spec.polling_interval = 10;
        spec.zenith_spec.unreachable_timeout = 60;
        let lease = |spec: &ZenithClusterSpec| {
            spec.to_engine(None, tandem_engine::ConfigHash(0))
                .map(|engine| engine.agent_lease_s)
        };
        assert_eq!(lease(&spec), Ok(44));
        spec.zenith_spec.unreachable_timeout = 30;
        assert_eq!(lease(&spec), Ok(22));
        // 3 * 6 = 18 > 1 * 4 + 12: the lease (6 * 3 - 1) / 4 = 4 outlasts a poll 1 s apart plus
        // its 2 s deadline; 3 * 5 = 15 leaves no room.
        spec.zenith_spec.polling_interval = 1;
        spec.zenith_spec.unreachable_timeout = 6;
        assert_eq!(lease(&spec), Ok(4));
        spec.zenith_spec.unreachable_timeout = 5;
        assert_eq!(
            broken(&spec, None),
            [format!(
                "spec.zenithSpec.unreachableTimeout: {}",
                messages::UNREACHABLE_TIMEOUT_LEASE_ROOM
            )]
        );
        // An explicit lease is checked as before.
        spec.ha_spec.agent_lease_seconds = Some(3);
        spec.zenith_spec.unreachable_timeout = 30;
        assert_eq!(
            broken(&spec, None),
            [format!(
                "spec.haSpec.agentLeaseSeconds: {}",
                messages::AGENT_LEASE_POLLING
            )]
        );
    }

    #[test]
    fn a_lease_shorter_than_the_gap_between_polls_is_refused() {
        let mut spec = example("master-slave.yaml").spec;
        spec.zenith_spec.polling_interval = 100;
        spec.zenith_spec.unreachable_timeout = 200;
        spec.ha_spec.agent_lease_seconds = Some(1);
        assert_eq!(
            broken(&spec, None),
            [format!(
                "spec.haSpec.agentLeaseSeconds: {}",
                messages::AGENT_LEASE_POLLING
            )]
        );
    }

    #[test]
    fn values_the_engine_cannot_hold_or_that_mean_nothing_are_refused() {
        let valid = example("master-slave.yaml").spec;
        let mut spec = valid.clone();
        spec.ha_spec.node_lost_timeout = 1_000_000_000_000;
        spec.ha_spec.lag_threshold_bytes = -1;
        spec.zenith_spec.storage_size = "-5Gi".into();
        spec.ha_spec.switchover = Some(Switchover {
            token: String::new(),
            to: None,
        });
        spec.ha_spec.reexamine = "r".repeat(254);
        assert_eq!(
            broken(&spec, None),
            [
                format!("spec.zenithSpec.storageSize: {}", messages::STORAGE_SIZE),
                format!(
                    "spec.haSpec.nodeLostTimeout: {}",
                    messages::NODE_LOST_TIMEOUT
                ),
                format!(
                    "spec.haSpec.lagThresholdBytes: {}",
                    messages::LAG_THRESHOLD_BYTES
                ),
                format!(
                    "spec.haSpec.switchover.token: {}",
                    messages::SWITCHOVER_TOKEN
                ),
                format!("spec.haSpec.reexamine: {}", messages::REEXAMINE),
            ]
        );
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
