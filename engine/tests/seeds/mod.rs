//! The seeds the engine's property tests draw from, shared by the test files that include this
//! module.

/// A property test's configurations: `cases` from `fixed_seed`, the same every run (or from
/// `PROPTEST_RNG_SEED` when it is set); and a fifth as many from a fresh seed, new every run, so
/// that the suite also explores cases no earlier run drew. proptest prints a failing case it
/// finds from the fresh seed and keeps it in the file's regressions, which every later run tries
/// first.
pub fn fixed_and_fresh(cases: u32, fixed_seed: u64) -> [proptest::test_runner::Config; 2] {
    use proptest::test_runner::{Config, RngSeed};
    let mut fixed = Config {
        cases,
        max_shrink_iters: 2_048,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        fixed.rng_seed = RngSeed::Fixed(fixed_seed);
    }
    let fresh = Config {
        cases: (cases / 5).max(1),
        max_shrink_iters: 2_048,
        rng_seed: RngSeed::Random,
        ..Config::default()
    };
    [fixed, fresh]
}
