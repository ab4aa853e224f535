//! The openmls provider core uses: [`KithCrypto`] (RustCrypto) for crypto and randomness,
//! SQLite for state.
use openmls::prelude::OpenMlsProvider;
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::{de::DeserializeOwned, Serialize};

use super::crypto::KithCrypto;
#[cfg(any(test, feature = "seeded-randomness"))]
use super::crypto::SeededRandomness;
use super::errors::MlsSetupError;

/// The codec openmls_sqlite_storage uses for every stored value: JSON. The storage crate
/// needs a self-describing format (postcard and bincode fail on openmls's types).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    type Error = serde_json::Error;

    fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }

    fn from_slice<T: DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}

/// openmls's SQLite storage with Kith's codec, borrowing the caller's connection.
pub type KithStorage<'c> = SqliteStorageProvider<JsonCodec, &'c Connection>;

/// The provider every MLS call in Kith takes: [`KithCrypto`] (`openmls_rust_crypto`'s
/// `RustCrypto`) as crypto and randomness, and [`KithStorage`] over a borrowed connection.
///
/// The provider borrows the connection rather than owning it so that the caller can wrap
/// MLS calls and its own writes in one transaction on that connection: pass a
/// [`rusqlite::Transaction`] (it dereferences to the connection), as shown in the
/// [module documentation](crate::mls). Creating a provider is cheap (it seeds a ChaCha20 RNG
/// from the operating system); make one per transaction.
pub struct KithProvider<'c> {
    crypto: KithCrypto,
    storage: KithStorage<'c>,
}

impl<'c> KithProvider<'c> {
    /// A provider whose storage reads and writes through `connection`. The tables must
    /// exist: call [`run_migrations`] once when opening the database.
    pub fn new(connection: &'c Connection) -> Self {
        Self {
            crypto: KithCrypto::from_os(),
            storage: SqliteStorageProvider::new(connection),
        }
    }

    /// **Simulation and tests only: every MLS secret this provider makes is predictable
    /// from `seed`.** Like [`KithProvider::new`], but all of openmls's randomness (path and
    /// init secrets, HPKE ephemeral keys, group ids) comes from a ChaCha20 stream seeded with
    /// `seed` ([`KithCrypto::seeded`]), and KeyPackages made by [`super::new_key_package`]
    /// carry a fixed lifetime instead of one read from the wall clock. The same seed and the
    /// same calls on the same state give byte-identical MLS messages, which is what lets a
    /// simulator seed replay exactly. Needs the `seeded-randomness` feature.
    #[cfg(any(test, feature = "seeded-randomness"))]
    pub fn seeded(connection: &'c Connection, seed: [u8; 32]) -> Self {
        Self {
            crypto: KithCrypto::seeded(seed),
            storage: SqliteStorageProvider::new(connection),
        }
    }

    /// **Simulation and tests only**, like [`KithProvider::seeded`], drawing from `stream`,
    /// which other providers may share (an engine makes one provider per call): the draws
    /// then follow the order of the calls, and a call that draws nothing leaves the stream
    /// untouched. Needs the `seeded-randomness` feature.
    #[cfg(any(test, feature = "seeded-randomness"))]
    pub fn drawing_from(connection: &'c Connection, stream: &SeededRandomness) -> Self {
        Self {
            crypto: KithCrypto::drawing_from(stream),
            storage: SqliteStorageProvider::new(connection),
        }
    }

    /// Whether this provider is deterministic ([`KithProvider::seeded`]).
    pub fn is_seeded(&self) -> bool {
        self.crypto.is_seeded()
    }
}

impl std::fmt::Debug for KithProvider<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KithProvider { .. }")
    }
}

impl<'c> OpenMlsProvider for KithProvider<'c> {
    type CryptoProvider = KithCrypto;
    type RandProvider = KithCrypto;
    type StorageProvider = KithStorage<'c>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

/// Creates or upgrades openmls's tables in `connection` (idempotent; run it once each time
/// the database is opened, before making a [`KithProvider`]).
pub fn run_migrations(connection: &mut Connection) -> Result<(), MlsSetupError> {
    SqliteStorageProvider::<JsonCodec, &mut Connection>::new(connection)
        .run_migrations()
        .map_err(|e| MlsSetupError::StorageMigration(Box::new(e)))
}

/// Opens a `BEGIN IMMEDIATE` transaction on `connection` without needing `&mut`, so that a
/// [`KithProvider`] can borrow the same connection (through the transaction) meanwhile.
/// Commit with [`Transaction::commit`]; dropping the transaction rolls it back. Do not nest:
/// SQLite refuses a second `BEGIN` while one is open, and this returns that error.
pub fn begin_immediate(connection: &Connection) -> Result<Transaction<'_>, rusqlite::Error> {
    Transaction::new_unchecked(connection, TransactionBehavior::Immediate)
}
