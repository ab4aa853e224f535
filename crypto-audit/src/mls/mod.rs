//! MLS configuration: the one place that fixes Kith's ciphersuite, the openmls group settings,
//! the storage-backed provider core uses, and the secrets Kith exports from an epoch.
//!
//! Everything about openmls that Kith relies on is set here, so that core never spells a
//! ciphersuite, a wire-format policy or a tolerance itself. See PROTOCOL.md §1.
//!
//! # Transactions
//!
//! openmls's storage trait has no transactions, so a crash in the middle of a merge would
//! leave torn state. [`KithProvider`] therefore only *borrows* a [`rusqlite::Connection`]:
//! the caller opens `BEGIN IMMEDIATE` on that same connection (see
//! [`begin_immediate`]), builds a provider over the transaction, makes its MLS calls and
//! its own writes, drops the provider and commits:
//!
//! ```no_run
//! # fn demo(conn: &rusqlite::Connection) -> Result<(), Box<dyn std::error::Error>> {
//! use kith_crypto::mls::{begin_immediate, KithProvider};
//! let tx = begin_immediate(conn)?;          // BEGIN IMMEDIATE on `conn`
//! {
//!     let provider = KithProvider::new(&tx); // every MLS write goes through `tx`
//!     // ... MlsGroup::load / process_message / merge_staged_commit with &provider ...
//!     // ... the caller's own rows and inbox cursor, via `tx.execute(..)` ...
//! }
//! tx.commit()?;                             // all or nothing; dropping `tx` rolls back
//! # Ok(()) }
//! ```
mod config;
mod credential;
mod crypto;
mod errors;
mod export;
mod provider;
mod seeded_hpke;
#[cfg(test)]
mod seeded_tests;
mod signer;

pub use config::{
    group_create_config, group_create_config_for, group_create_config_with, group_join_config,
    leaf_capabilities, ADMINS_EXTENSION_TYPE, CIPHERSUITE, MAXIMUM_FORWARD_DISTANCE,
    MAX_ADDS_PER_COMMIT, MAX_PAST_EPOCHS, OUT_OF_ORDER_TOLERANCE, PADDING_SIZE,
};
pub use credential::{
    credential_with_key, new_key_package, verify_leaf_credential, SEEDED_KEY_PACKAGE_LIFETIME,
};
pub use crypto::{KithCrypto, SeededRandomness};
pub use errors::MlsSetupError;
pub use export::{epoch_id, export_epoch_key, EpochExport, ENVELOPE_KEY_LABEL, EPOCH_ID_LABEL};
pub use provider::{begin_immediate, run_migrations, JsonCodec, KithProvider, KithStorage};
pub use signer::{verify_control, DeviceSigningKey};

/// The openmls crate Kith is built against, re-exported so that core uses exactly this one.
pub use openmls;
