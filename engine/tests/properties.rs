//! Property tests: generated fault plans, mixing a cooperative world with adversarial inputs,
//! with every invariant checked after every step.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use tandem_engine::testing::{arb_plan, run_plan, test_spec};
use tandem_engine::{Replication, Topology};

/// Cases per topology in every run (the figure the CI run must reach).
const CASES: u32 = 10_000;

/// The seed of a CI run's cases, so that a run is reproducible. Set `PROPTEST_RNG_SEED` to draw
/// other cases (and print the seed to reproduce them).
const CI_SEED: u64 = 0x007A_4DE3_2026;

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        cases,
        max_shrink_iters: 4_096,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(CI_SEED);
    }
    config
}
proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn master_slave_invariants_hold(sync in any::<bool>(), plan in arb_plan(12)) {
        let replication = if sync { Replication::Sync } else { Replication::Async };
        let spec = test_spec(Topology::MasterSlave, replication);
        if let Err(violation) = run_plan(spec, &plan) {
            prop_assert!(false, "{violation}");
        }
    }

    #[test]
    fn standalone_invariants_hold(plan in arb_plan(12)) {
        let spec = test_spec(Topology::Standalone, Replication::Sync);
        if let Err(violation) = run_plan(spec, &plan) {
            prop_assert!(false, "{violation}");
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn the_same_inputs_give_byte_identical_records(sync in any::<bool>(), plan in arb_plan(10)) {
        let replication = if sync { Replication::Sync } else { Replication::Async };
        let spec = test_spec(Topology::MasterSlave, replication);
        let first = run_plan(spec.clone(), &plan);
        let second = run_plan(spec, &plan);
        prop_assert_eq!(first, second);
    }
}
