//! Writing a scenario back as YAML, in the format people write: failing explorations are saved
//! this way, shrunk, so that they replay with `tandem-sim run` and read like the catalog.

use super::yaml::{PlainKind, plain_kind};
use super::{Action, Expect, Fault, Millis, Scenario, Target, TimelineEntry, What, WorldConfig};
use std::fmt::{self, Write as _};
use tandem_engine::Spec;

/// Writes `scenario` as a scenario file that parses back to an equal scenario (timeline lines
/// aside, which are positions in the written text).
///
/// `cluster:`, `world:` and `expect:` list only what differs from the defaults, so a shrunk
/// scenario shows what matters. Spec fields the language drives by actions (`stopped`,
/// `reexamine`, `switchover`, the configuration hash) have no place in `cluster:` and are not
/// written.
pub fn to_yaml(scenario: &Scenario) -> String {
    let mut out = String::new();
    line(&mut out, 0, "name", &quote(&scenario.name));
    if !scenario.description.is_empty() {
        line(&mut out, 0, "description", &quote(&scenario.description));
    }
    line(&mut out, 0, "topology", scenario.topology.name());
    line(&mut out, 0, "seed", &scenario.seed.to_string());
    line(
        &mut out,
        0,
        "duration",
        &format_duration(scenario.duration_ms),
    );
    section(&mut out, "cluster", &cluster_lines(&scenario.cluster));
    section(&mut out, "world", &world_lines(&scenario.world));
    if !scenario.timeline.is_empty() {
        out.push_str("timeline:\n");
        for entry in &scenario.timeline {
            write_entry(&mut out, entry);
        }
    }
    section(&mut out, "expect", &expect_lines(&scenario.expect));
    out
}

/// A duration the way scenario files write it: the largest unit that is exact.
pub fn format_duration(ms: Millis) -> String {
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// Milliseconds as seconds with at most three decimals (`5`, `2.5`).
fn format_seconds(ms: Millis) -> String {
    let fraction = ms % 1_000;
    if fraction == 0 {
        return (ms / 1_000).to_string();
    }
    let digits = format!("{fraction:03}");
    format!("{}.{}", ms / 1_000, digits.trim_end_matches('0'))
}

impl fmt::Display for Target {
    /// The target as scenario files write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Active => f.write_str("active"),
            Target::Standby => f.write_str("standby"),
            Target::Member(ordinal) => write!(f, "member-{ordinal}"),
            Target::NodeOfActive => f.write_str("node-of-active"),
            Target::NodeOfStandby => f.write_str("node-of-standby"),
            Target::Node(node) => write!(f, "node-{node}"),
        }
    }
}

fn line(out: &mut String, indent: usize, key: &str, value: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{:indent$}{key}: {value}", "");
}

fn section(out: &mut String, name: &str, lines: &[(&'static str, String)]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{name}:");
    for (key, value) in lines {
        line(out, 2, key, value);
    }
}

/// The fields of `cluster` that differ from the defaults, with their CRD names (the engine's one
/// table of them).
fn cluster_lines(cluster: &Spec) -> Vec<(&'static str, String)> {
    let defaults = Spec::defaults(cluster.topology);
    tandem_engine::config::SPEC_FIELDS
        .iter()
        .filter_map(|field| {
            let value = field.get(cluster)?;
            (Some(value) != field.get(&defaults)).then(|| (field.name, value.to_string()))
        })
        .collect()
}

fn world_lines(world: &WorldConfig) -> Vec<(&'static str, String)> {
    let defaults = WorldConfig::default();
    let mut lines = Vec::new();
    if world.nodes != defaults.nodes {
        lines.push(("nodes", world.nodes.to_string()));
    }
    if world.pod_start_ms != defaults.pod_start_ms {
        lines.push(("podStartSeconds", format_seconds(world.pod_start_ms)));
    }
    if world.rebuild_ms != defaults.rebuild_ms {
        lines.push(("rebuildSeconds", format_seconds(world.rebuild_ms)));
    }
    if world.writes_per_second != defaults.writes_per_second {
        lines.push(("writesPerSecond", world.writes_per_second.to_string()));
    }
    let mut millis = |key: &'static str, value: Millis, default: Millis| {
        if value != default {
            lines.push((key, value.to_string()));
        }
    };
    millis(
        "replicationLagMs",
        world.replication_lag_ms,
        defaults.replication_lag_ms,
    );
    millis(
        "apiLatencyMs",
        world.api_latency_ms,
        defaults.api_latency_ms,
    );
    millis(
        "agentLatencyMs",
        world.agent_latency_ms,
        defaults.agent_latency_ms,
    );
    lines
}

fn expect_lines(expect: &Expect) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(state) = &expect.final_state {
        lines.push(("finalState", state.0.clone()));
    }
    if let Some(ms) = expect.recovered_within_ms {
        lines.push(("recoveredWithin", format_duration(ms)));
    }
    let list = |names: &[super::ClusterStateName]| {
        let names: Vec<String> = names.iter().map(|name| quote(&name.0)).collect();
        format!("[{}]", names.join(", "))
    };
    if !expect.visits.is_empty() {
        lines.push(("visits", list(&expect.visits)));
    }
    if !expect.never.is_empty() {
        lines.push(("never", list(&expect.never)));
    }
    if expect.max_lost_writes != 0 {
        lines.push(("maxLostWrites", expect.max_lost_writes.to_string()));
    }
    lines
}

fn write_entry(out: &mut String, entry: &TimelineEntry) {
    let _ = writeln!(out, "  - at: {}", format_duration(entry.at_ms));
    let (kind, name, parameters) = match &entry.what {
        What::Fault(fault, target) => {
            let mut parameters = Vec::new();
            if let Some(target) = target {
                parameters.push(("target", target.to_string()));
            }
            parameters.extend(fault_parameters(fault));
            ("fault", fault.name(), parameters)
        }
        What::Action(action) => ("action", action.name(), action_parameters(action)),
    };
    line(out, 4, kind, name);
    for (key, value) in parameters {
        line(out, 4, key, &value);
    }
}

fn fault_parameters(fault: &Fault) -> Vec<(&'static str, String)> {
    let duration = |ms: &Millis| format_duration(*ms);
    match fault {
        Fault::CrashProcess { restart_after_ms } => vec![(
            "restartAfter",
            restart_after_ms
                .as_ref()
                .map_or_else(|| "never".to_owned(), duration),
        )],
        Fault::HangProcess { for_ms }
        | Fault::Partition { for_ms }
        | Fault::Isolate { for_ms }
        | Fault::ReplicationStall { for_ms }
        | Fault::ReplicationBreak { for_ms }
        | Fault::DiskFull { for_ms } => vec![("for", duration(for_ms))],
        Fault::DeletePod => Vec::new(),
        Fault::NodeLoss { for_ms } => for_ms.iter().map(|ms| ("for", duration(ms))).collect(),
        Fault::SlowStart { start_ms } => vec![("seconds", format_seconds(*start_ms))],
        Fault::AgentFlap { period_ms, for_ms } => {
            vec![("period", duration(period_ms)), ("for", duration(for_ms))]
        }
        Fault::OperatorCrash {
            restart_after_ms,
            lose_log,
        } => vec![
            ("restartAfter", duration(restart_after_ms)),
            ("loseLog", lose_log.to_string()),
        ],
        // Rust prints the shortest decimal that reads back as the same f64, never an exponent.
        Fault::ApiErrors { rate, for_ms } => {
            vec![("rate", rate.to_string()), ("for", duration(for_ms))]
        }
    }
}

fn action_parameters(action: &Action) -> Vec<(&'static str, String)> {
    match action {
        Action::Switchover { to: Some(ordinal) } => vec![("to", format!("member-{ordinal}"))],
        Action::ConfigChange { hash: Some(hash) } => vec![("hash", hash.to_string())],
        _ => Vec::new(),
    }
}

/// A string as a YAML scalar: plain when that reads back as the same string, else double-quoted
/// with every character that could be misread escaped.
pub fn quote(text: &str) -> String {
    if is_plain_safe(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            // Printable beyond ASCII, except what YAML treats as line breaks or a byte-order mark.
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fefe}' | '\u{ff00}'..='\u{fffd}'
                if !matches!(c, '\u{2028}' | '\u{2029}') =>
            {
                out.push(c)
            }
            '\u{10000}'.. => out.push(c),
            _ => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Plain is safe for a letter followed by letters, digits, spaces and a few marks that mean
/// nothing to YAML there, without a trailing space, when the core schema reads it as a string.
fn is_plain_safe(text: &str) -> bool {
    let mut chars = text.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    starts_with_letter
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    ' ' | '-' | '_' | '.' | ',' | ';' | '(' | ')' | '/' | '\''
                )
        })
        && !text.ends_with(' ')
        && plain_kind(text) == PlainKind::String
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(500), "500ms");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_duration(120_000), "2m");
        assert_eq!(format_duration(7_200_000), "2h");
        assert_eq!(format_seconds(2_500), "2.5");
        assert_eq!(format_seconds(1), "0.001");
        assert_eq!(format_seconds(20_000), "20");
    }

    #[test]
    fn strings_are_plain_only_when_safe() {
        assert_eq!(quote("active-process-crash"), "active-process-crash");
        assert_eq!(
            quote("The active's process dies; the standby takes over."),
            "The active's process dies; the standby takes over."
        );
        assert_eq!(quote("true"), "\"true\"");
        assert_eq!(quote("123"), "\"123\"");
        assert_eq!(quote("a: b"), "\"a: b\"");
        assert_eq!(quote("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
        assert_eq!(quote("\u{0}\u{85}\u{feff}"), "\"\\u0000\\u0085\\ufeff\"");
        assert_eq!(quote(""), "\"\"");
    }
}
