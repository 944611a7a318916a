//! No accepted input can break the engine: every `Input` variant, with extreme values (members
//! beyond the topology, huge and empty names, odd and invalid specs, huge timeouts, effect ids
//! and times near `u64::MAX`), in any order. Every step either decides (its record is committed
//! and checked by the invariant checker) or is refused with an error; none panics.
//!
//! The suite runs in release and, through the test command, in a debug build with overflow
//! checks. Every run draws the same cases from a fixed seed (`PROPTEST_RNG_SEED=N` draws other
//! cases), and more from a fresh seed.

mod seeds;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use seeds::fixed_and_fresh;
use tandem_engine::testing::{Harness, arb_copy_progress, arb_not_serving, arb_timeline};
use tandem_engine::{
    AgentReport, ConfigHash, EffectError, EffectId, EngineError, Input, Lsn, MemberId, NodeName,
    NodeStatus, Outcome, PodObservation, PodUid, Poll, Process, PvName, PvcUid, Replication, Role,
    Spec, SwitchoverRequest, Timestamp, Topology, VolumeObservation,
};

const CASES: u32 = 3_000;
const CI_SEED: u64 = 0x0BAD_1A9D_2026;

fn config() -> [ProptestConfig; 2] {
    fixed_and_fresh(CASES, CI_SEED)
}

/// Names from empty to far beyond what Kubernetes allows, mostly a few real ones.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u8..4).prop_map(|n| format!("node-{n}")),
        1 => Just(String::new()),
        1 => "[a-z0-9-]{1,300}",
        1 => (250usize..260).prop_map(|len| "n".repeat(len)),
    ]
}

fn member() -> impl Strategy<Value = MemberId> {
    prop_oneof![4 => (0u8..2).prop_map(MemberId), 1 => any::<u8>().prop_map(MemberId)]
}

fn big_u32() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..700, 1 => any::<u32>(), 1 => Just(u32::MAX)]
}

fn big_u64() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..1_000_000, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn report() -> impl Strategy<Value = AgentReport> {
    (
        (
            prop_oneof![
                Just(Process::Starting),
                Just(Process::Running),
                Just(Process::Down),
                Just(Process::InitFailed),
            ],
            prop_oneof![Just(Role::Active), Just(Role::Standby), Just(Role::None)],
            big_u64(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            big_u64(),
            arb_copy_progress(),
            arb_not_serving(),
            arb_timeline(),
        ),
    )
        .prop_map(
            |(
                (process, role, lsn, connected, in_sync, complete),
                (hash, copy, not_serving, timeline),
            )| {
                AgentReport {
                    process,
                    role,
                    lsn: Lsn(lsn),
                    replication_connected: connected,
                    in_sync,
                    copy_complete: complete,
                    config_hash: ConfigHash(hash),
                    copy,
                    not_serving,
                    timeline,
                }
            },
        )
}

/// Specs of either topology, mostly valid, with extreme and invalid values too.
fn spec() -> impl Strategy<Value = Spec> {
    (
        (any::<bool>(), big_u32(), big_u32(), big_u32(), big_u32()),
        (
            any::<bool>(),
            big_u64(),
            big_u64(),
            big_u32(),
            big_u32(),
            big_u32(),
        ),
        (
            big_u32(),
            big_u32(),
            big_u32(),
            proptest::option::of(big_u32()),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            "[a-z]{0,3}",
            proptest::option::of("[a-z]{0,3}"),
        ),
        (proptest::option::of(any::<u8>()), big_u64(), any::<bool>()),
    )
        .prop_map(|(timing, sizes, budgets, flags, rest)| {
            let (standalone, polling, unreachable, lease, node_lost) = timing;
            let topology = if standalone {
                Topology::Standalone
            } else {
                Topology::MasterSlave
            };
            let mut spec = Spec::defaults(topology);
            let (async_mode, max_lag, threshold, lag_timeout, init, standby_start) = sizes;
            let (switchover, rebuilds, restarts, wait) = budgets;
            let (auto_failover, stopped, reexamine, token) = flags;
            let (to, hash, keep_defaults) = rest;
            if keep_defaults {
                return spec;
            }
            spec.polling_interval_s = polling;
            spec.unreachable_timeout_s = unreachable;
            spec.agent_lease_s = lease;
            spec.node_lost_timeout_s = node_lost;
            spec.replication = if async_mode {
                Replication::Async
            } else {
                Replication::Sync
            };
            spec.max_lag_on_failover_bytes = max_lag;
            spec.lag_threshold_bytes = threshold;
            spec.lag_timeout_s = lag_timeout;
            spec.init_timeout_s = init;
            spec.standby_start_timeout_s = standby_start;
            spec.switchover_timeout_s = switchover;
            spec.max_rebuild_attempts = rebuilds;
            spec.max_restart_attempts = restarts;
            spec.wait_for_active_timeout_s = wait;
            spec.auto_failover = auto_failover;
            spec.stopped = stopped;
            spec.reexamine = reexamine;
            spec.switchover = token.map(|token| SwitchoverRequest {
                token,
                to: to.map(MemberId),
            });
            spec.config_hash = ConfigHash(hash);
            spec
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Ok),
        Just(Outcome::Failed(EffectError::Conflict)),
        Just(Outcome::Failed(EffectError::NotFound)),
        Just(Outcome::Failed(EffectError::Timeout)),
        Just(Outcome::Failed(EffectError::ServerError)),
        Just(Outcome::Failed(EffectError::Rejected)),
        Just(Outcome::Failed(EffectError::Withdrawn)),
    ]
}

/// Every variant of `Input`.
fn input() -> impl Strategy<Value = Input> {
    let pod = (
        name(),
        proptest::option::of(name()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(uid, node, running, deleting)| PodObservation {
            uid: PodUid(uid),
            node: node.map(NodeName),
            running,
            deleting,
        });
    let volume = (
        proptest::option::of(name()),
        proptest::option::of((name(), name())),
        any::<bool>(),
    )
        .prop_map(|(pvc, pv, lost)| VolumeObservation {
            pvc: pvc.map(PvcUid),
            pv: pv.map(|(pv, node)| (PvName(pv), NodeName(node))),
            lost,
        });
    prop_oneof![
        4 => (member(), report()).prop_map(|(member, report)| Input::Agent {
            member,
            poll: Poll::Report(report),
        }),
        2 => member().prop_map(|member| Input::Agent {
            member,
            poll: Poll::Unreachable,
        }),
        2 => (member(), proptest::option::of(pod)).prop_map(|(member, pod)| Input::Pod { member, pod }),
        2 => (member(), volume).prop_map(|(member, volume)| Input::Volume { member, volume }),
        2 => (
            name(),
            prop_oneof![
                Just(NodeStatus::Ready),
                Just(NodeStatus::NotReady),
                Just(NodeStatus::Deleted),
            ],
        )
            .prop_map(|(node, status)| Input::Node {
                node: NodeName(node),
                status,
            }),
        2 => spec().prop_map(Input::Spec),
        2 => Just(Input::Timer),
        2 => (prop_oneof![0u64..40, Just(u64::MAX)], outcome())
            .prop_map(|(id, outcome)| Input::EffectFinished {
                id: EffectId(id),
                outcome,
            }),
        1 => any::<bool>().prop_map(|log_lost| Input::Recovered { log_lost }),
    ]
}

/// Times that mostly move forward by small steps, sometimes leap towards the end of time, and
/// sometimes go backwards.
fn step_ms() -> impl Strategy<Value = i128> {
    prop_oneof![
        8 => 0i128..30_000,
        1 => Just(i128::from(u64::MAX) / 2),
        1 => Just(i128::from(u64::MAX)),
        1 => -5_000i128..0,
    ]
}

proptest! {
    #![proptest_config(config()[0].clone())]

    #[test]
    fn no_input_panics_and_every_step_keeps_the_invariants(
        start in prop_oneof![Just(0u64), any::<u64>(), Just(u64::MAX - 1_000)],
        first in spec(),
        steps in proptest::collection::vec((step_ms(), input()), 0..40),
    ) {
        run(start, first, steps)?;
    }
}

proptest! {
    #![proptest_config(config()[1].clone())]

    #[test]
    fn no_input_panics_from_a_fresh_seed(
        start in prop_oneof![Just(0u64), any::<u64>(), Just(u64::MAX - 1_000)],
        first in spec(),
        steps in proptest::collection::vec((step_ms(), input()), 0..40),
    ) {
        run(start, first, steps)?;
    }
}

/// Steps an engine through `steps` after a first spec: every step decides (and the harness
/// checks the invariants) or is refused with an error.
fn run(start: u64, first: Spec, steps: Vec<(i128, Input)>) -> Result<(), TestCaseError> {
    let mut harness = Harness::new();
    let mut now = i128::from(start);
    let first = harness.step(Timestamp(start), Input::Spec(first));
    prop_assert!(first.is_ok(), "{first:?}");
    for (delta, input) in steps {
        now = (now + delta).clamp(0, i128::from(u64::MAX));
        let at = Timestamp(u64::try_from(now).expect("clamped"));
        match harness.step(at, input) {
            Ok(_) => {}
            Err(violation) if violation.invariant == "api" => {
                // Time went backwards: refused with an error, the engine unchanged.
                let expected = EngineError::TimeWentBackwards {
                    now: at,
                    last: harness.engine.now(),
                };
                prop_assert_eq!(violation.detail, expected.to_string());
                now = i128::from(harness.engine.now().0);
            }
            Err(violation) => prop_assert!(false, "{violation}"),
        }
        if let Some(deadline) = harness.engine.next_deadline() {
            prop_assert!(deadline > harness.engine.now());
        }
    }
    Ok(())
}

#[test]
fn an_input_longer_than_any_kubernetes_object_is_an_error_and_records_nothing() {
    use tandem_engine::limits::{MAX_INPUT_STRING_BYTES, MAX_NAME_BYTES};
    let mut engine = tandem_engine::Engine::new();
    let node = |bytes: usize| Input::Node {
        node: NodeName("n".repeat(bytes)),
        status: NodeStatus::Ready,
    };
    let error = engine
        .step(Timestamp(1), node(MAX_INPUT_STRING_BYTES + 1))
        .err();
    assert!(
        matches!(error, Some(EngineError::InputTooLarge { input: "node", what: "a node name", bytes })
            if bytes == MAX_INPUT_STRING_BYTES + 1),
        "{error:?}"
    );
    assert_eq!(engine.state().seq(), tandem_engine::Seq(0));
    let mut spec = Spec::defaults(Topology::Standalone);
    spec.reexamine = "t".repeat(MAX_INPUT_STRING_BYTES + 1);
    let error = engine.step(Timestamp(1), Input::Spec(spec)).err();
    assert!(
        matches!(
            error,
            Some(EngineError::InputTooLarge {
                what: "the reexamine token",
                ..
            })
        ),
        "{error:?}"
    );
    // Longer than a Kubernetes name but within the input bound: recorded, as refused.
    let step = engine
        .step(Timestamp(1), node(MAX_NAME_BYTES + 1))
        .expect("recorded");
    assert!(step.record().is_some_and(|record| {
        record
            .events
            .iter()
            .any(|event| matches!(event, tandem_engine::Event::InputRefused { .. }))
    }));
}
