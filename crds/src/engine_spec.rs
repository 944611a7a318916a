//! The one conversion from a `ZenithCluster`'s spec to the engine's configuration: the operator
//! gives the engine what this returns, and the defaults and messages on both sides are the
//! engine's own.

use crate::spec::{Replication, ZenithClusterSpec};
use crate::validation::{ValidationError, path};
use tandem_engine::config::{spec_field, topology_from_replicas};
use tandem_engine::{ConfigHash, MemberId, Spec, SwitchoverRequest};

impl ZenithClusterSpec {
    /// The engine's configuration for this spec, which must pass the schema's rules first
    /// (`previous`: the spec before an update, `None` on creation). `config_hash` is the hash of
    /// the instance and database configuration.
    pub fn to_engine(
        &self,
        previous: Option<&Self>,
        config_hash: ConfigHash,
    ) -> Result<Spec, Vec<ValidationError>> {
        self.validate(previous)?;
        let mut errors = Vec::new();
        let zenith = &self.zenith_spec;
        let ha = &self.ha_spec;
        let topology = topology_from_replicas(zenith.replicas).map_err(|error| {
            vec![ValidationError {
                field: "spec.zenithSpec.replicas".into(),
                message: error.message,
            }]
        })?;
        let unreachable_timeout_s = within(
            "unreachableTimeout",
            zenith.unreachable_timeout,
            &mut errors,
        );
        let mut spec = Spec {
            topology,
            polling_interval_s: within("pollingInterval", zenith.polling_interval, &mut errors),
            unreachable_timeout_s,
            agent_lease_s: ha.agent_lease_seconds.map_or(0, |seconds| {
                within("agentLeaseSeconds", seconds, &mut errors)
            }),
            node_lost_timeout_s: within("nodeLostTimeout", ha.node_lost_timeout, &mut errors),
            replication: match ha.replication {
                Replication::Sync => tandem_engine::Replication::Sync,
                Replication::Async => tandem_engine::Replication::Async,
                Replication::SyncPreferred => tandem_engine::Replication::SyncPreferred,
            },
            max_lag_on_failover_bytes: within(
                "maxLagOnFailoverBytes",
                ha.max_lag_on_failover_bytes,
                &mut errors,
            ),
            lag_threshold_bytes: within("lagThresholdBytes", ha.lag_threshold_bytes, &mut errors),
            lag_timeout_s: within("lagTimeout", ha.lag_timeout, &mut errors),
            init_timeout_s: within("initTimeout", ha.init_timeout, &mut errors),
            standby_start_timeout_s: within(
                "standbyStartTimeout",
                ha.standby_start_timeout,
                &mut errors,
            ),
            switchover_timeout_s: within("switchoverTimeout", ha.switchover_timeout, &mut errors),
            max_rebuild_attempts: within(
                "maxRebuildAttempts",
                ha.max_rebuild_attempts,
                &mut errors,
            ),
            max_restart_attempts: within(
                "maxRestartAttempts",
                ha.max_restart_attempts,
                &mut errors,
            ),
            wait_for_active_timeout_s: ha
                .wait_for_active_timeout
                .map(|seconds| within("waitForActiveTimeout", seconds, &mut errors)),
            auto_failover: ha.auto_failover,
            stopped: ha.stopped,
            reexamine: ha.reexamine.clone(),
            switchover: ha.switchover.as_ref().map(|switchover| SwitchoverRequest {
                token: switchover.token.clone(),
                // Validation checked that the target is a member's ordinal.
                to: switchover
                    .to
                    .and_then(|to| u8::try_from(to).ok())
                    .map(MemberId),
            }),
            config_hash,
        };
        spec.derive_unset(|name| name != "agentLeaseSeconds" || ha.agent_lease_seconds.is_some());
        if !errors.is_empty() {
            return Err(errors);
        }
        // The schema's rules are the engine's; a disagreement is a bug on one side.
        if let Err(error) = spec.validate() {
            return Err(vec![ValidationError {
                field: path(error.field),
                message: error.message,
            }]);
        }
        Ok(spec)
    }
}

/// `value`, which validation has checked is within the range of the spec field `name`, in the
/// engine's type; a value out of it is refused with the range's message all the same, so that
/// the conversion is total.
fn within<T: TryFrom<i64> + Default>(
    name: &'static str,
    value: i64,
    errors: &mut Vec<ValidationError>,
) -> T {
    T::try_from(value).unwrap_or_else(|_| {
        let range = spec_field(name).and_then(|field| field.range);
        errors.push(ValidationError {
            field: path(name),
            message: range.map_or_else(
                || format!("{name} is out of range"),
                |range| range.message.to_owned(),
            ),
        });
        T::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{HaSpec, ZenithCluster};
    use tandem_engine::Topology;

    fn example() -> ZenithClusterSpec {
        let text = include_str!("../examples/master-slave.yaml");
        let cluster: ZenithCluster = serde_saphyr::from_str(text).expect("the example parses");
        cluster.spec
    }

    #[test]
    fn knobs_left_out_are_the_engine_defaults() {
        let mut spec = example();
        spec.ha_spec = HaSpec::default();
        spec.zenith_spec.polling_interval = crate::spec::defaults::polling_interval();
        spec.zenith_spec.unreachable_timeout = crate::spec::defaults::unreachable_timeout();
        let engine = spec.to_engine(None, ConfigHash(7)).expect("valid");
        let mut expected = Spec::defaults(Topology::MasterSlave);
        expected.config_hash = ConfigHash(7);
        assert_eq!(engine, expected);
        // And an object that leaves `haSpec` out entirely reads the same defaults.
        let mut json = serde_json::to_value(example()).expect("serializes");
        json.as_object_mut().expect("an object").remove("haSpec");
        let parsed: ZenithClusterSpec = serde_json::from_value(json).expect("parses");
        assert_eq!(parsed.ha_spec, HaSpec::default());
    }

    /// Each knob the engine checks is refused with the same field and the same message on both
    /// sides, whichever side sees it first.
    #[test]
    fn the_schema_and_the_engine_refuse_alike() {
        type Break = fn(&mut ZenithClusterSpec, &mut Spec);
        let cases: [(&str, Break); 10] = [
            ("pollingInterval", |c, e| {
                c.zenith_spec.polling_interval = 0;
                e.polling_interval_s = 0;
            }),
            ("agentLeaseSeconds", |c, e| {
                c.ha_spec.agent_lease_seconds = Some(0);
                e.agent_lease_s = 0;
            }),
            ("nodeLostTimeout", |c, e| {
                c.ha_spec.node_lost_timeout = 0;
                e.node_lost_timeout_s = 0;
            }),
            ("lagTimeout", |c, e| {
                c.ha_spec.lag_timeout = 0;
                e.lag_timeout_s = 0;
            }),
            ("initTimeout", |c, e| {
                c.ha_spec.init_timeout = 0;
                e.init_timeout_s = 0;
            }),
            ("standbyStartTimeout", |c, e| {
                c.ha_spec.standby_start_timeout = 0;
                e.standby_start_timeout_s = 0;
            }),
            ("switchoverTimeout", |c, e| {
                c.ha_spec.switchover_timeout = 0;
                e.switchover_timeout_s = 0;
            }),
            ("waitForActiveTimeout", |c, e| {
                c.ha_spec.wait_for_active_timeout = Some(0);
                e.wait_for_active_timeout_s = Some(0);
            }),
            ("maxRebuildAttempts", |c, e| {
                c.ha_spec.max_rebuild_attempts = 0;
                e.max_rebuild_attempts = 0;
            }),
            ("maxRestartAttempts", |c, e| {
                c.ha_spec.max_restart_attempts = 0;
                e.max_restart_attempts = 0;
            }),
        ];
        for (field, break_both) in cases {
            let mut crd = example();
            let mut engine = crd.to_engine(None, ConfigHash(0)).expect("valid");
            break_both(&mut crd, &mut engine);
            let crd_errors = crd.to_engine(None, ConfigHash(0)).expect_err("refused");
            let engine_error = engine.validate().expect_err("refused");
            assert_eq!(engine_error.field, field);
            assert!(
                crd_errors
                    .iter()
                    .any(|e| e.field.ends_with(field) && e.message == engine_error.message),
                "{field}: the schema says {crd_errors:?}, the engine {engine_error:?}"
            );
        }
    }

    /// The engine's table of spec fields (scenario `cluster:` keys, transcript `set`) names
    /// the resource's fields: each is a property of its section in the schema, and setting it in
    /// a `ZenithCluster` converts to what setting it through the table gives.
    #[test]
    fn the_engine_table_of_spec_fields_is_the_resource_s() {
        use tandem_engine::config::{FieldKind, FieldValue, SPEC_FIELDS};
        let schema = serde_json::to_value(crate::crd()).expect("the CRD serializes");
        let spec_schema = &schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["spec"]["properties"];
        for field in SPEC_FIELDS {
            assert!(
                spec_schema[field.section]["properties"][field.name].is_object(),
                "{}.{} is not in the schema",
                field.section,
                field.name
            );
            let base = example();
            let engine = base.to_engine(None, ConfigHash(0)).expect("valid");
            // A value other than the example's, valid on both sides.
            let value = match (field.kind, field.get(&engine)) {
                (FieldKind::Flag, Some(FieldValue::Flag(flag))) => FieldValue::Flag(!flag),
                (FieldKind::Replication, _) => {
                    FieldValue::Replication(tandem_engine::Replication::Async)
                }
                (_, Some(FieldValue::Number(number))) => FieldValue::Number(number + 1),
                (_, _) => FieldValue::Number(1000),
            };
            let mut json = serde_json::to_value(&base).expect("serializes");
            json[field.section][field.name] = match value {
                FieldValue::Number(number) => serde_json::json!(number),
                FieldValue::Flag(flag) => serde_json::json!(flag),
                FieldValue::Replication(mode) => serde_json::json!(mode.name()),
            };
            let changed: ZenithClusterSpec = serde_json::from_value(json).expect("parses");
            let mut expected = engine.clone();
            field.set(&mut expected, value).expect("in range");
            // Growing unreachableTimeout or pollingInterval may break a rule about the other:
            // both sides must then refuse alike, else agree.
            match (changed.to_engine(None, ConfigHash(0)), expected.validate()) {
                (Ok(converted), Ok(())) => assert_eq!(converted, expected, "{}", field.name),
                (Err(_), Err(_)) => {}
                (converted, verdict) => {
                    panic!(
                        "{}: the resource gives {converted:?}, the table {verdict:?}",
                        field.name
                    )
                }
            }
        }
    }

    #[test]
    fn seconds_beyond_what_the_engine_holds_are_refused_with_the_field() {
        let mut spec = example();
        spec.ha_spec.init_timeout = i64::from(u32::MAX) + 1;
        let errors = spec.to_engine(None, ConfigHash(0)).expect_err("refused");
        assert_eq!(errors[0].field, "spec.haSpec.initTimeout");
        assert_eq!(errors[0].message, crate::messages::INIT_TIMEOUT);
    }

    #[test]
    fn replication_is_immutable_on_both_sides() {
        let before = example();
        let mut after = before.clone();
        after.ha_spec.replication = Replication::Async;
        let errors = after
            .to_engine(Some(&before), ConfigHash(0))
            .expect_err("refused");
        assert_eq!(errors[0].field, "spec.haSpec.replication");
        let engine_before = before.to_engine(None, ConfigHash(0)).expect("valid");
        let engine_after = after.to_engine(None, ConfigHash(0)).expect("valid alone");
        let error = engine_after
            .validate_change(&engine_before)
            .expect_err("refused");
        assert_eq!(error.field, "replication");
        assert_eq!(error.message, errors[0].message);
    }

    #[test]
    fn a_switchover_names_its_target() {
        let mut spec = example();
        spec.ha_spec.switchover = Some(crate::spec::Switchover {
            token: "t1".into(),
            to: Some(1),
        });
        let engine = spec.to_engine(None, ConfigHash(0)).expect("valid");
        assert_eq!(
            engine.switchover,
            Some(SwitchoverRequest {
                token: "t1".into(),
                to: Some(MemberId(1)),
            })
        );
    }
}
