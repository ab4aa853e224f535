//! The CI budget of simulator seeds (debug build): every seed must pass every invariant.
//! A failing seed is shrunk and its shortest trace printed.
use std::time::{Duration, Instant};

use kith_sim::{devices_for, run_seed, schedule, shrink, Config, RunStats};

/// Seeds run by `cargo test`: 0..12 take about 80 s in a debug build on the shared 2-core
/// machine (budget: 3 minutes). Seeds 1, 3, 6, 9 and 11 failed before the engine fixes of
/// this branch (leave requests answered by later admins, tentative removal, stale Welcomes,
/// poll_timeout and removed groups, state messages re-applied after a re-join); they stay
/// in the budget as regressions.
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

/// Every run replays exactly from its seed (issue #5): the engines' MLS randomness is
/// seeded from the run, so commits, their hashes and with them fork choice are the same
/// every time. Seed 10 resolves three forks by rollback and injects a crash, so the replay
/// covers fork choice and an engine re-opened after a crash.
#[test]
fn a_seed_replays_identically() {
    let config = Config::default();
    let first = run_seed(10, &config).expect("setup");
    let second = run_seed(10, &config).expect("setup");
    assert!(
        first.stats.forks_resolved > 0 && first.stats.crashes > 0,
        "seed 10 no longer exercises rollbacks and crashes: {:?}",
        first.stats
    );
    assert_eq!(first.final_states, second.final_states);
    assert_eq!(first.violations, second.violations);
    let counters = |s: &RunStats| {
        [
            s.devices,
            s.messages,
            s.commits,
            s.epoch_changes,
            s.deliveries,
            s.forks_resolved,
            s.max_rollback_depth,
            s.crashes,
            s.rejoins,
            s.orphans,
        ]
    };
    // rollback_ms_total is wall-clock time, the one counter that may differ.
    assert_eq!(counters(&first.stats), counters(&second.stats));
}
