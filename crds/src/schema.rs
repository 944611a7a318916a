//! Hand-written schema fragments where the derived ones are not what the API server needs.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A free-form object (`dbSpecs`): the API server keeps its fields as they are instead of
/// pruning them, which it would do to an object with no declared properties.
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// At most `TRANSITIONS_KEPT` transitions, as the status promises.
pub fn transitions(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<crate::status::Transition>>();
    schema.insert("maxItems".into(), crate::status::TRANSITIONS_KEPT.into());
    schema
}
