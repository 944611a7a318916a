//! Reading `timeline:`: each entry is a fault with its target and parameters, or a user action.

use super::error::ScenarioError;
use super::field::{Field, Map};
use super::{Action, Fault, Millis, Target, TimelineEntry, What, WorldConfig};
use tandem_engine::Topology;

/// Every key an entry may have; which ones a given fault or action takes is in [`takes`].
const ENTRY_KEYS: &[&str] = &[
    "at",
    "fault",
    "action",
    "target",
    "for",
    "restartAfter",
    "period",
    "rate",
    "seconds",
    "loseLog",
    "to",
    "hash",
];

/// The parameter keys (everything but `at`, `fault` and `action`).
const PARAMETER_KEYS: &[&str] = &[
    "target",
    "for",
    "restartAfter",
    "period",
    "rate",
    "seconds",
    "loseLog",
    "to",
    "hash",
];

/// The faults, in the order `docs/simulator.md` lists them.
pub const FAULT_NAMES: &[&str] = &[
    "crash-process",
    "hang-process",
    "delete-pod",
    "partition",
    "isolate",
    "node-loss",
    "replication-stall",
    "replication-break",
    "disk-full",
    "slow-start",
    "agent-flap",
    "operator-crash",
    "api-errors",
];

/// The user actions.
pub const ACTION_NAMES: &[&str] = &[
    "switchover",
    "config-change",
    "stop",
    "start",
    "reexamine",
    "pause-failover",
    "resume-failover",
];

/// What kind of target a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// None: the fault is on the operator or the API.
    Nothing,
    /// A member: `active`, `standby`, `member-N`.
    Member,
    /// A node: `node-of-active`, `node-of-standby`, `node-N`.
    Node,
}

/// What a fault or action takes: its kind of target, its required and its optional parameters.
fn takes(name: &str) -> (Aim, &'static [&'static str], &'static [&'static str]) {
    match name {
        "crash-process" => (Aim::Member, &[], &["restartAfter"]),
        "hang-process" | "partition" | "isolate" | "replication-stall" | "replication-break"
        | "disk-full" => (Aim::Member, &["for"], &[]),
        "delete-pod" => (Aim::Member, &[], &[]),
        "node-loss" => (Aim::Node, &[], &["for"]),
        "slow-start" => (Aim::Member, &["seconds"], &[]),
        "agent-flap" => (Aim::Member, &["period", "for"], &[]),
        "operator-crash" => (Aim::Nothing, &[], &["restartAfter", "loseLog"]),
        "api-errors" => (Aim::Nothing, &["rate", "for"], &[]),
        "switchover" => (Aim::Nothing, &[], &["to"]),
        "config-change" => (Aim::Nothing, &[], &["hash"]),
        _ => (Aim::Nothing, &[], &[]),
    }
}

/// What an entry is checked against.
struct Limits<'w> {
    topology: Topology,
    world: &'w WorldConfig,
    duration_ms: Millis,
}

/// `timeline:` (absent or empty: nothing happens).
pub fn parse_timeline(
    section: Option<Field<'_>>,
    topology: Topology,
    world: &WorldConfig,
    duration_ms: Millis,
) -> Result<Vec<TimelineEntry>, ScenarioError> {
    let Some(section) = section else {
        return Ok(Vec::new());
    };
    if section.node.is_null() {
        return Ok(Vec::new());
    }
    let limits = Limits {
        topology,
        world,
        duration_ms,
    };
    let mut entries = Vec::new();
    for (index, node) in section.list()?.iter().enumerate() {
        let key = format!("timeline[{index}]");
        let item = Field {
            file: section.file,
            key: &key,
            key_line: node.line,
            node,
        };
        entries.push(entry(&item, &limits)?);
    }
    Ok(entries)
}

fn entry(item: &Field<'_>, limits: &Limits<'_>) -> Result<TimelineEntry, ScenarioError> {
    let map = Map::new(*item, ENTRY_KEYS)?;
    let at = map.require("at", "every timeline entry says when it happens")?;
    let at_ms = at.duration()?;
    if at_ms > limits.duration_ms {
        return Err(at.out_of_range(format!(
            "{} is after the end of the run ({})",
            super::format_duration(at_ms),
            super::format_duration(limits.duration_ms)
        )));
    }
    let what = match (map.get("fault"), map.get("action")) {
        (Some(fault), None) => fault_entry(&map, &fault, limits)?,
        (None, Some(action)) => What::Action(action_entry(&map, &action, limits)?),
        (Some(_), Some(action)) => {
            return Err(ScenarioError::NotAccepted {
                file: action.file.to_owned(),
                line: action.key_line,
                key: action.key.to_owned(),
                message: "an entry is a fault or an action, not both".to_owned(),
            });
        }
        (None, None) => {
            return Err(ScenarioError::MissingKey {
                file: map.file.to_owned(),
                line: map.line,
                key: format!("{}.fault", map.key),
                why: "an entry has a fault: or an action:".to_owned(),
            });
        }
    };
    Ok(TimelineEntry {
        at_ms,
        what,
        line: map.line,
    })
}

/// Refuses parameters `name` does not take and requires those it needs.
fn check_parameters(map: &Map<'_>, name: &str, needs_target: bool) -> Result<(), ScenarioError> {
    let (aim, required, optional) = takes(name);
    let mut accepted: Vec<&str> = Vec::new();
    if aim != Aim::Nothing {
        accepted.push("target");
    }
    accepted.extend(required.iter().chain(optional));
    for key in map.keys().filter(|key| PARAMETER_KEYS.contains(key)) {
        if !accepted.contains(&key) {
            let Some(field) = map.get(key) else { continue };
            let takes = if accepted.is_empty() {
                "it takes no parameters".to_owned()
            } else {
                format!("it takes {}", accepted.join(", "))
            };
            return Err(ScenarioError::NotAccepted {
                file: field.file.to_owned(),
                line: field.key_line,
                key: field.key.to_owned(),
                message: format!("{name} takes no {key} ({takes})"),
            });
        }
    }
    if needs_target && aim != Aim::Nothing {
        map.require("target", &format!("{name} needs a target"))?;
    }
    for key in required {
        map.require(key, &format!("{name} needs {key}"))?;
    }
    Ok(())
}

fn fault_entry(
    map: &Map<'_>,
    field: &Field<'_>,
    limits: &Limits<'_>,
) -> Result<What, ScenarioError> {
    let name = field.string()?;
    if !FAULT_NAMES.contains(&name) {
        return Err(ScenarioError::UnknownFault {
            file: field.file.to_owned(),
            line: field.node.line,
            key: field.key.to_owned(),
            name: name.to_owned(),
            expected: FAULT_NAMES.join(", "),
        });
    }
    check_parameters(map, name, true)?;
    let target = match map.get("target") {
        Some(target) => Some(aimed_target(&target, name, limits)?),
        None => None,
    };
    Ok(What::Fault(fault(map, name)?, target))
}

/// The target, checked to be of the kind the fault hits: a process, pod or link fault hits a
/// member, `node-loss` a node. The simulator does not guess which member a node means.
fn aimed_target(
    field: &Field<'_>,
    name: &str,
    limits: &Limits<'_>,
) -> Result<Target, ScenarioError> {
    let target = field.target(limits.topology.member_count(), limits.world.nodes)?;
    let is_node = matches!(
        target,
        Target::NodeOfActive | Target::NodeOfStandby | Target::Node(_)
    );
    let (aim, ..) = takes(name);
    let wanted = match (aim, is_node) {
        (Aim::Node, false) => "a node (node-of-active, node-of-standby, node-N)",
        (Aim::Member, true) => "a member (active, standby, member-N)",
        _ => return Ok(target),
    };
    Err(ScenarioError::NotAccepted {
        file: field.file.to_owned(),
        line: field.node.line,
        key: field.key.to_owned(),
        message: format!("{name} hits {wanted}"),
    })
}

/// Builds the fault once its parameters were checked.
fn fault(map: &Map<'_>, name: &str) -> Result<Fault, ScenarioError> {
    let for_ms = || required_duration(map, "for");
    Ok(match name {
        "crash-process" => Fault::CrashProcess {
            restart_after_ms: restart_after(map, 10_000)?,
        },
        "hang-process" => Fault::HangProcess { for_ms: for_ms()? },
        "delete-pod" => Fault::DeletePod,
        "partition" => Fault::Partition { for_ms: for_ms()? },
        "isolate" => Fault::Isolate { for_ms: for_ms()? },
        "node-loss" => Fault::NodeLoss {
            for_ms: map.get("for").map(|field| field.duration()).transpose()?,
        },
        "replication-stall" => Fault::ReplicationStall { for_ms: for_ms()? },
        "replication-break" => Fault::ReplicationBreak { for_ms: for_ms()? },
        "disk-full" => Fault::DiskFull { for_ms: for_ms()? },
        "slow-start" => Fault::SlowStart {
            start_ms: map
                .require("seconds", "slow-start needs seconds")?
                .seconds()?,
        },
        "agent-flap" => agent_flap(map)?,
        "operator-crash" => operator_crash(map)?,
        _ => api_errors(map)?,
    })
}

fn required_duration(map: &Map<'_>, key: &str) -> Result<Millis, ScenarioError> {
    map.require(key, "this fault lasts for a time")?.duration()
}

/// `restartAfter`: a duration, or `never` (`None`).
fn restart_after(map: &Map<'_>, default_ms: Millis) -> Result<Option<Millis>, ScenarioError> {
    match map.get("restartAfter") {
        None => Ok(Some(default_ms)),
        Some(field) if field.node.scalar() == Some(("never", true)) => Ok(None),
        Some(field) => field.duration().map(Some),
    }
}

fn agent_flap(map: &Map<'_>) -> Result<Fault, ScenarioError> {
    let period = map.require("period", "agent-flap needs period")?;
    let period_ms = period.duration()?;
    if period_ms == 0 {
        return Err(period.out_of_range("the period must be longer than 0ms"));
    }
    Ok(Fault::AgentFlap {
        period_ms,
        for_ms: required_duration(map, "for")?,
    })
}

fn operator_crash(map: &Map<'_>) -> Result<Fault, ScenarioError> {
    let restart_after_ms = match restart_after(map, 5_000)? {
        Some(ms) => ms,
        None => {
            let field = map.require("restartAfter", "")?;
            return Err(field.out_of_range("the operator always restarts: give a duration"));
        }
    };
    let lose_log = match map.get("loseLog") {
        Some(field) => field.bool()?,
        None => false,
    };
    Ok(Fault::OperatorCrash {
        restart_after_ms,
        lose_log,
    })
}

fn api_errors(map: &Map<'_>) -> Result<Fault, ScenarioError> {
    let field = map.require("rate", "api-errors needs rate")?;
    let rate = field.number()?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(field.out_of_range(format!(
            "the rate is a fraction of calls, from 0 to 1, not {}",
            field.node.scalar().map_or("this", |(text, _)| text)
        )));
    }
    Ok(Fault::ApiErrors {
        rate,
        for_ms: required_duration(map, "for")?,
    })
}

fn action_entry(
    map: &Map<'_>,
    field: &Field<'_>,
    limits: &Limits<'_>,
) -> Result<Action, ScenarioError> {
    let name = field.string()?;
    if !ACTION_NAMES.contains(&name) {
        return Err(ScenarioError::UnknownAction {
            file: field.file.to_owned(),
            line: field.node.line,
            key: field.key.to_owned(),
            name: name.to_owned(),
            expected: ACTION_NAMES.join(", "),
        });
    }
    check_parameters(map, name, false)?;
    Ok(match name {
        "switchover" => Action::Switchover {
            to: match map.get("to") {
                Some(to) => Some(to.member(limits.topology.member_count())?),
                None => None,
            },
        },
        "config-change" => Action::ConfigChange {
            hash: map
                .get("hash")
                .map(|hash| hash.unsigned(u64::MAX))
                .transpose()?,
        },
        "stop" => Action::Stop,
        "start" => Action::Start,
        "reexamine" => Action::Reexamine,
        "pause-failover" => Action::PauseFailover,
        _ => Action::ResumeFailover,
    })
}
