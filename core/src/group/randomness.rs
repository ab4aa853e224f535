//! Where the engine's MLS randomness comes from: the operating system (production), or, for
//! an engine made deterministic for simulation, one seeded stream its providers share.
use kith_crypto::mls::KithProvider;
#[cfg(feature = "seeded-randomness")]
use kith_crypto::mls::SeededRandomness;
use rusqlite::Connection;

use super::GroupEngine;

/// The engine's source of provider randomness.
#[derive(Default)]
pub(crate) struct Randomness {
    /// The stream of a deterministic engine (`None`: the OS).
    #[cfg(feature = "seeded-randomness")]
    stream: Option<SeededRandomness>,
}

impl Randomness {
    /// A provider over `db` with this randomness.
    fn provider<'c>(&self, db: &'c Connection) -> KithProvider<'c> {
        #[cfg(feature = "seeded-randomness")]
        if let Some(stream) = &self.stream {
            return KithProvider::drawing_from(db, stream);
        }
        KithProvider::new(db)
    }
}

impl GroupEngine {
    /// The openmls provider for one call over `db`. Every MLS operation of the engine takes
    /// its provider from here, so that a deterministic engine covers all of them.
    pub(crate) fn provider<'c>(&self, db: &'c Connection) -> KithProvider<'c> {
        self.randomness.provider(db)
    }

    /// **Simulation and tests only: the engine's MLS secrets become predictable.** All MLS
    /// randomness of the engine's providers comes from one ChaCha20 stream seeded from
    /// `seed` ([`KithProvider::drawing_from`]), drawn in the order of the engine's calls; a
    /// call that draws nothing (a query) leaves it untouched. So the same seed, state and
    /// calls give byte-identical commits and Welcomes, and a simulator run replays exactly
    /// from its seed, with or without extra queries (tracing). Needs the
    /// `seeded-randomness` feature (which enables kith-crypto's).
    #[cfg(feature = "seeded-randomness")]
    pub fn with_deterministic_randomness(mut self, seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        self.randomness.stream = Some(SeededRandomness::new(bytes));
        self
    }
}
