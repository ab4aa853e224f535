//! The CI budget of simulator seeds (debug build): every seed must pass every invariant.
//! A failing seed is shrunk and its shortest trace printed.
use std::time::{Duration, Instant};

use kith_sim::{devices_for, run_seed, schedule, shrink, Config, RunStats};

/// Seeds run by `cargo test` (chosen so the test stays within about 3 minutes here).
const SEEDS: u64 = 12;

#[test]
fn fixed_budget_of_seeds_passes_every_invariant() {
    let config = Config::default();
    let mut total = RunStats::default();
    for seed in 0..SEEDS {
        let outcome = run_seed(seed, &config).expect("setup");
        total.add(&outcome.stats);
        if let Some(first) = outcome.violations.first() {
            let n = devices_for(seed, &config);
            let shrunk = shrink(
                seed,
                n,
                schedule::generate(seed, config.steps),
                first,
                Instant::now() + Duration::from_secs(60),
            );
            panic!(
                "seed {seed} failed: {:#?}\nshortest trace ({n} devices): {shrunk:#?}",
                outcome.violations
            );
        }
    }
    // The runs exercised what they are meant to.
    assert!(total.messages > 0 && total.commits > 0, "{total:?}");
    assert!(total.crashes > 0, "no crash was injected: {total:?}");
    eprintln!("{SEEDS} seeds: {total:?}");
}
