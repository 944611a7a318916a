//! The schema's CEL rules for the engine's numeric fields, built from the engine's own tables:
//! the range of each field (`tandem_engine::config::SPEC_FIELDS`) and the timing rules between
//! them (`tandem_engine::config::TIMING_RULES`). The API server therefore checks exactly the
//! bounds and the arithmetic the engine checks, with the same messages.

use crate::messages;
use kube::core::Rule;
use schemars::Schema;
use tandem_engine::config::{FieldRange, TIMING_RULES, TimingRule, spec_field};

/// The range of the spec field `name`, which must have one: the tables and the resource's
/// fields are tested against each other.
fn range_of(name: &str) -> FieldRange {
    spec_field(name)
        .and_then(|field| field.range)
        .unwrap_or_else(|| panic!("the engine's table gives {name} a range"))
}

/// The CEL expression of a field's value, from the spec's root (`self.haSpec.lagTimeout`).
fn path(name: &str) -> String {
    let field = spec_field(name).unwrap_or_else(|| panic!("{name} is a spec field"));
    format!("self.{}.{}", field.section, field.name)
}

/// `value` within `range`, in CEL.
fn within(value: &str, range: FieldRange) -> String {
    format!("{value} >= {} && {value} <= {}", range.min, range.max)
}

/// The rule on the field `name` itself: its value is within its range.
pub fn range(name: &str) -> Rule {
    let range = range_of(name);
    Rule::new(within("self", range)).message(range.message)
}

/// A timing rule, stated on the spec. It applies when both fields are present and within their
/// ranges, as the engine applies it: a value out of its range is refused by its own rule, and
/// the guard also keeps the arithmetic within int64, where an overflow would be an evaluation
/// error instead of the rule's message.
fn timing(rule: &TimingRule) -> Rule {
    let (field, other) = (path(rule.field), path(rule.other));
    let comparison = if rule.strictly { ">" } else { ">=" };
    let mut guards = Vec::new();
    for (name, value) in [(rule.field, &field), (rule.other, &other)] {
        if spec_field(name).is_some_and(|field| field.optional) {
            let (parent, member) = value.rsplit_once('.').expect("a path has a parent");
            guards.push(format!("has({parent}.{member})"));
        }
        guards.push(within(value, range_of(name)));
    }
    let term = |times: u64, value: &str| match times {
        1 => value.to_owned(),
        _ => format!("{times} * {value}"),
    };
    let plus = match rule.plus {
        0 => String::new(),
        plus => format!(" + {plus}"),
    };
    let holds = format!(
        "{} {comparison} {}{plus}",
        term(rule.times, &field),
        term(rule.other_times, &other)
    );
    let section = spec_field(rule.field).map_or("", |field| field.section);
    Rule::new(format!("!({}) || {holds}", guards.join(" && ")))
        .message(rule.message)
        .field_path(format!(".{section}.{}", rule.field))
}

/// Adds every timing rule to the spec's schema (a `schemars` transform on the spec).
pub fn timing_rules(schema: &mut Schema) {
    for rule in TIMING_RULES {
        kube::core::validate(schema, timing(rule)).expect("a rule serializes");
    }
}

/// The rule on `reexamine`: at most a Kubernetes name's bytes, as the engine takes it.
pub fn reexamine_token() -> Rule {
    let most = tandem_engine::limits::MAX_NAME_BYTES;
    Rule::new(format!("bytes(self).size() <= {most}")).message(messages::REEXAMINE)
}

/// The rule on `switchover.token`: not empty (a request is a change of token), and at most a
/// Kubernetes name's bytes.
pub fn switchover_token() -> Rule {
    let most = tandem_engine::limits::MAX_NAME_BYTES;
    Rule::new(format!("self.size() >= 1 && bytes(self).size() <= {most}"))
        .message(messages::SWITCHOVER_TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_engine::config::SPEC_FIELDS;

    /// Every range and every timing rule of the engine's tables is in the generated schema, on
    /// the field it is about, with its message.
    #[test]
    fn the_schema_states_every_rule_of_the_engine_s_tables() {
        let crd = serde_json::to_value(crate::crd()).expect("the CRD serializes");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let messages = |rules: &serde_json::Value| -> Vec<String> {
            rules["x-kubernetes-validations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|rule| Some(rule["message"].as_str()?.to_owned()))
                .collect()
        };
        for field in SPEC_FIELDS {
            let Some(range) = field.range else { continue };
            let property = &spec["properties"][field.section]["properties"][field.name];
            assert!(
                messages(property).contains(&range.message.to_owned()),
                "{}: {property}",
                field.name
            );
        }
        let on_spec = messages(spec);
        for rule in TIMING_RULES {
            assert!(
                on_spec.contains(&rule.message.to_owned()),
                "{}: {on_spec:?}",
                rule.message
            );
        }
    }

    #[test]
    fn a_timing_rule_is_guarded_by_the_ranges_of_its_fields() {
        let lease = TIMING_RULES
            .iter()
            .find(|rule| rule.field == "agentLeaseSeconds")
            .expect("the lease rule");
        assert_eq!(
            timing(lease).rule,
            "!(has(self.haSpec.agentLeaseSeconds) && self.haSpec.agentLeaseSeconds >= 1 && \
             self.haSpec.agentLeaseSeconds <= 4294967295 && self.zenithSpec.pollingInterval >= 1 \
             && self.zenithSpec.pollingInterval <= 4294967295) || self.haSpec.agentLeaseSeconds > \
             self.zenithSpec.pollingInterval + 2"
        );
        let wait = TIMING_RULES
            .iter()
            .find(|rule| rule.field == "waitForActiveTimeout")
            .expect("the wait rule");
        assert!(
            timing(wait)
                .rule
                .starts_with("!(has(self.haSpec.waitForActiveTimeout) && ")
        );
    }
}
