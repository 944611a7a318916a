//! Writing a scenario back as YAML, in the format people write: failing explorations are saved
//! this way, shrunk, so that they replay with `tandem-sim run` and read like the catalog.

use super::file::{
    Duration, EntryFile, ExpectFile, Member, RestartAfter, ScenarioFile, Seconds, TopologyName,
    WorldFile, unspanned,
};
use super::{
    ClusterStateName, Expect, Fault, FaultKind, Scenario, UserAction, UserActionKind, What,
    WorldConfig,
};
use serde_saphyr::{FlowSeq, Spanned};
use std::collections::BTreeMap;
use tandem_engine::Spec;

/// Writes `scenario` as a scenario file that parses back to an equal scenario (timeline lines
/// aside, which are positions in the written text).
///
/// `cluster:`, `world:` and `expect:` list only what differs from the defaults, so a shrunk
/// scenario shows what matters. Spec fields the language drives by actions (`stopped`,
/// `reexamine`, `switchover`, the configuration hash) have no place in `cluster:` and are not
/// written.
pub fn to_yaml(scenario: &Scenario) -> String {
    let cluster = cluster(&scenario.cluster);
    let world = world(&scenario.world);
    let expect = expect(&scenario.expect);
    let document = ScenarioFile {
        name: Some(unspanned(scenario.name.clone())),
        description: (!scenario.description.is_empty())
            .then(|| unspanned(scenario.description.clone())),
        topology: Some(unspanned(TopologyName(scenario.topology))),
        seed: Some(unspanned(scenario.seed)),
        duration: Some(unspanned(Duration(scenario.duration_ms))),
        cluster: (!cluster.is_empty()).then(|| unspanned(cluster)),
        world: world.map(unspanned),
        timeline: (!scenario.timeline.is_empty()).then(|| {
            unspanned(
                scenario
                    .timeline
                    .iter()
                    .map(|entry| unspanned(timeline_entry(entry.at_ms, &entry.what)))
                    .collect(),
            )
        }),
        expect: expect.map(unspanned),
    };
    let options = serde_saphyr::ser_options! { compact_list_indent: false };
    // Plain data of known shape: serializing it cannot fail.
    serde_saphyr::to_string_with_options(&document, options).expect("a scenario serializes")
}

/// The fields of `cluster` that differ from the defaults, with their CRD names (the engine's one
/// table of them).
fn cluster(cluster: &Spec) -> BTreeMap<String, Spanned<serde_json::Value>> {
    // What a file that leaves a field out gets: the defaults, the lease following the timeout.
    let mut defaults = Spec::defaults(cluster.topology);
    defaults.agent_lease_s =
        tandem_engine::config::derived_agent_lease_s(cluster.unreachable_timeout_s);
    tandem_engine::config::SPEC_FIELDS
        .iter()
        .filter_map(|field| {
            let value = field.get(cluster)?;
            (Some(value) != field.get(&defaults)).then(|| {
                let json = match value {
                    tandem_engine::config::FieldValue::Number(number) => number.into(),
                    tandem_engine::config::FieldValue::Flag(flag) => flag.into(),
                    tandem_engine::config::FieldValue::Replication(mode) => mode.name().into(),
                };
                (field.name.to_owned(), unspanned(json))
            })
        })
        .collect()
}

fn world(world: &WorldConfig) -> Option<WorldFile> {
    let defaults = WorldConfig::default();
    fn differs<T: PartialEq, U>(value: T, default: T, written: U) -> Option<Spanned<U>> {
        (value != default).then(|| unspanned(written))
    }
    let file = WorldFile {
        nodes: differs(world.nodes, defaults.nodes, world.nodes),
        pod_start_seconds: differs(
            world.pod_start_ms,
            defaults.pod_start_ms,
            Seconds(world.pod_start_ms),
        ),
        rebuild_seconds: differs(
            world.rebuild_ms,
            defaults.rebuild_ms,
            Seconds(world.rebuild_ms),
        ),
        data_gigabytes: differs(
            world.data_gigabytes,
            defaults.data_gigabytes,
            world.data_gigabytes,
        ),
        copy_megabytes_per_second: differs(
            world.copy_megabytes_per_second,
            defaults.copy_megabytes_per_second,
            world.copy_megabytes_per_second,
        ),
        writes_per_second: differs(
            world.writes_per_second,
            defaults.writes_per_second,
            world.writes_per_second,
        ),
        replication_lag_ms: differs(
            world.replication_lag_ms,
            defaults.replication_lag_ms,
            world.replication_lag_ms,
        ),
        api_latency_ms: differs(
            world.api_latency_ms,
            defaults.api_latency_ms,
            world.api_latency_ms,
        ),
        agent_latency_ms: differs(
            world.agent_latency_ms,
            defaults.agent_latency_ms,
            world.agent_latency_ms,
        ),
        agents_report_history: differs(
            world.agents_report_history,
            defaults.agents_report_history,
            world.agents_report_history,
        ),
        agents_rewind: differs(
            world.agents_rewind,
            defaults.agents_rewind,
            world.agents_rewind,
        ),
    };
    (world != &defaults).then_some(file)
}

fn expect(expect: &Expect) -> Option<ExpectFile> {
    let names = |names: &[ClusterStateName]| {
        (!names.is_empty()).then(|| {
            unspanned(FlowSeq(
                names
                    .iter()
                    .map(|name| unspanned(name.to_string()))
                    .collect(),
            ))
        })
    };
    let file = ExpectFile {
        final_state: expect.final_state.map(|name| unspanned(name.to_string())),
        recovered_within: expect.recovered_within_ms.map(|ms| unspanned(Duration(ms))),
        visits: names(&expect.visits),
        never: names(&expect.never),
        max_lost_writes: (expect.max_lost_writes != 0).then(|| unspanned(expect.max_lost_writes)),
        max_full_copies: expect.max_full_copies.map(unspanned),
        max_write_outage: expect.max_write_outage_ms.map(|ms| unspanned(Duration(ms))),
        max_degraded_time: expect.max_degraded_ms.map(|ms| unspanned(Duration(ms))),
    };
    (expect != &Expect::default()).then_some(file)
}

fn timeline_entry(at_ms: u64, what: &What) -> EntryFile {
    let mut entry = EntryFile {
        at: Some(unspanned(Duration(at_ms))),
        ..EntryFile::default()
    };
    let duration = |ms: u64| Some(unspanned(Duration(ms)));
    match what {
        What::Fault(fault, target) => {
            entry.fault = Some(unspanned(FaultKind::from(fault)));
            entry.target = target.map(unspanned);
            match fault {
                Fault::CrashProcess { restart_after_ms } => {
                    entry.restart_after = Some(unspanned(RestartAfter(*restart_after_ms)));
                }
                Fault::HangProcess { for_ms }
                | Fault::Partition { for_ms }
                | Fault::Isolate { for_ms }
                | Fault::ReplicationStall { for_ms }
                | Fault::ReplicationBreak { for_ms }
                | Fault::DiskFull { for_ms } => entry.for_ = duration(*for_ms),
                Fault::DeletePod => {}
                Fault::NodeLoss { for_ms } => entry.for_ = for_ms.and_then(duration),
                Fault::SlowStart { start_ms } => {
                    entry.seconds = Some(unspanned(Seconds(*start_ms)))
                }
                Fault::AgentFlap { period_ms, for_ms } => {
                    entry.period = duration(*period_ms);
                    entry.for_ = duration(*for_ms);
                }
                Fault::OperatorCrash {
                    restart_after_ms,
                    lose_log,
                } => {
                    entry.restart_after = Some(unspanned(RestartAfter(Some(*restart_after_ms))));
                    entry.lose_log = Some(unspanned(*lose_log));
                }
                Fault::ApiErrors { rate, for_ms } => {
                    entry.rate = Some(unspanned(*rate));
                    entry.for_ = duration(*for_ms);
                }
            }
        }
        What::Action(action) => {
            entry.action = Some(unspanned(UserActionKind::from(action)));
            match action {
                UserAction::Switchover { to } => entry.to = to.map(|to| unspanned(Member(to))),
                UserAction::ConfigChange { hash } => entry.hash = hash.map(unspanned),
                UserAction::Stop
                | UserAction::Start
                | UserAction::Reexamine
                | UserAction::PauseFailover
                | UserAction::ResumeFailover => {}
            }
        }
    }
    entry
}
