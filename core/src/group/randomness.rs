//! Where the engine's MLS randomness comes from: the operating system (production), or, for
//! an engine made deterministic for simulation, one seeded stream its providers share.
#[cfg(feature = "seeded-randomness")]
use kith_crypto::mls::openmls::prelude::OpenMlsProvider as _;
use kith_crypto::mls::openmls::prelude::{LeafNodeIndex, MlsGroup, MlsMessageOut};
use kith_crypto::mls::KithProvider;
#[cfg(feature = "seeded-randomness")]
use kith_crypto::mls::SeededRandomness;
use rusqlite::Connection;

use super::errors::{mls, GroupError};
use super::GroupEngine;

/// How often a deterministic engine rebuilds a removal commit to get its canonical order.
#[cfg(feature = "seeded-randomness")]
const ORDER_TRIES: usize = 64;

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

    /// A commit removing `leaves` from `group` (left pending, as `MlsGroup::remove_members`
    /// does). openmls lists the Remove proposals of one commit in the iteration order of a
    /// `HashMap` (`ProposalQueue::filter_proposals`), which differs from process to process;
    /// a deterministic engine therefore rebuilds the commit, each try with a provider of the
    /// same seed, until the removals come in ascending leaf order, so that the commit (and
    /// its hash, which decides fork choice) replays exactly. A production engine takes
    /// openmls's order (any order is valid MLS).
    pub(crate) fn removal_commit(
        &self,
        db: &Connection,
        group: &mut MlsGroup,
        leaves: &[LeafNodeIndex],
    ) -> Result<MlsMessageOut, GroupError> {
        let build = |provider: &KithProvider<'_>, group: &mut MlsGroup| {
            group
                .remove_members(provider, &self.signer, leaves)
                .map(|(commit, _, _)| commit)
                .map_err(mls)
        };
        #[cfg(feature = "seeded-randomness")]
        if let Some(stream) = &self.randomness.stream {
            let seed = stream.next_seed().map_err(mls)?;
            for _ in 1..ORDER_TRIES {
                let provider = KithProvider::seeded(db, *seed);
                let commit = build(&provider, group)?;
                if removals_ascending(group) {
                    return Ok(commit);
                }
                group
                    .clear_pending_commit(provider.storage())
                    .map_err(mls)?;
            }
            return build(&KithProvider::seeded(db, *seed), group);
        }
        build(&self.provider(db), group)
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

/// Whether the pending commit's Remove proposals are in ascending leaf order.
#[cfg(feature = "seeded-randomness")]
fn removals_ascending(group: &MlsGroup) -> bool {
    let Some(staged) = group.pending_commit() else {
        return true;
    };
    let removed: Vec<u32> = staged
        .remove_proposals()
        .map(|p| p.remove_proposal().removed().u32())
        .collect();
    removed.windows(2).all(|w| w[0] < w[1])
}
