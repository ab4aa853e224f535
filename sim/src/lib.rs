//! Kith's group-consistency simulator (issue #5).
//!
//! N devices (of several users; some users have two) run the real
//! [`kith_core::group::GroupEngine`] on their own SQLite files, joined by a simulated
//! network driven by a seeded schedule ([`schedule::generate`]): messages delayed,
//! reordered, duplicated, held back while a device is offline and delivered in a burst when
//! it returns; devices that crash mid-transaction (the SQLite progress handler interrupts a
//! statement at a chosen point; the file is reopened) and go on. Operations: send, add,
//! link a second device of a user, remove, leave, self-update, make admin, a non-admin's
//! add (must fail), a forged certificate (must be refused); concurrent commits from several
//! admins arise whenever two act before delivery.
//!
//! After the schedule, every device comes online and delivery runs until it quiesces (with
//! timers, so leave requests are answered); each member then sends a probe, delivery
//! quiesces again, and the invariants are checked (`check.rs`; `docs/consistency.md`).
//!
//! ```no_run
//! let outcome = kith_sim::run_seed(7, &kith_sim::Config::default()).expect("setup");
//! assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
//! ```
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod check;
mod device;
mod ops;
mod phases;
mod record;
pub mod schedule;
mod shrink;
mod world;

pub use schedule::Action;
pub use shrink::shrink;

use rand::{Rng, SeedableRng};

/// What can stop a run before its checks (not an invariant violation).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Creating a device, its database or the group failed.
    #[error("setup failed: {0}")]
    Setup(String),
    /// A database could not be opened.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The temporary directory could not be made.
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The size of the runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Fewest devices per run.
    pub min_devices: usize,
    /// Most devices per run.
    pub max_devices: usize,
    /// Actions per schedule.
    pub steps: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_devices: 3,
            max_devices: 12,
            steps: 60,
        }
    }
}

/// Counters of one run (or, summed, of many).
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    /// Devices simulated.
    pub devices: u64,
    /// Application messages sent (probes included).
    pub messages: u64,
    /// Membership commits issued by the schedule (adds, links, removals).
    pub commits: u64,
    /// Epoch changes seen by all devices together.
    pub epoch_changes: u64,
    /// Packets handed to devices.
    pub deliveries: u64,
    /// Forks resolved by rollback (`Event::ForkResolved`), summed over devices.
    pub forks_resolved: u64,
    /// The deepest rollback, in epochs.
    pub max_rollback_depth: u64,
    /// Milliseconds spent in calls that rolled back (summed), to get a rollback's cost.
    pub rollback_ms_total: f64,
    /// Crashes injected (calls aborted mid-transaction and reopened).
    pub crashes: u64,
    /// Rejoin requests (devices found on a losing branch beyond the horizon).
    pub rejoins: u64,
    /// Devices left holding a dead branch at the end (see `docs/consistency.md`).
    pub orphans: u64,
}

impl RunStats {
    /// Adds another run's counters.
    pub fn add(&mut self, other: &RunStats) {
        self.devices += other.devices;
        self.messages += other.messages;
        self.commits += other.commits;
        self.epoch_changes += other.epoch_changes;
        self.deliveries += other.deliveries;
        self.forks_resolved += other.forks_resolved;
        self.max_rollback_depth = self.max_rollback_depth.max(other.max_rollback_depth);
        self.rollback_ms_total += other.rollback_ms_total;
        self.crashes += other.crashes;
        self.rejoins += other.rejoins;
        self.orphans += other.orphans;
    }
}

/// What one run found.
#[derive(Debug)]
pub struct Outcome {
    /// The run's counters.
    pub stats: RunStats,
    /// Invariant violations (empty when the run passed).
    pub violations: Vec<String>,
    /// Each device's final state, in device order: its epoch and epoch id, its member list
    /// and the row counts of its engine tables (or "outside" if it holds no group). Two runs
    /// of one seed must give equal states (with equal stats and violations).
    pub final_states: Vec<String>,
}

/// How many devices a seed runs with.
pub fn devices_for(seed: u64, config: &Config) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xde71ce_u64);
    rng.gen_range(config.min_devices..=config.max_devices)
}

/// Runs the schedule drawn from `seed`.
pub fn run_seed(seed: u64, config: &Config) -> Result<Outcome, SimError> {
    let schedule = schedule::generate(seed, config.steps);
    run_schedule(seed, devices_for(seed, config), &schedule)
}

/// Runs a given schedule with `n` devices; `seed` seeds the setup and message ids.
pub fn run_schedule(seed: u64, n: usize, schedule: &[Action]) -> Result<Outcome, SimError> {
    let mut world = world::World::new(seed, n)?;
    let trace = world.trace;
    world.setup();
    for (step, action) in schedule.iter().enumerate() {
        world.step = step + 1;
        world.record.step = step + 1;
        world.act(action);
        if trace {
            eprintln!("{step}: {action:?} -> {}", world.describe());
        }
    }
    world.step = schedule.len() + 1;
    world.record.step = world.step;
    world.quiesce();
    let holders = world.holders();
    for &i in &holders {
        world.send(i, true);
    }
    world.quiesce();
    world.check();
    Ok(Outcome {
        stats: world.stats.clone(),
        violations: world.record.violations.clone(),
        final_states: (0..n).map(|i| world.fingerprint(i)).collect(),
    })
}
