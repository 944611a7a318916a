//! Engine throughput on one core: steady-state agent reports, a failover storm, and the fold of
//! recorded events. Every step goes through the real path: `Engine::step`, then `Step::commit`
//! with the record encoded into an in-memory log.
//!
//! `cargo bench -p tandem-engine --features testing --bench engine`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tandem_engine::testing::{bootstrap_inputs, steady_report};
use tandem_engine::{
    Engine, EngineState, Event, Input, MemberId, PodObservation, PodUid, Poll, Process, Record,
    Role, Spec, Timestamp, Topology,
};

/// A master-slave spec polled every second: most polls change nothing worth recording.
fn spec() -> Spec {
    let mut spec = Spec::defaults(Topology::MasterSlave);
    spec.polling_interval_s = 1;
    spec
}

fn drive(engine: &mut Engine, log: &mut Vec<u8>, at: Timestamp, input: Input) {
    let step = engine.step(at, input).expect("inputs arrive in time order");
    let effects = step
        .commit(|record| {
            log.clear();
            log.extend_from_slice(&record.encode());
            Ok::<(), ()>(())
        })
        .expect("an in-memory log does not fail");
    black_box(effects);
}

fn normal_engine(spec: &Spec) -> Engine {
    let mut engine = Engine::new();
    let mut log = Vec::new();
    for (at, input) in bootstrap_inputs(spec) {
        drive(&mut engine, &mut log, at, input);
    }
    engine
}

/// Steady state: both members report every second, with writes moving the LSNs.
fn steady_inputs(count: u64, active: u8) -> Vec<(Timestamp, Input)> {
    (0..count)
        .map(|index| {
            let member = MemberId((index % 2) as u8);
            let role = if member.0 == active {
                Role::Active
            } else {
                Role::Standby
            };
            let at = Timestamp(10_000 + index * 500);
            let report = steady_report(role, 1_000 + index * 100, Topology::MasterSlave);
            (
                at,
                Input::Agent {
                    member,
                    poll: Poll::Report(report),
                },
            )
        })
        .collect()
}

fn steady_state(c: &mut Criterion) {
    const INPUTS: u64 = 100_000;
    let spec = spec();
    let inputs = steady_inputs(INPUTS, 0);
    let mut group = c.benchmark_group("steady");
    group.throughput(Throughput::Elements(INPUTS));
    group.bench_function("agent-reports", |b| {
        b.iter_batched(
            || normal_engine(&spec),
            |mut engine| {
                let mut log = Vec::with_capacity(512);
                for (at, input) in &inputs {
                    drive(&mut engine, &mut log, *at, input.clone());
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// One failover cycle: the active's process dies, the standby is promoted, the old active's pod
/// is replaced and rebuilt, back to Normal. Returns the inputs, starting at `start` ms.
fn failover_cycle(active: u8, start: u64, cycle: u64) -> Vec<(Timestamp, Input)> {
    let old = MemberId(active);
    let new = old.peer();
    let lsn = 1_000 + cycle * 10_000;
    let at = |offset: u64| Timestamp(start + offset);
    let report = |member: MemberId, report| Input::Agent {
        member,
        poll: Poll::Report(report),
    };
    let steady = |role| steady_report(role, lsn, Topology::MasterSlave);
    let mut down = steady(Role::Active);
    down.process = Process::Down;
    let mut fresh = steady(Role::None);
    fresh.replication_connected = false;
    fresh.in_sync = false;
    let mut promoted = steady(Role::Active);
    promoted.replication_connected = false;
    let pod = PodObservation {
        uid: PodUid(format!("pod-{cycle}")),
        node: Some(tandem_engine::NodeName(format!("node-{active}"))),
        running: true,
        deleting: false,
    };
    vec![
        (at(0), report(new, steady(Role::Standby))),
        (at(0), report(old, steady(Role::Active))),
        (at(1_000), report(old, down)),
        (at(1_100), report(new, promoted)),
        (
            at(1_200),
            Input::Pod {
                member: old,
                pod: None,
            },
        ),
        (
            at(1_300),
            Input::Pod {
                member: old,
                pod: Some(pod),
            },
        ),
        (at(6_000), report(old, fresh)),
        (at(21_000), report(old, steady(Role::Standby))),
        (at(21_100), report(new, steady(Role::Active))),
    ]
}

fn failover_storm(c: &mut Criterion) {
    const CYCLES: u64 = 1_000;
    let spec = spec();
    let mut inputs = Vec::new();
    for cycle in 0..CYCLES {
        inputs.extend(failover_cycle(
            (cycle % 2) as u8,
            10_000 + cycle * 30_000,
            cycle,
        ));
    }
    // Check once that the script really fails over every cycle.
    let mut engine = normal_engine(&spec);
    let mut log = Vec::new();
    for (at, input) in &inputs {
        drive(&mut engine, &mut log, *at, input.clone());
    }
    assert!(
        engine.state().transitions() >= 4 * CYCLES,
        "every cycle fails over and recovers"
    );
    assert_eq!(
        engine.state().cluster(),
        tandem_engine::ClusterState::Normal
    );
    let mut group = c.benchmark_group("failover-storm");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function(format!("{CYCLES}-cycles-inputs"), |b| {
        b.iter_batched(
            || normal_engine(&spec),
            |mut engine| {
                let mut log = Vec::with_capacity(4096);
                for (at, input) in &inputs {
                    drive(&mut engine, &mut log, *at, input.clone());
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Records a long, realistic history: bootstrap, steady polls and failover cycles.
fn history() -> Vec<Record> {
    let spec = spec();
    let mut engine = Engine::new();
    let mut records = Vec::new();
    let mut inputs = bootstrap_inputs(&spec);
    let mut start = 10_000;
    for cycle in 0..200u64 {
        let active = (cycle % 2) as u8;
        for (at, input) in steady_inputs(2_000, active) {
            inputs.push((Timestamp(start + at.0), input));
        }
        start += 1_010_000;
        inputs.extend(failover_cycle(active, start, cycle));
        start += 30_000;
    }
    for (at, input) in inputs {
        let step = engine.step(at, input).expect("time order");
        step.commit(|record| {
            records.push(record.clone());
            Ok::<(), ()>(())
        })
        .expect("in memory");
    }
    records
}

fn fold(c: &mut Criterion) {
    let records = history();
    let events: Vec<Event> = records
        .iter()
        .flat_map(|record| record.events.clone())
        .collect();
    let encoded: Vec<Vec<u8>> = records.iter().map(Record::encode).collect();
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(format!("{}-events", events.len()), |b| {
        b.iter(|| {
            let mut state = EngineState::new();
            for event in &events {
                state.apply(event);
            }
            black_box(state)
        })
    });
    group.bench_function(format!("{}-events-decode-and-fold", events.len()), |b| {
        b.iter(|| {
            let mut state = EngineState::new();
            for bytes in &encoded {
                let record = Record::decode(bytes).expect("valid");
                state.apply_record(&record).expect("in sequence");
            }
            black_box(state)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = steady_state, failover_storm, fold
}
criterion_main!(benches);
