//! Reading a scenario file: the document, `cluster:`, `world:` and `expect:`. Timeline entries
//! are in [`entry`](super::entry).

use super::entry::parse_timeline;
use super::error::ScenarioError;
use super::field::{Field, Map, member_ordinal};
use super::yaml;
use super::{ClusterStateName, Expect, Millis, Scenario, WorldConfig};
use std::path::Path;
use tandem_engine::config::{FieldKind, FieldValue, SPEC_FIELDS, spec_field};
use tandem_engine::{Replication, Spec, StateKind, Topology};

/// The keys of the document.
const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "topology",
    "seed",
    "duration",
    "cluster",
    "world",
    "timeline",
    "expect",
];

/// CRD fields that change during a run, so the timeline drives them: refused in `cluster:` with a
/// message that points at the actions.
const DRIVEN_KEYS: &[&str] = &["stopped", "reexamine", "switchover"];

/// The keys of `world:`.
const WORLD_KEYS: &[&str] = &[
    "nodes",
    "podStartSeconds",
    "rebuildSeconds",
    "writesPerSecond",
    "replicationLagMs",
    "apiLatencyMs",
    "agentLatencyMs",
];

/// The keys of `expect:`.
const EXPECT_KEYS: &[&str] = &[
    "finalState",
    "recoveredWithin",
    "visits",
    "never",
    "maxLostWrites",
];

/// `duration` when the file does not say.
pub const DEFAULT_DURATION_MS: Millis = 30 * 60 * 1000;

/// `seed` when the file does not say.
pub const DEFAULT_SEED: u64 = 1;

/// Reads and parses the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses a scenario from `text`; `file` names it in messages.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let root = yaml::read(text).map_err(|error| ScenarioError::Syntax {
        file: file.to_owned(),
        line: error.line,
        message: error.message,
    })?;
    // An empty file is a mapping without keys: the first complaint is the missing name.
    let empty = yaml::Node {
        line: 1,
        value: yaml::Value::Mapping(Vec::new()),
    };
    let root = root.as_ref().unwrap_or(&empty);
    let document = Field {
        file,
        key: "",
        key_line: root.line,
        node: root,
    };
    let top = Map::new(document, TOP_KEYS)?;
    scenario(&top)
}

fn scenario(top: &Map<'_>) -> Result<Scenario, ScenarioError> {
    let name = top.require("name", "every scenario has a name")?;
    let name_text = name.string()?;
    if name_text.trim().is_empty() {
        return Err(name.out_of_range("the name is empty"));
    }
    let description = match top.get("description") {
        Some(field) => field.string()?.to_owned(),
        None => String::new(),
    };
    let topology = match top
        .require("topology", "every scenario says master-slave or standalone")?
        .choice(&["master-slave", "standalone"])?
    {
        "standalone" => Topology::Standalone,
        _ => Topology::MasterSlave,
    };
    let seed = match top.get("seed") {
        Some(field) => field.unsigned(u64::MAX)?,
        None => DEFAULT_SEED,
    };
    let duration_ms = match top.get("duration") {
        Some(field) => field.duration()?,
        None => DEFAULT_DURATION_MS,
    };
    let cluster = cluster(top.get("cluster"), topology)?;
    let world = world(top.get("world"))?;
    let timeline = parse_timeline(top.get("timeline"), topology, &world, duration_ms)?;
    let expect = expect(top.get("expect"), topology)?;
    Ok(Scenario {
        name: name_text.to_owned(),
        description,
        topology,
        seed,
        duration_ms,
        cluster,
        world,
        timeline,
        expect,
    })
}

/// `cluster:` over the CRD defaults, then the engine's own validation.
fn cluster(section: Option<Field<'_>>, topology: Topology) -> Result<Spec, ScenarioError> {
    let mut spec = Spec::defaults(topology);
    let Some(section) = section else {
        return Ok(spec);
    };
    // The keys of `cluster:` are the CRD's names, from the engine's one table of them.
    let keys: Vec<&str> = SPEC_FIELDS.iter().map(|field| field.name).collect();
    let map = Map::with_refused(section, &keys, DRIVEN_KEYS)?;
    for key in map.keys() {
        if let Some(field) = map.get(key) {
            set_cluster_field(&mut spec, key, &field)?;
        }
    }
    spec.validate().map_err(|error| {
        // Point at the field the rule is about when the file sets it; otherwise at `cluster:`,
        // whose values broke a rule about a default.
        let line = map
            .get(error.field)
            .map_or(section.key_line, |field| field.key_line);
        ScenarioError::InvalidCluster {
            file: section.file.to_owned(),
            line,
            key: format!("cluster.{}", error.field),
            message: error.message,
        }
    })?;
    Ok(spec)
}

fn set_cluster_field(spec: &mut Spec, key: &str, field: &Field<'_>) -> Result<(), ScenarioError> {
    let Some(spec_field) = spec_field(key) else {
        return Err(driven_by_actions(key, field));
    };
    let value = match spec_field.kind {
        FieldKind::Number32 => FieldValue::Number(field.u32()?.into()),
        FieldKind::Bytes => FieldValue::Number(field.unsigned(u64::MAX)?),
        FieldKind::Flag => FieldValue::Flag(field.bool()?),
        FieldKind::Replication => {
            FieldValue::Replication(match field.choice(&["sync", "async"])? {
                "async" => Replication::Async,
                _ => Replication::Sync,
            })
        }
    };
    spec_field
        .set(spec, value)
        .map_err(|message| field.out_of_range(message))
}

/// `stopped`, `reexamine` and `switchover` change during a run, so the timeline drives them.
fn driven_by_actions(key: &str, field: &Field<'_>) -> ScenarioError {
    let actions = match key {
        "stopped" => "the stop and start actions",
        "reexamine" => "the reexamine action",
        _ => "the switchover action",
    };
    ScenarioError::NotAccepted {
        file: field.file.to_owned(),
        line: field.key_line,
        key: field.key.to_owned(),
        message: format!("set by {actions} in the timeline, not in cluster:"),
    }
}

fn world(section: Option<Field<'_>>) -> Result<WorldConfig, ScenarioError> {
    let mut world = WorldConfig::default();
    let Some(section) = section else {
        return Ok(world);
    };
    let map = Map::new(section, WORLD_KEYS)?;
    for key in map.keys() {
        let Some(field) = map.get(key) else { continue };
        match key {
            "nodes" => {
                world.nodes = field.u32()?;
                if world.nodes == 0 {
                    return Err(field.out_of_range("a world has at least one node"));
                }
            }
            "podStartSeconds" => world.pod_start_ms = field.seconds()?,
            "rebuildSeconds" => world.rebuild_ms = field.seconds()?,
            "writesPerSecond" => world.writes_per_second = field.u32()?,
            "replicationLagMs" => world.replication_lag_ms = field.unsigned(u64::MAX)?,
            "apiLatencyMs" => world.api_latency_ms = field.unsigned(u64::MAX)?,
            _ => world.agent_latency_ms = field.unsigned(u64::MAX)?,
        }
    }
    Ok(world)
}

fn expect(section: Option<Field<'_>>, topology: Topology) -> Result<Expect, ScenarioError> {
    let mut expect = Expect::default();
    let Some(section) = section else {
        return Ok(expect);
    };
    let map = Map::new(section, EXPECT_KEYS)?;
    let members = topology.member_count();
    if let Some(field) = map.get("finalState") {
        expect.final_state = Some(state_name(&field, members)?);
    }
    if let Some(field) = map.get("recoveredWithin") {
        if expect.final_state.is_none() {
            return Err(ScenarioError::MissingKey {
                file: field.file.to_owned(),
                line: map.line,
                key: "expect.finalState".to_owned(),
                why: "recoveredWithin counts the time to reach finalState".to_owned(),
            });
        }
        expect.recovered_within_ms = Some(field.duration()?);
    }
    if let Some(field) = map.get("visits") {
        expect.visits = state_names(&field, members)?;
    }
    if let Some(field) = map.get("never") {
        expect.never = state_names(&field, members)?;
    }
    if let Some(field) = map.get("maxLostWrites") {
        expect.max_lost_writes = field.unsigned(u64::MAX)?;
    }
    Ok(expect)
}

fn state_names(field: &Field<'_>, members: u8) -> Result<Vec<ClusterStateName>, ScenarioError> {
    let mut names = Vec::new();
    for (index, node) in field.list()?.iter().enumerate() {
        let key = format!("{}[{index}]", field.key);
        let item = Field {
            file: field.file,
            key: &key,
            key_line: node.line,
            node,
        };
        names.push(state_name(&item, members)?);
    }
    Ok(names)
}

/// A state kind (`Normal`), or a kind that names a member with its member
/// (`WaitingForActive(member-0)`).
fn state_name(field: &Field<'_>, members: u8) -> Result<ClusterStateName, ScenarioError> {
    let text = field.string()?;
    let unknown = |message: String| ScenarioError::UnknownState {
        file: field.file.to_owned(),
        line: field.node.line,
        key: field.key.to_owned(),
        message,
    };
    let (kind_text, member) = match text.split_once('(') {
        Some((kind, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| {
                unknown(format!(
                    "{text:?} is not a state name (write Kind or Kind(member-N))"
                ))
            })?;
            (kind, Some(inner))
        }
        None => (text, None),
    };
    let kind = StateKind::from_name(kind_text).ok_or_else(|| {
        let names: Vec<&str> = StateKind::ALL.iter().map(|kind| kind.name()).collect();
        unknown(format!(
            "unknown cluster state {kind_text:?} (expected one of {})",
            names.join(", ")
        ))
    })?;
    if let Some(inner) = member {
        if !matches!(kind, StateKind::WaitingForActive | StateKind::Switchover) {
            return Err(unknown(format!("{kind_text} names no member")));
        }
        let ordinal = member_ordinal(inner)
            .ok_or_else(|| unknown(format!("{inner:?} is not a member (write member-N)")))?;
        if ordinal >= members {
            return Err(unknown(format!(
                "there is no member-{ordinal} in a {members}-member cluster"
            )));
        }
    }
    Ok(ClusterStateName(text.to_owned()))
}
