//! A scenario file as serde reads and writes it. Every value keeps the line it was written on
//! ([`Spanned`]), for the checks serde cannot make (a target against the members, a time against
//! the run). Every field is optional here, so that a missing one is reported with the line of
//! the mapping that lacks it and why it is needed.
//!
//! Unknown keys are refused (`deny_unknown_fields`); the value types below refuse malformed
//! values with a message that says how to write them.

use super::limits::MAX_DURATION_MS;
use super::{FaultKind, Millis, Target, UserActionKind};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_saphyr::{FlowSeq, Location, Spanned};
use std::collections::BTreeMap;
use std::fmt;
use tandem_engine::Topology;

/// The document.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ScenarioFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<Spanned<TopologyName>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<Spanned<Duration>>,
    /// The CRD's field names, from the engine's one table of them; values as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Spanned<BTreeMap<String, Spanned<serde_json::Value>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<Spanned<WorldFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Spanned<Vec<Spanned<EntryFile>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Spanned<ExpectFile>>,
}

/// `world:`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct WorldFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Spanned<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_start_seconds: Option<Spanned<Seconds>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild_seconds: Option<Spanned<Seconds>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_gigabytes: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_megabytes_per_second: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_per_second: Option<Spanned<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_lag_ms: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_latency_ms: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_latency_ms: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents_report_history: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents_rewind: Option<Spanned<bool>>,
}

/// One timeline entry: when, a fault or an action, and every parameter any of them takes
/// (which ones a given fault or action takes is checked when the entry is read).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EntryFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Spanned<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Spanned<FaultKind>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Spanned<UserActionKind>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Spanned<Target>>,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Spanned<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_after: Option<Spanned<RestartAfter>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Spanned<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Spanned<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Spanned<Seconds>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lose_log: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Spanned<Member>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Spanned<u64>>,
}

/// `expect:`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ExpectFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_state: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_within: Option<Spanned<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visits: Option<Spanned<FlowSeq<Vec<Spanned<String>>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never: Option<Spanned<FlowSeq<Vec<Spanned<String>>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lost_writes: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_full_copies: Option<Spanned<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_write_outage: Option<Spanned<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_degraded_time: Option<Spanned<Duration>>,
}

/// A value to write, which has no line.
pub(super) fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// `master-slave` or `standalone`, as [`Topology::name`] writes them.
#[derive(Clone, Copy, Debug)]
pub(super) struct TopologyName(pub Topology);

const TOPOLOGIES: [Topology; 2] = [Topology::MasterSlave, Topology::Standalone];

impl<'de> Deserialize<'de> for TopologyName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TopologyName, D::Error> {
        let text = String::deserialize(deserializer)?;
        TOPOLOGIES
            .into_iter()
            .find(|topology| topology.name() == text)
            .map(TopologyName)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown topology {text:?} (expected one of master-slave, standalone)"
                ))
            })
    }
}

impl Serialize for TopologyName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

/// A span of simulated time, written as Go and humantime write durations: `500ms`, `30s`,
/// `1m30s`, `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Duration(pub Millis);

const DURATION_FORMS: &str = "write a number and a unit: 500ms, 30s, 1m30s, 2h";

/// Parses a duration as scenario files and the command line write them, at most
/// [`MAX_DURATION_MS`].
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let duration = humantime::parse_duration(text).map_err(|error| match error {
        // Beyond what a `std::time::Duration` holds: longer than any run, too.
        humantime::DurationError::NumberOverflow => longer_than_a_run(text),
        error => format!("malformed duration {text:?}: {error} ({DURATION_FORMS})"),
    })?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "{text} is finer than the millisecond the simulator counts in"
        ));
    }
    Millis::try_from(duration.as_millis())
        .ok()
        .filter(|ms| *ms <= MAX_DURATION_MS)
        .ok_or_else(|| longer_than_a_run(text))
}

/// Why a time of `written` is refused: it is longer than [`MAX_DURATION_MS`].
pub(super) fn longer_than_a_run(written: &str) -> String {
    format!(
        "{written} is longer than {}, the longest a run may last",
        format_duration(MAX_DURATION_MS)
    )
}

/// A duration the way scenario files write it, hours to milliseconds, largest first: `0s`,
/// `500ms`, `1m30s`, `2h`.
pub fn format_duration(ms: Millis) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a duration ({DURATION_FORMS})")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                parse_duration(text).map(Duration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "malformed duration {number:?}: it has no unit ({DURATION_FORMS})"
                )))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "malformed duration {number:?} ({DURATION_FORMS})"
                )))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "malformed duration {number:?}: it has no unit ({DURATION_FORMS})"
                )))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

/// `restartAfter`: a duration, or `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RestartAfter(pub Option<Millis>);

impl<'de> Deserialize<'de> for RestartAfter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RestartAfter, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "never" {
            return Ok(RestartAfter(None));
        }
        parse_duration(&text)
            .map(|ms| RestartAfter(Some(ms)))
            .map_err(|message| de::Error::custom(format!("{message}, or never")))
    }
}

impl Serialize for RestartAfter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(ms) => serializer.serialize_str(&format_duration(ms)),
            None => serializer.serialize_str("never"),
        }
    }
}

/// Seconds, whole or with up to three decimals (`5`, `2.5`), kept as milliseconds, at most
/// [`MAX_DURATION_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seconds(pub Millis);

// Below 2^40 ms (about 34 years), a number of seconds with three decimals goes through a binary
// floating-point number and back to the same millisecond.
const _: () = assert!(MAX_DURATION_MS <= 1 << 40);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Seconds, D::Error> {
        struct SecondsVisitor;
        fn expected() -> String {
            format!(
                "a number of seconds from 0 to {}, with at most three decimals",
                MAX_DURATION_MS / 1_000
            )
        }
        fn too_long<E: de::Error>(seconds: impl fmt::Display) -> E {
            E::custom(longer_than_a_run(&format!("{seconds} seconds")))
        }
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&expected())
            }
            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Seconds, E> {
                seconds
                    .checked_mul(1_000)
                    .filter(|ms| *ms <= MAX_DURATION_MS)
                    .map(Seconds)
                    .ok_or_else(|| too_long(seconds))
            }
            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Seconds, E> {
                u64::try_from(seconds)
                    .map_err(|_| E::custom(format!("{seconds} is not {}", expected())))
                    .and_then(|seconds| self.visit_u64(seconds))
            }
            fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Seconds, E> {
                let ms = (seconds * 1_000.0).round();
                if ms > MAX_DURATION_MS as f64 {
                    return Err(too_long(seconds));
                }
                // Below 2^40 ms, what binary floating point adds to a value written with three
                // decimals is far less than this.
                let exact = ((seconds * 1_000.0) - ms).abs() < 1e-3;
                if !(exact && ms >= 0.0) {
                    return Err(E::custom(format!("{seconds} is not {}", expected())));
                }
                // In range and whole: checked just above.
                Ok(Seconds(ms as u64))
            }
        }
        deserializer.deserialize_any(SecondsVisitor)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(1_000) {
            serializer.serialize_u64(self.0 / 1_000)
        } else {
            // At most three decimals: a whole number of milliseconds.
            serializer.serialize_f64(self.0 as f64 / 1_000.0)
        }
    }
}

/// A member ordinal, written `member-N` (or `N`, as the CRD writes `switchover.to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Member(pub u8);

/// `member-N` to `N`; `None` for anything else (a sign, a space, too large).
pub(super) fn member_ordinal(text: &str) -> Option<u8> {
    decimal(text.strip_prefix("member-")?).and_then(|n| u8::try_from(n).ok())
}

/// Plain decimal digits only: the written forms of ordinals have no signs or spaces.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Member, D::Error> {
        struct MemberVisitor;
        impl Visitor<'_> for MemberVisitor {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member, member-N")
            }
            fn visit_u64<E: de::Error>(self, ordinal: u64) -> Result<Member, E> {
                u8::try_from(ordinal)
                    .map(Member)
                    .map_err(|_| E::custom(format!("there is no member-{ordinal}")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Member, E> {
                member_ordinal(text)
                    .map(Member)
                    .ok_or_else(|| E::custom(format!("{text:?} is not a member (write member-N)")))
            }
        }
        deserializer.deserialize_any(MemberVisitor)
    }
}

impl Serialize for Member {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("member-{}", self.0))
    }
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

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        let target = match text {
            "active" => Some(Target::Active),
            "standby" => Some(Target::Standby),
            "node-of-active" => Some(Target::NodeOfActive),
            "node-of-standby" => Some(Target::NodeOfStandby),
            _ => match (text.strip_prefix("member-"), text.strip_prefix("node-")) {
                (Some(ordinal), _) => decimal(ordinal)
                    .and_then(|n| u8::try_from(n).ok())
                    .map(Target::Member),
                (_, Some(index)) => decimal(index)
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Target::Node),
                _ => None,
            },
        };
        target.ok_or_else(|| {
            format!(
                "unknown target {text:?} (expected one of active, standby, member-N, \
                 node-of-active, node-of-standby, node-N)"
            )
        })
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Target, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them_and_write_back_the_same() {
        for (text, ms) in [
            ("0s", 0),
            ("500ms", 500),
            ("30s", 30_000),
            ("90s", 90_000),
            ("1m30s", 90_000),
            ("3m30s", 210_000),
            ("1h30m", 5_400_000),
            ("1500ms", 1_500),
            ("2h", 7_200_000),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text}");
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms), "{text}");
        }
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(3_600_500), "1h500ms");
        assert!(
            parse_duration("90")
                .unwrap_err()
                .contains("malformed duration")
        );
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.0001s").unwrap_err().contains("finer"));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION_MS));
        assert_eq!(parse_duration("86400000ms"), Ok(MAX_DURATION_MS));
        for text in [
            "24h1ms",
            "25h",
            "5124095576030h",
            "18446744073709551s615ms",
            "18446744073709551615ms",
            "18446744073709551615h",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(format!(
                    "{text} is longer than 24h, the longest a run may last"
                )),
            );
        }
    }

    #[test]
    fn targets_are_written_one_way() {
        for text in [
            "active",
            "standby",
            "member-1",
            "node-of-active",
            "node-of-standby",
            "node-12",
        ] {
            let target: Target = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
        for text in ["member-+1", "node- 1", "member-256", "leader", "node-"] {
            assert!(text.parse::<Target>().is_err(), "{text}");
        }
    }
}
