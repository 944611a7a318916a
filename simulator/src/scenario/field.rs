//! Typed access to the YAML tree: a [`Field`] is a node with the path of its key, so that every
//! conversion that fails can say where, and a [`Map`] is a mapping whose keys were checked.

use super::error::ScenarioError;
use super::yaml::{Node, PlainKind, Value, parse_integer, plain_kind};
use super::{Millis, Target};
use std::path::Path;

/// A node, the path of the key that holds it, and the line of that key.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The file, for messages.
    pub file: &'a Path,
    /// The path of the key (`timeline[2].fault`).
    pub key: &'a str,
    /// The 1-based line of the key (of the node itself for list items and the document).
    pub key_line: u32,
    /// The value.
    pub node: &'a Node,
}

/// A checked mapping: its keys are plain words, each written once, each one the place allows.
#[derive(Debug)]
pub struct Map<'a> {
    /// The file, for messages.
    pub file: &'a Path,
    /// The path of the mapping (empty for the document).
    pub key: String,
    /// The 1-based line where the mapping starts.
    pub line: u32,
    /// The entries, in the order written: name, its path, the key's line, the value.
    entries: Vec<(&'a str, String, u32, &'a Node)>,
}

/// Joins a key to the path of its mapping.
pub fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'a> Map<'a> {
    /// Checks `field` is a mapping with only `allowed` keys. Null (an empty section such as
    /// `world:` with nothing under it) is an empty mapping.
    pub fn new(field: Field<'a>, allowed: &[&str]) -> Result<Map<'a>, ScenarioError> {
        Map::with_refused(field, allowed, &[])
    }

    /// Like [`Map::new`], and lets `refused` keys through too, for the caller to refuse with a
    /// message of its own; they are not offered as expected keys.
    pub fn with_refused(
        field: Field<'a>,
        allowed: &[&str],
        refused: &[&str],
    ) -> Result<Map<'a>, ScenarioError> {
        let pairs: &'a [(Node, Node)] = match &field.node.value {
            Value::Mapping(pairs) => pairs,
            _ if field.node.is_null() => &[],
            _ => return Err(field.wrong_type("a mapping")),
        };
        let mut map = Map {
            file: field.file,
            key: field.key.to_owned(),
            line: field.node.line,
            entries: Vec::with_capacity(pairs.len()),
        };
        for (key, value) in pairs {
            map.add(key, value, allowed, refused)?;
        }
        Ok(map)
    }

    fn add(
        &mut self,
        key: &'a Node,
        value: &'a Node,
        allowed: &[&str],
        refused: &[&str],
    ) -> Result<(), ScenarioError> {
        let Some((name, _)) = key.scalar() else {
            return Err(ScenarioError::WrongType {
                file: self.file.to_owned(),
                line: key.line,
                key: child_path(&self.key, "?"),
                expected: "a key name",
                found: key.describe(),
            });
        };
        let path = child_path(&self.key, name);
        if !allowed.contains(&name) && !refused.contains(&name) {
            return Err(ScenarioError::UnknownKey {
                file: self.file.to_owned(),
                line: key.line,
                key: path,
                expected: allowed.join(", "),
            });
        }
        if self.entries.iter().any(|(seen, ..)| *seen == name) {
            return Err(ScenarioError::DuplicateKey {
                file: self.file.to_owned(),
                line: key.line,
                key: path,
            });
        }
        self.entries.push((name, path, key.line, value));
        Ok(())
    }

    /// The value of `name`, if written.
    pub fn get(&self, name: &str) -> Option<Field<'_>> {
        self.entries
            .iter()
            .find(|(seen, ..)| *seen == name)
            .map(|(_, path, line, node)| Field {
                file: self.file,
                key: path,
                key_line: *line,
                node,
            })
    }

    /// The value of `name`, which must be written; `why` explains it in the message.
    pub fn require(&self, name: &str, why: &str) -> Result<Field<'_>, ScenarioError> {
        self.get(name).ok_or_else(|| ScenarioError::MissingKey {
            file: self.file.to_owned(),
            line: self.line,
            key: child_path(&self.key, name),
            why: why.to_owned(),
        })
    }

    /// The keys written, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, ..)| *name)
    }
}

impl<'a> Field<'a> {
    /// The error for a value of the wrong kind.
    pub fn wrong_type(&self, expected: &'static str) -> ScenarioError {
        ScenarioError::WrongType {
            file: self.file.to_owned(),
            line: self.node.line,
            key: self.key.to_owned(),
            expected,
            found: self.node.describe(),
        }
    }

    /// The error for a value outside its range.
    pub fn out_of_range(&self, message: impl Into<String>) -> ScenarioError {
        ScenarioError::OutOfRange {
            file: self.file.to_owned(),
            line: self.node.line,
            key: self.key.to_owned(),
            message: message.into(),
        }
    }

    /// A string: quoted, or plain when it does not read as a null, boolean or number.
    pub fn string(&self) -> Result<&'a str, ScenarioError> {
        match self.node.scalar() {
            Some((text, false)) => Ok(text),
            Some((text, true)) if plain_kind(text) == PlainKind::String => Ok(text),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// A word from `choices` (a topology, a replication mode).
    pub fn choice(&self, choices: &[&'static str]) -> Result<&'static str, ScenarioError> {
        let text = self.string()?;
        choices
            .iter()
            .find(|choice| **choice == text)
            .copied()
            .ok_or_else(|| {
                self.out_of_range(format!("{text:?} is not one of {}", choices.join(", ")))
            })
    }

    /// A plain integer within `0..=max`.
    pub fn unsigned(&self, max: u64) -> Result<u64, ScenarioError> {
        let text = match self.node.scalar() {
            Some((text, true)) if plain_kind(text) == PlainKind::Integer => text,
            _ => return Err(self.wrong_type("an integer")),
        };
        parse_integer(text)
            .and_then(|value| u64::try_from(value).ok())
            .filter(|value| *value <= max)
            .ok_or_else(|| self.out_of_range(format!("{text} is not between 0 and {max}")))
    }

    /// A plain integer that fits in a `u32`.
    pub fn u32(&self) -> Result<u32, ScenarioError> {
        let value = self.unsigned(u64::from(u32::MAX))?;
        u32::try_from(value).map_err(|_| self.out_of_range("too large"))
    }

    /// A plain boolean.
    pub fn bool(&self) -> Result<bool, ScenarioError> {
        match self.node.scalar() {
            Some((text, true)) if plain_kind(text) == PlainKind::Bool => {
                Ok(text.eq_ignore_ascii_case("true"))
            }
            _ => Err(self.wrong_type("true or false")),
        }
    }

    /// A plain number (integer or fraction).
    pub fn number(&self) -> Result<f64, ScenarioError> {
        match self.node.scalar() {
            Some((text, true))
                if matches!(plain_kind(text), PlainKind::Integer | PlainKind::Float) =>
            {
                parse_number(text).ok_or_else(|| self.wrong_type("a number"))
            }
            _ => Err(self.wrong_type("a number")),
        }
    }

    /// A duration: a whole number and a unit, `500ms`, `30s`, `2m`, `1h`.
    pub fn duration(&self) -> Result<Millis, ScenarioError> {
        let malformed = || ScenarioError::MalformedDuration {
            file: self.file.to_owned(),
            line: self.node.line,
            key: self.key.to_owned(),
            text: self
                .node
                .scalar()
                .map_or_else(|| self.node.describe(), |(text, _)| text.to_owned()),
        };
        let Some((text, _)) = self.node.scalar() else {
            return Err(malformed());
        };
        match parse_duration(text) {
            Some(Ok(ms)) => Ok(ms),
            Some(Err(())) => {
                Err(self.out_of_range(format!("{text} is longer than the simulator can count")))
            }
            None => Err(malformed()),
        }
    }

    /// Seconds, whole or with up to three decimals (`5`, `2.5`), as milliseconds.
    pub fn seconds(&self) -> Result<Millis, ScenarioError> {
        let text = match self.node.scalar() {
            Some((text, true))
                if matches!(plain_kind(text), PlainKind::Integer | PlainKind::Float) =>
            {
                text
            }
            _ => return Err(self.wrong_type("a number of seconds")),
        };
        parse_seconds(text).ok_or_else(|| {
            self.out_of_range(format!(
                "{text} is not a number of seconds from 0, with at most three decimals"
            ))
        })
    }

    /// A list; null is not one.
    pub fn list(&self) -> Result<&'a [Node], ScenarioError> {
        match &self.node.value {
            Value::Sequence(items) => Ok(items),
            _ => Err(self.wrong_type("a list")),
        }
    }

    /// A member ordinal written `member-N` (or `N`, as the CRD writes `switchover.to`), below
    /// `members`.
    pub fn member(&self, members: u8) -> Result<u8, ScenarioError> {
        let ordinal = match self.node.scalar() {
            Some((text, true)) if plain_kind(text) == PlainKind::Integer => self
                .unsigned(u64::from(u8::MAX))
                .map(|n| u8::try_from(n).unwrap_or(u8::MAX))?,
            _ => {
                let text = self.string()?;
                member_ordinal(text).ok_or_else(|| self.wrong_type("member-N"))?
            }
        };
        if ordinal >= members {
            return Err(self.out_of_range(no_such_member(ordinal, members)));
        }
        Ok(ordinal)
    }

    /// A target, checked against the number of members and nodes.
    pub fn target(&self, members: u8, nodes: u32) -> Result<Target, ScenarioError> {
        let text = self.string()?;
        let target = parse_target(text).ok_or_else(|| {
            self.out_of_range(format!(
                "unknown target {text:?} (expected one of active, standby, member-N, \
                 node-of-active, node-of-standby, node-N)"
            ))
        })?;
        match target {
            Target::Member(ordinal) if ordinal >= members => {
                Err(self.out_of_range(no_such_member(ordinal, members)))
            }
            Target::Standby | Target::NodeOfStandby if members < 2 => {
                Err(self.out_of_range("a standalone cluster has no standby"))
            }
            Target::Node(node) if node >= nodes => Err(self.out_of_range(format!(
                "there is no node-{node}: the world has {nodes} nodes (node-0 to node-{})",
                nodes.saturating_sub(1)
            ))),
            other => Ok(other),
        }
    }
}

fn no_such_member(ordinal: u8, members: u8) -> String {
    format!(
        "there is no member-{ordinal}: the cluster has {members} member{} (member-0{})",
        if members == 1 { "" } else { "s" },
        if members > 1 { " and member-1" } else { "" }
    )
}

/// `member-N` to `N`; `None` for anything else (a sign, a space, too large).
pub fn member_ordinal(text: &str) -> Option<u8> {
    decimal(text.strip_prefix("member-")?).and_then(|n| u8::try_from(n).ok())
}

/// A target as written.
pub fn parse_target(text: &str) -> Option<Target> {
    match text {
        "active" => Some(Target::Active),
        "standby" => Some(Target::Standby),
        "node-of-active" => Some(Target::NodeOfActive),
        "node-of-standby" => Some(Target::NodeOfStandby),
        _ => {
            if let Some(rest) = text.strip_prefix("member-") {
                decimal(rest)
                    .and_then(|n| u8::try_from(n).ok())
                    .map(Target::Member)
            } else {
                let rest = text.strip_prefix("node-")?;
                decimal(rest)
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Target::Node)
            }
        }
    }
}

/// Plain decimal digits only: the written forms of ordinals have no signs or spaces.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `Some(Ok(ms))` for a well-formed duration, `Some(Err(()))` when it overflows, `None` when
/// malformed.
pub fn parse_duration(text: &str) -> Option<Result<Millis, ()>> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    if digits.is_empty() {
        return None;
    }
    let value: Option<u64> = digits.parse().ok();
    Some(value.and_then(|v| v.checked_mul(scale)).ok_or(()))
}

/// `5` or `2.5` seconds as milliseconds, exactly (no floating point).
pub fn parse_seconds(text: &str) -> Option<Millis> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = decimal(whole)?;
    let padded = format!("{fraction:0<3}");
    let fraction: u64 = padded.parse().ok()?;
    whole.checked_mul(1_000)?.checked_add(fraction)
}

fn parse_number(text: &str) -> Option<f64> {
    if let Some(value) = parse_integer(text) {
        return Some(value as f64);
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        ".inf" | "+.inf" => Some(f64::INFINITY),
        "-.inf" => Some(f64::NEG_INFINITY),
        ".nan" => Some(f64::NAN),
        _ => lower.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_whole_number_and_one_unit() {
        assert_eq!(parse_duration("500ms"), Some(Ok(500)));
        assert_eq!(parse_duration("30s"), Some(Ok(30_000)));
        assert_eq!(parse_duration("2m"), Some(Ok(120_000)));
        assert_eq!(parse_duration("1h"), Some(Ok(3_600_000)));
        assert_eq!(parse_duration("0s"), Some(Ok(0)));
        for malformed in ["30", "s", "1.5s", "-1s", "1m30s", "2 m", "2M", "1d", ""] {
            assert_eq!(parse_duration(malformed), None, "{malformed}");
        }
        assert_eq!(parse_duration("99999999999999999999h"), Some(Err(())));
    }

    #[test]
    fn seconds_are_exact_to_the_millisecond() {
        assert_eq!(parse_seconds("5"), Some(5_000));
        assert_eq!(parse_seconds("2.5"), Some(2_500));
        assert_eq!(parse_seconds("0.001"), Some(1));
        assert_eq!(parse_seconds("0.0001"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("1e3"), None);
    }

    #[test]
    fn targets_are_written_one_way() {
        assert_eq!(parse_target("member-1"), Some(Target::Member(1)));
        assert_eq!(parse_target("node-12"), Some(Target::Node(12)));
        assert_eq!(parse_target("node-of-active"), Some(Target::NodeOfActive));
        for bad in [
            "member-",
            "member-+1",
            "member-256",
            "node--1",
            "Active",
            "node-x",
        ] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
    }
}
