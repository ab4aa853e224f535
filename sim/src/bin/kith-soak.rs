//! `kith-soak`: runs simulator seeds for as long as asked and reports what it saw.
//!
//! ```text
//! kith-soak --seconds 600            # seeds 0, 1, 2, ... for ten minutes
//! kith-soak --seed 1234              # one seed (shrinks and prints the trace if it fails)
//! ```
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use kith_sim::{devices_for, run_seed, schedule, shrink, Config, RunStats};

/// Runs the group-consistency simulator.
#[derive(Parser)]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Run only this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The first seed when running many.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Stop after this many runs (seeds `first`, `first + 1`, ...), even before `seconds`.
    #[arg(long)]
    runs: Option<u64>,
    /// Actions per schedule.
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Most devices per run (at least 3).
    #[arg(long, default_value_t = 12)]
    max_devices: usize,
    /// How long to spend shrinking a failing schedule, in seconds.
    #[arg(long, default_value_t = 120)]
    shrink_seconds: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let config = Config {
        min_devices: 3,
        max_devices: args.max_devices.max(3),
        steps: args.steps,
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut total = RunStats::default();
    let mut runs = 0u64;
    let mut failures = 0u64;
    let mut seed = args.seed.unwrap_or(args.first);
    loop {
        let outcome = run_seed(seed, &config)?;
        runs += 1;
        total.add(&outcome.stats);
        if let Some(first) = outcome.violations.first() {
            failures += 1;
            println!(
                "FAIL seed {seed}: {} violation(s)",
                outcome.violations.len()
            );
            for v in outcome.violations.iter().take(10) {
                println!("  {v}");
            }
            let n = devices_for(seed, &config);
            let shrunk = shrink(
                seed,
                n,
                schedule::generate(seed, config.steps),
                first,
                Instant::now() + Duration::from_secs(args.shrink_seconds),
            );
            println!(
                "shortest failing trace ({n} devices, {} actions):",
                shrunk.len()
            );
            for action in &shrunk {
                println!("  {action:?}");
            }
        }
        seed += 1;
        if args.seed.is_some() || Instant::now() >= deadline || args.runs.is_some_and(|n| runs >= n)
        {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rollback_ms = if total.forks_resolved > 0 {
        total.rollback_ms_total / total.forks_resolved as f64
    } else {
        0.0
    };
    println!(
        "runs {runs} ({failures} failed) in {secs:.0} s; devices {}, messages {}, membership commits {}, epoch changes {}, deliveries {}, forks resolved {}, rollbacks {}, max rollback depth {}, mean ms per rolled-back call {rollback_ms:.1}, crashes {}, rejoin requests {}, orphaned devices {}",
        total.devices,
        total.messages,
        total.commits,
        total.epoch_changes,
        total.deliveries,
        total.forks_resolved,
        total.forks_resolved,
        total.max_rollback_depth,
        total.crashes,
        total.rejoins,
        total.orphans,
    );
    if failures > 0 {
        anyhow::bail!("{failures} of {runs} runs failed");
    }
    Ok(())
}
