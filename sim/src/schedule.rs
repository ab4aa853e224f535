//! A run's schedule: the operations and network events, drawn from a seed.
//!
//! Every action names devices and packets by small numbers that are read modulo whatever
//! is applicable when the action runs (the members, the admins, the packets in flight), so
//! any subset of a schedule is still a schedule: that is what lets the shrinker drop
//! actions freely.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A member sends a text message.
    Send {
        /// Picks the member.
        dev: u8,
    },
    /// An admin adds a device that is not in the group.
    Add {
        /// Picks the admin.
        by: u8,
        /// Picks the device among those outside.
        who: u8,
    },
    /// An admin links a second device of a user who already has one in the group.
    Link {
        /// Picks the admin.
        by: u8,
        /// Picks the device among those outside whose user is inside.
        who: u8,
    },
    /// An admin removes another member.
    Remove {
        /// Picks the admin.
        by: u8,
        /// Picks the member (never the admin itself).
        who: u8,
    },
    /// A member asks to leave.
    Leave {
        /// Picks the member.
        dev: u8,
    },
    /// A member commits fresh keys.
    SelfUpdate {
        /// Picks the member.
        dev: u8,
    },
    /// An admin makes another member an admin.
    MakeAdmin {
        /// Picks the admin.
        by: u8,
        /// Picks the member.
        who: u8,
    },
    /// A member that is not an admin tries to add a device (must fail: `NotAdmin`).
    NonAdminAdd {
        /// Picks the non-admin.
        dev: u8,
    },
    /// An admin is offered a KeyPackage whose certificate does not verify (must fail).
    ForgedAdd {
        /// Picks the admin.
        by: u8,
    },
    /// Delivers up to `count` packets in flight, chosen at random (reordering).
    Deliver {
        /// How many.
        count: u8,
        /// Seeds the choice.
        pick: u32,
    },
    /// Duplicates one packet in flight.
    Duplicate {
        /// Picks the packet.
        pick: u32,
    },
    /// A device goes offline: nothing reaches it and what it sends is held.
    Offline {
        /// Picks the device.
        dev: u8,
    },
    /// An offline device comes back; what it sent while offline goes out in a burst.
    Online {
        /// Picks the device among the offline ones.
        dev: u8,
    },
    /// The device's next engine call crashes after about `after` × 8 SQLite VM steps.
    Crash {
        /// Picks the device.
        dev: u8,
        /// How far into the transaction.
        after: u16,
    },
    /// Time passes (timers run: leave requests answered, intents re-issued).
    Advance {
        /// Seconds.
        secs: u32,
    },
}

/// Draws a schedule of `steps` actions from `seed`.
pub fn generate(seed: u64, steps: usize) -> Vec<Action> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_5c4e_d01e);
    (0..steps).map(|_| draw(&mut rng)).collect()
}

fn draw(rng: &mut StdRng) -> Action {
    let dev = rng.gen();
    let who = rng.gen();
    match rng.gen_range(0..100u32) {
        0..=17 => Action::Send { dev },
        18..=41 => Action::Deliver {
            count: rng.gen_range(1..12),
            pick: rng.gen(),
        },
        42..=48 => Action::SelfUpdate { dev },
        49..=54 => Action::Add { by: dev, who },
        55..=57 => Action::Link { by: dev, who },
        58..=62 => Action::Remove { by: dev, who },
        63..=64 => Action::Leave { dev },
        65..=67 => Action::MakeAdmin { by: dev, who },
        68..=69 => Action::NonAdminAdd { dev },
        70 => Action::ForgedAdd { by: dev },
        71..=75 => Action::Duplicate { pick: rng.gen() },
        76..=78 => Action::Offline { dev },
        79..=84 => Action::Online { dev },
        85..=91 => Action::Crash {
            dev,
            after: rng.gen_range(0..400),
        },
        _ => Action::Advance {
            secs: rng.gen_range(1..120),
        },
    }
}
