//! Reading a scenario file: serde reads the file ([`super::file`]), then each value is checked
//! against what it refers to (a target against the members and nodes, a time against the run,
//! a fault's parameters against the fault) and the scenario is built.

use super::error::ScenarioError;
use super::file::{
    EntryFile, ExpectFile, ScenarioFile, WorldFile, longer_than_a_run, member_ordinal,
};
use super::limits::{
    MAX_COPY_MEGABYTES_PER_SECOND, MAX_DATA_GIGABYTES, MAX_DURATION_MS, MAX_EXPECTED_STATES,
    MAX_FILE_BYTES, MAX_NAME_BYTES, MAX_NODES, MAX_TIMELINE_ENTRIES, MAX_WRITES_PER_SECOND,
};
use super::{
    ClusterStateName, Expect, Fault, FaultKind, Millis, Scenario, Target, TimelineEntry,
    UserAction, UserActionKind, What, WorldConfig, format_duration,
};
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeMap;
use std::path::Path;
use tandem_engine::config::{FieldKind, FieldValue, SPEC_FIELDS, spec_field};
use tandem_engine::{MemberId, Replication, Spec, StateKind, Topology};

/// `duration` when the file does not say.
pub const DEFAULT_DURATION_MS: Millis = 30 * 60 * 1000;

/// `seed` when the file does not say.
pub const DEFAULT_SEED: u64 = 1;

/// Reads and parses the scenario file at `path`: a regular file of at most
/// [`MAX_FILE_BYTES`], in UTF-8.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    parse(path, &read_text(path)?)
}

/// The text of the file at `path`. What it is is looked at before it is opened, since opening
/// a FIFO waits for a writer, and again once opened, since the path may name another file by
/// then; and no more than [`MAX_FILE_BYTES`] and one byte are read, so that a file growing
/// meanwhile is refused too.
fn read_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let unreadable = |source| ScenarioError::Read {
        file: path.to_owned(),
        source,
    };
    check_file(path, &std::fs::metadata(path).map_err(unreadable)?)?;
    let file = std::fs::File::open(path).map_err(unreadable)?;
    check_file(path, &file.metadata().map_err(unreadable)?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::TooLarge {
            file: path.to_owned(),
        });
    }
    String::from_utf8(bytes).map_err(|error| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text: {error}"),
        ))
    })
}

/// Refuses what is not a regular file, or one larger than [`MAX_FILE_BYTES`].
fn check_file(path: &Path, metadata: &std::fs::Metadata) -> Result<(), ScenarioError> {
    if !metadata.is_file() {
        return Err(ScenarioError::NotAFile {
            file: path.to_owned(),
            kind: file_kind(&metadata.file_type()),
        });
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(ScenarioError::TooLarge {
            file: path.to_owned(),
        });
    }
    Ok(())
}

/// What a path that is not a regular file names.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Parses a scenario from `text`, of at most [`MAX_FILE_BYTES`]; `file` names it in messages.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::TooLarge {
            file: file.to_owned(),
        });
    }
    // An empty file is a document without keys: the first complaint is the missing name.
    let document = deserialize(file, text)?.unwrap_or_default();
    Reader { file }.scenario(document)
}

/// serde's part: the YAML, the keys, the types. Unquoted values that read as numbers or
/// booleans are not taken for strings, and booleans are `true` or `false`.
fn deserialize(file: &Path, text: &str) -> Result<Option<ScenarioFile>, ScenarioError> {
    let options = serde_saphyr::options! {
        no_schema: true,
        strict_booleans: true,
        with_snippet: false,
    };
    let mut path = None;
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |deserializer| {
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            path = Some(error.path().clone());
            error.into_inner()
        })
    })
    .map_err(|error| refusal(file, path.as_ref(), &error))
}

/// The key a serde path names, as messages write it (`timeline[2].for`). The `value` segments
/// are [`Spanned`]'s own.
fn key_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } | Segment::Enum { variant: name } if name != "value" => {
                key = child(&key, name);
            }
            _ => {}
        }
    }
    key
}

fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// What serde refused, with the file, line and key.
fn refusal(
    file: &Path,
    path: Option<&serde_path_to_error::Path>,
    error: &serde_saphyr::Error,
) -> ScenarioError {
    use serde_saphyr::Error as E;
    let line = error
        .location()
        .map_or(1, |location| line_of(&location))
        .max(1);
    let mut key = path.map(key_of).unwrap_or_default();
    let message = match error {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            if key.rsplit('.').next() != Some(field.as_str()) {
                key = child(&key, field);
            }
            format!("unknown key (expected one of {})", expected.join(", "))
        }
        E::DuplicateMappingKey {
            key: Some(name), ..
        } => {
            if key.rsplit('.').next() != Some(name.as_str()) {
                key = child(&key, name);
            }
            "written twice".to_owned()
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let noun = key.rsplit('.').next().unwrap_or("value").to_owned();
            format!(
                "unknown {noun} {variant:?} (expected one of {})",
                expected.join(", ")
            )
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, found {unexpected}"),
        E::InvalidScalar { ty, .. } => format!("expected {}", scalar(ty)),
        E::InvalidBooleanStrict { .. } => "expected true or false".to_owned(),
        E::NullIntoString { .. } => "expected a string, found nothing".to_owned(),
        E::Unexpected { expected, .. } => match *expected {
            "mapping start" => "expected a mapping".to_owned(),
            "sequence start" => "expected a list".to_owned(),
            other => format!("expected {other}"),
        },
        E::QuotingRequired { value, .. } => {
            format!("expected a string, found {value}: quote it if it is one")
        }
        E::Message { msg, .. } => msg.clone(),
        _ => String::new(),
    };
    if message.is_empty() || key.is_empty() {
        // The parser's own complaint, or a document that is not a mapping.
        return ScenarioError::Syntax {
            file: file.to_owned(),
            line,
            message: if message.is_empty() {
                first_line(error)
            } else {
                message
            },
        };
    }
    ScenarioError::Invalid {
        file: file.to_owned(),
        line,
        key,
        message,
    }
}

/// A Rust scalar type as people write its values.
fn scalar(ty: &str) -> &'static str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number from 0",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        _ => "another kind of value",
    }
}

/// The parser's message without its position, which the error gives apart.
fn first_line(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.split_once(": ") {
        Some((position, rest)) if position.starts_with("line ") => rest,
        _ => first,
    };
    match first.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => first.to_owned(),
    }
}

fn line_of(location: &Location) -> u32 {
    u32::try_from(location.line()).unwrap_or(u32::MAX)
}

fn line<T>(spanned: &Spanned<T>) -> u32 {
    line_of(&spanned.referenced).max(1)
}

/// What an entry is checked against.
struct Limits<'w> {
    topology: Topology,
    world: &'w WorldConfig,
    duration_ms: Millis,
}

/// The checks after serde, for one file.
struct Reader<'a> {
    file: &'a Path,
}

impl Reader<'_> {
    fn invalid(
        &self,
        line: u32,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }

    fn missing(&self, line: u32, key: impl Into<String>, why: impl Into<String>) -> ScenarioError {
        ScenarioError::MissingKey {
            file: self.file.to_owned(),
            line,
            key: key.into(),
            why: why.into(),
        }
    }

    fn scenario(&self, document: ScenarioFile) -> Result<Scenario, ScenarioError> {
        let name = document
            .name
            .ok_or_else(|| self.missing(1, "name", "every scenario has a name"))?;
        if let Err(message) = check_name(&name.value) {
            return Err(self.invalid(line(&name), "name", message));
        }
        let topology = document
            .topology
            .ok_or_else(|| {
                self.missing(
                    1,
                    "topology",
                    "every scenario says master-slave or standalone",
                )
            })?
            .value
            .0;
        let duration_ms = document
            .duration
            .map_or(DEFAULT_DURATION_MS, |duration| duration.value.0);
        let cluster = self.cluster(document.cluster, topology)?;
        let world = self.world(document.world)?;
        let limits = Limits {
            topology,
            world: &world,
            duration_ms,
        };
        let timeline = match document.timeline {
            Some(entries) if entries.value.len() > MAX_TIMELINE_ENTRIES => {
                return Err(self.invalid(
                    line(&entries),
                    "timeline",
                    format!(
                        "{} entries are more than the {MAX_TIMELINE_ENTRIES} a timeline may have",
                        entries.value.len()
                    ),
                ));
            }
            Some(entries) => entries
                .value
                .into_iter()
                .enumerate()
                .map(|(index, entry)| self.entry(index, entry, &limits))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let expect = self.expect(document.expect, topology)?;
        Ok(Scenario {
            name: name.value,
            description: document
                .description
                .map(|description| description.value)
                .unwrap_or_default(),
            topology,
            seed: document.seed.map_or(DEFAULT_SEED, |seed| seed.value),
            duration_ms,
            cluster,
            world,
            timeline,
            expect,
        })
    }

    /// `cluster:` over the CRD defaults, then the engine's own validation.
    fn cluster(
        &self,
        section: Option<Spanned<BTreeMap<String, Spanned<serde_json::Value>>>>,
        topology: Topology,
    ) -> Result<Spec, ScenarioError> {
        let mut spec = Spec::defaults(topology);
        let Some(section) = section else {
            return Ok(spec);
        };
        for (name, value) in &section.value {
            let key = format!("cluster.{name}");
            // The keys of `cluster:` are the CRD's names, from the engine's one table of them.
            let Some(field) = spec_field(name) else {
                let message = match driven_by_actions(name) {
                    Some(actions) => format!("set by {actions} in the timeline, not in cluster:"),
                    None => {
                        let names: Vec<&str> = SPEC_FIELDS.iter().map(|field| field.name).collect();
                        format!("unknown key (expected one of {})", names.join(", "))
                    }
                };
                return Err(self.invalid(line(value), key, message));
            };
            let parsed = cluster_value(field.kind, &value.value)
                .map_err(|message| self.invalid(line(value), &key, message))?;
            field
                .set(&mut spec, parsed)
                .map_err(|message| self.invalid(line(value), &key, message))?;
        }
        spec.derive_unset(|name| section.value.contains_key(name));
        spec.validate().map_err(|error| {
            // Point at the field the rule is about when the file sets it; otherwise at
            // `cluster:`, whose values broke a rule about a default.
            let at = section
                .value
                .get(error.field)
                .map_or_else(|| line(&section), line);
            self.invalid(at, format!("cluster.{}", error.field), error.message)
        })?;
        Ok(spec)
    }

    fn world(&self, section: Option<Spanned<WorldFile>>) -> Result<WorldConfig, ScenarioError> {
        let mut world = WorldConfig::default();
        let Some(section) = section else {
            return Ok(world);
        };
        let file = section.value;
        if let Some(nodes) = file.nodes {
            if nodes.value == 0 {
                return Err(self.invalid(
                    line(&nodes),
                    "world.nodes",
                    "a world has at least one node",
                ));
            }
            if nodes.value > MAX_NODES {
                return Err(self.invalid(
                    line(&nodes),
                    "world.nodes",
                    format!(
                        "{} nodes are more than the {MAX_NODES} a world may have (the most the \
                         engine tracks)",
                        nodes.value
                    ),
                ));
            }
            world.nodes = nodes.value;
        }
        let set = |slot: &mut Millis, value: Option<Millis>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(
            &mut world.pod_start_ms,
            file.pod_start_seconds.map(|s| s.value.0),
        );
        set(
            &mut world.rebuild_ms,
            file.rebuild_seconds.map(|s| s.value.0),
        );
        let millis = |value: Option<Spanned<u64>>, key: &str| match value {
            Some(ms) if ms.value > MAX_DURATION_MS => Err(self.invalid(
                line(&ms),
                format!("world.{key}"),
                longer_than_a_run(&format!("{}ms", ms.value)),
            )),
            value => Ok(value.map(|ms| ms.value)),
        };
        set(
            &mut world.replication_lag_ms,
            millis(file.replication_lag_ms, "replicationLagMs")?,
        );
        set(
            &mut world.api_latency_ms,
            millis(file.api_latency_ms, "apiLatencyMs")?,
        );
        set(
            &mut world.agent_latency_ms,
            millis(file.agent_latency_ms, "agentLatencyMs")?,
        );
        if let Some(size) = file.data_gigabytes {
            if size.value > MAX_DATA_GIGABYTES {
                return Err(self.invalid(
                    line(&size),
                    "world.dataGigabytes",
                    format!(
                        "{} GiB are more than the {MAX_DATA_GIGABYTES} a world's database may hold",
                        size.value
                    ),
                ));
            }
            world.data_gigabytes = size.value;
        }
        if let Some(rate) = file.copy_megabytes_per_second {
            if !(1..=MAX_COPY_MEGABYTES_PER_SECOND).contains(&rate.value) {
                return Err(self.invalid(
                    line(&rate),
                    "world.copyMegabytesPerSecond",
                    format!(
                        "a copy moves from 1 to {MAX_COPY_MEGABYTES_PER_SECOND} MiB a second, \
                         not {}",
                        rate.value
                    ),
                ));
            }
            world.copy_megabytes_per_second = rate.value;
        }
        if let Some(history) = file.agents_report_history {
            world.agents_report_history = history.value;
        }
        if let Some(rewind) = file.agents_rewind {
            world.agents_rewind = rewind.value;
        }
        if let Some(writes) = file.writes_per_second {
            if writes.value > MAX_WRITES_PER_SECOND {
                return Err(self.invalid(
                    line(&writes),
                    "world.writesPerSecond",
                    format!(
                        "{} writes a second are more than the {MAX_WRITES_PER_SECOND} a world \
                         may have",
                        writes.value
                    ),
                ));
            }
            world.writes_per_second = writes.value;
        }
        Ok(world)
    }

    fn entry(
        &self,
        index: usize,
        entry: Spanned<EntryFile>,
        limits: &Limits<'_>,
    ) -> Result<TimelineEntry, ScenarioError> {
        let mut params = Params {
            reader: self,
            index,
            line: line(&entry),
            entry: entry.value,
            taken: Vec::new(),
        };
        let at = params.entry.at.take().ok_or_else(|| {
            self.missing(
                params.line,
                params.key("at"),
                "every timeline entry says when it happens",
            )
        })?;
        if at.value.0 > limits.duration_ms {
            return Err(self.invalid(
                line(&at),
                params.key("at"),
                format!(
                    "{} is after the end of the run ({})",
                    format_duration(at.value.0),
                    format_duration(limits.duration_ms)
                ),
            ));
        }
        let (what, name) = match (params.entry.fault.take(), params.entry.action.take()) {
            (Some(fault), None) => {
                let name: &'static str = fault.value.into();
                (params.fault(fault.value, name, limits)?, name)
            }
            (None, Some(action)) => {
                let name: &'static str = action.value.into();
                (What::Action(params.action(action.value, limits)?), name)
            }
            (Some(_), Some(action)) => {
                return Err(self.invalid(
                    line(&action),
                    params.key("action"),
                    "an entry is a fault or an action, not both",
                ));
            }
            (None, None) => {
                return Err(self.missing(
                    params.line,
                    params.key("fault"),
                    "an entry has a fault: or an action:",
                ));
            }
        };
        let entry_line = params.line;
        params.finish(name)?;
        Ok(TimelineEntry {
            at_ms: at.value.0,
            what,
            line: entry_line,
        })
    }

    fn expect(
        &self,
        section: Option<Spanned<ExpectFile>>,
        topology: Topology,
    ) -> Result<Expect, ScenarioError> {
        let Some(section) = section else {
            return Ok(Expect::default());
        };
        let file = section.value;
        let members = topology.member_count();
        let mut expect = Expect::default();
        if let Some(state) = &file.final_state {
            expect.final_state = Some(self.state_name(state, "expect.finalState", members)?);
        }
        if let Some(within) = &file.recovered_within {
            if expect.final_state.is_none() {
                return Err(self.missing(
                    line(within),
                    "expect.finalState",
                    "recoveredWithin counts the time to reach finalState",
                ));
            }
            expect.recovered_within_ms = Some(within.value.0);
        }
        let names = |list: &Option<Spanned<serde_saphyr::FlowSeq<Vec<Spanned<String>>>>>,
                     key: &str| {
            if let Some(list) = list
                .as_ref()
                .filter(|list| list.value.0.len() > MAX_EXPECTED_STATES)
            {
                return Err(self.invalid(
                    line(list),
                    key,
                    format!(
                        "{} states are more than the {MAX_EXPECTED_STATES} it may list",
                        list.value.0.len()
                    ),
                ));
            }
            list.iter()
                .flat_map(|list| list.value.0.iter().enumerate())
                .map(|(index, name)| self.state_name(name, &format!("{key}[{index}]"), members))
                .collect::<Result<Vec<_>, _>>()
        };
        expect.visits = names(&file.visits, "expect.visits")?;
        expect.never = names(&file.never, "expect.never")?;
        expect.max_lost_writes = file.max_lost_writes.map_or(0, |writes| writes.value);
        expect.max_full_copies = file.max_full_copies.map(|copies| copies.value);
        expect.max_write_outage_ms = file.max_write_outage.map(|outage| outage.value.0);
        expect.max_degraded_ms = file.max_degraded_time.map(|degraded| degraded.value.0);
        Ok(expect)
    }

    /// A state kind (`Normal`), or a kind that names a member with its member
    /// (`WaitingForActive(member-0)`).
    fn state_name(
        &self,
        name: &Spanned<String>,
        key: &str,
        members: u8,
    ) -> Result<ClusterStateName, ScenarioError> {
        let text = name.value.as_str();
        let refuse = |message: String| self.invalid(line(name), key, message);
        let (kind_text, member) = match text.split_once('(') {
            Some((kind, rest)) => {
                let inner = rest.strip_suffix(')').ok_or_else(|| {
                    refuse(format!(
                        "{text:?} is not a state name (write Kind or Kind(member-N))"
                    ))
                })?;
                (kind, Some(inner))
            }
            None => (text, None),
        };
        let kind = StateKind::from_name(kind_text).ok_or_else(|| {
            let names: Vec<&str> = StateKind::ALL.iter().map(|kind| kind.name()).collect();
            refuse(format!(
                "unknown cluster state {kind_text:?} (expected one of {})",
                names.join(", ")
            ))
        })?;
        let member = match member {
            None => None,
            Some(inner) => {
                if !matches!(kind, StateKind::WaitingForActive | StateKind::Switchover) {
                    return Err(refuse(format!("{kind_text} names no member")));
                }
                let ordinal = member_ordinal(inner)
                    .ok_or_else(|| refuse(format!("{inner:?} is not a member (write member-N)")))?;
                if ordinal >= members {
                    return Err(refuse(no_such_member(ordinal, members)));
                }
                Some(MemberId(ordinal))
            }
        };
        Ok(ClusterStateName { kind, member })
    }
}

/// A scenario's name names its log stream and the files `--trace` and `--timeline` write for
/// it: it is not empty or blank, at most [`MAX_NAME_BYTES`] long, and printable (no control
/// character), with no path separator (`/`, `\`).
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the name is empty".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the name is {} bytes long, more than the {MAX_NAME_BYTES} a name may have",
            name.len()
        ));
    }
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the name contains the control character {control:?}: a name is printable"
        ));
    }
    if let Some(separator) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Err(format!(
            "the name contains {separator:?}: a name names files, and has no path separator"
        ));
    }
    Ok(())
}

/// `stopped`, `reexamine` and `switchover` change during a run, so the timeline drives them.
fn driven_by_actions(key: &str) -> Option<&'static str> {
    match key {
        "stopped" => Some("the stop and start actions"),
        "reexamine" => Some("the reexamine action"),
        "switchover" => Some("the switchover action"),
        _ => None,
    }
}

/// A `cluster:` value of a field of `kind`.
fn cluster_value(kind: FieldKind, value: &serde_json::Value) -> Result<FieldValue, String> {
    let expected = |what: &str| format!("expected {what}, found {}", describe(value));
    match kind {
        // The field's range, from the engine's table, refuses a number out of it.
        FieldKind::Number32 | FieldKind::Bytes => value
            .as_u64()
            .map(FieldValue::Number)
            .ok_or_else(|| expected("a whole number")),
        FieldKind::Flag => value
            .as_bool()
            .map(FieldValue::Flag)
            .ok_or_else(|| expected("true or false")),
        FieldKind::Replication => value
            .as_str()
            .and_then(Replication::from_name)
            .map(FieldValue::Replication)
            .ok_or_else(|| expected("sync, syncPreferred or async")),
    }
}

fn describe(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "nothing".to_owned(),
        serde_json::Value::Bool(flag) => format!("the boolean {flag}"),
        serde_json::Value::Number(number) => format!("the number {number}"),
        serde_json::Value::String(text) => format!("the string {text:?}"),
        serde_json::Value::Array(_) => "a list".to_owned(),
        serde_json::Value::Object(_) => "a mapping".to_owned(),
    }
}

fn no_such_member(ordinal: u8, members: u8) -> String {
    format!(
        "there is no member-{ordinal}: the cluster has {members} member{} (member-0{})",
        if members == 1 { "" } else { "s" },
        if members > 1 { " and member-1" } else { "" }
    )
}

/// What kind of target a fault hits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// A member: `active`, `standby`, `member-N`.
    Member,
    /// A node: `node-of-active`, `node-of-standby`, `node-N`.
    Node,
}

/// An entry's parameters, taken one by one by the fault or action that uses them; whatever is
/// left was not the entry's to have.
struct Params<'r, 'f> {
    reader: &'r Reader<'f>,
    index: usize,
    line: u32,
    entry: EntryFile,
    /// The parameters taken, in order, for the message about one that was not.
    taken: Vec<&'static str>,
}

impl Params<'_, '_> {
    fn key(&self, name: &str) -> String {
        format!("timeline[{}].{name}", self.index)
    }

    fn needs(&self, key: &'static str, name: &str) -> ScenarioError {
        self.reader
            .missing(self.line, self.key(key), format!("{name} needs {key}"))
    }

    fn target(
        &mut self,
        aim: Aim,
        name: &str,
        limits: &Limits<'_>,
    ) -> Result<Target, ScenarioError> {
        self.taken.push("target");
        let target = self.entry.target.take().ok_or_else(|| {
            self.reader.missing(
                self.line,
                self.key("target"),
                format!("{name} needs a target"),
            )
        })?;
        let refuse = |message: String| {
            self.reader
                .invalid(line(&target), self.key("target"), message)
        };
        let members = limits.topology.member_count();
        let nodes = limits.world.nodes;
        let is_node = matches!(
            target.value,
            Target::NodeOfActive | Target::NodeOfStandby | Target::Node(_)
        );
        match (aim, is_node) {
            (Aim::Node, false) => {
                return Err(refuse(format!(
                    "{name} hits a node (node-of-active, node-of-standby, node-N)"
                )));
            }
            (Aim::Member, true) => {
                return Err(refuse(format!(
                    "{name} hits a member (active, standby, member-N)"
                )));
            }
            _ => {}
        }
        match target.value {
            Target::Member(ordinal) if ordinal >= members => {
                Err(refuse(no_such_member(ordinal, members)))
            }
            Target::Standby | Target::NodeOfStandby if members < 2 => {
                Err(refuse("a standalone cluster has no standby".to_owned()))
            }
            Target::Node(node) if node >= nodes => Err(refuse(format!(
                "there is no node-{node}: the world has {nodes} nodes (node-0 to node-{})",
                nodes.saturating_sub(1)
            ))),
            target => Ok(target),
        }
    }

    /// `for`, required.
    fn for_ms(&mut self, name: &str) -> Result<Millis, ScenarioError> {
        self.optional_for_ms()?
            .ok_or_else(|| self.needs("for", name))
    }

    /// `for`, when the fault may last forever.
    fn optional_for_ms(&mut self) -> Result<Option<Millis>, ScenarioError> {
        self.taken.push("for");
        Ok(self.entry.for_.take().map(|duration| duration.value.0))
    }

    /// `restartAfter`, `never` being `None`.
    fn restart_after(
        &mut self,
        default_ms: Millis,
    ) -> Result<(Option<Millis>, u32), ScenarioError> {
        self.taken.push("restartAfter");
        Ok(match self.entry.restart_after.take() {
            Some(restart) => (restart.value.0, line(&restart)),
            None => (Some(default_ms), self.line),
        })
    }

    /// What a fault hits, if anything.
    fn aim(kind: FaultKind) -> Option<Aim> {
        match kind {
            FaultKind::CrashProcess
            | FaultKind::HangProcess
            | FaultKind::DeletePod
            | FaultKind::Partition
            | FaultKind::Isolate
            | FaultKind::ReplicationStall
            | FaultKind::ReplicationBreak
            | FaultKind::DiskFull
            | FaultKind::SlowStart
            | FaultKind::AgentFlap => Some(Aim::Member),
            FaultKind::NodeLoss => Some(Aim::Node),
            FaultKind::OperatorCrash | FaultKind::ApiErrors => None,
        }
    }

    fn fault(
        &mut self,
        kind: FaultKind,
        name: &'static str,
        limits: &Limits<'_>,
    ) -> Result<What, ScenarioError> {
        let target = match Self::aim(kind) {
            Some(aim) => Some(self.target(aim, name, limits)?),
            None => None,
        };
        let fault = match kind {
            FaultKind::CrashProcess => Fault::CrashProcess {
                restart_after_ms: self.restart_after(10_000)?.0,
            },
            FaultKind::HangProcess => Fault::HangProcess {
                for_ms: self.for_ms(name)?,
            },
            FaultKind::DeletePod => Fault::DeletePod,
            FaultKind::Partition => Fault::Partition {
                for_ms: self.for_ms(name)?,
            },
            FaultKind::Isolate => Fault::Isolate {
                for_ms: self.for_ms(name)?,
            },
            FaultKind::NodeLoss => Fault::NodeLoss {
                for_ms: self.optional_for_ms()?,
            },
            FaultKind::ReplicationStall => Fault::ReplicationStall {
                for_ms: self.for_ms(name)?,
            },
            FaultKind::ReplicationBreak => Fault::ReplicationBreak {
                for_ms: self.for_ms(name)?,
            },
            FaultKind::DiskFull => Fault::DiskFull {
                for_ms: self.for_ms(name)?,
            },
            FaultKind::SlowStart => self.slow_start(name)?,
            FaultKind::AgentFlap => self.agent_flap(name)?,
            FaultKind::OperatorCrash => self.operator_crash()?,
            FaultKind::ApiErrors => self.api_errors(name)?,
        };
        Ok(What::Fault(fault, target))
    }

    fn slow_start(&mut self, name: &str) -> Result<Fault, ScenarioError> {
        self.taken.push("seconds");
        let seconds = self
            .entry
            .seconds
            .take()
            .ok_or_else(|| self.needs("seconds", name))?;
        Ok(Fault::SlowStart {
            start_ms: seconds.value.0,
        })
    }

    fn agent_flap(&mut self, name: &str) -> Result<Fault, ScenarioError> {
        self.taken.push("period");
        let period = self
            .entry
            .period
            .take()
            .ok_or_else(|| self.needs("period", name))?;
        if period.value.0 == 0 {
            return Err(self.reader.invalid(
                line(&period),
                self.key("period"),
                "the period must be longer than 0ms",
            ));
        }
        let for_ms = self.for_ms(name)?;
        Ok(Fault::AgentFlap {
            period_ms: period.value.0,
            for_ms,
        })
    }

    fn operator_crash(&mut self) -> Result<Fault, ScenarioError> {
        let (restart_after_ms, at) = self.restart_after(5_000)?;
        let restart_after_ms = restart_after_ms.ok_or_else(|| {
            self.reader.invalid(
                at,
                self.key("restartAfter"),
                "the operator always restarts: give a duration",
            )
        })?;
        self.taken.push("loseLog");
        let lose_log = self.entry.lose_log.take().is_some_and(|lose| lose.value);
        Ok(Fault::OperatorCrash {
            restart_after_ms,
            lose_log,
        })
    }

    fn api_errors(&mut self, name: &str) -> Result<Fault, ScenarioError> {
        self.taken.push("rate");
        let rate = self
            .entry
            .rate
            .take()
            .ok_or_else(|| self.needs("rate", name))?;
        if !(0.0..=1.0).contains(&rate.value) {
            return Err(self.reader.invalid(
                line(&rate),
                self.key("rate"),
                format!(
                    "the rate is a fraction of calls, from 0 to 1, not {}",
                    rate.value
                ),
            ));
        }
        Ok(Fault::ApiErrors {
            rate: rate.value,
            for_ms: self.for_ms(name)?,
        })
    }

    fn action(
        &mut self,
        kind: UserActionKind,
        limits: &Limits<'_>,
    ) -> Result<UserAction, ScenarioError> {
        Ok(match kind {
            UserActionKind::Switchover => {
                self.taken.push("to");
                let members = limits.topology.member_count();
                let to = match self.entry.to.take() {
                    Some(to) if to.value.0 >= members => {
                        return Err(self.reader.invalid(
                            line(&to),
                            self.key("to"),
                            no_such_member(to.value.0, members),
                        ));
                    }
                    to => to.map(|to| to.value.0),
                };
                UserAction::Switchover { to }
            }
            UserActionKind::ConfigChange => {
                self.taken.push("hash");
                UserAction::ConfigChange {
                    hash: self.entry.hash.take().map(|hash| hash.value),
                }
            }
            UserActionKind::Stop => UserAction::Stop,
            UserActionKind::Start => UserAction::Start,
            UserActionKind::Reexamine => UserAction::Reexamine,
            UserActionKind::PauseFailover => UserAction::PauseFailover,
            UserActionKind::ResumeFailover => UserAction::ResumeFailover,
        })
    }

    /// Refuses a parameter the fault or action did not take.
    fn finish(self, name: &str) -> Result<(), ScenarioError> {
        let entry = &self.entry;
        let left = [
            ("target", entry.target.as_ref().map(line)),
            ("for", entry.for_.as_ref().map(line)),
            ("restartAfter", entry.restart_after.as_ref().map(line)),
            ("period", entry.period.as_ref().map(line)),
            ("rate", entry.rate.as_ref().map(line)),
            ("seconds", entry.seconds.as_ref().map(line)),
            ("loseLog", entry.lose_log.as_ref().map(line)),
            ("to", entry.to.as_ref().map(line)),
            ("hash", entry.hash.as_ref().map(line)),
        ];
        let Some((key, at)) = left
            .into_iter()
            .find_map(|(key, at)| at.map(|at| (key, at)))
        else {
            return Ok(());
        };
        let takes = if self.taken.is_empty() {
            "it takes no parameters".to_owned()
        } else {
            format!("it takes {}", self.taken.join(", "))
        };
        Err(self.reader.invalid(
            at,
            self.key(key),
            format!("{name} takes no {key} ({takes})"),
        ))
    }
}
