//! One simulated device: its SQLite file, its engine, and the crash injector.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use kith_core::group::{GroupEngine, GroupId};
use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::{run_migrations, DeviceSigningKey};
use rand::rngs::StdRng;
use rand::Rng as _;
use rusqlite::Connection;
use zeroize::Zeroizing;

use crate::SimError;

/// A device of the simulation.
pub(crate) struct Device {
    /// Its delivery address.
    pub(crate) address: String,
    /// The user (identity) it belongs to.
    pub(crate) user: usize,
    signer: Zeroizing<[u8; 32]>,
    certificate: DeviceCertificate,
    path: PathBuf,
    /// Its database.
    pub(crate) conn: Connection,
    /// Its engine.
    pub(crate) engine: GroupEngine,
    /// Whether it reaches the network.
    pub(crate) online: bool,
    /// Progress-handler ticks (8 SQLite VM steps each) before its next call crashes, if armed.
    pub(crate) crash: Option<i64>,
}

fn open(path: &PathBuf) -> Result<Connection, SimError> {
    let mut conn = Connection::open(path)?;
    // A simulated crash kills the process, not the machine: what SQLite handed to the OS
    // survives it, so fsync buys nothing here and costs ~40 ms per call on this disk.
    conn.pragma_update(None, "synchronous", "OFF")?;
    run_migrations(&mut conn).map_err(|e| SimError::Setup(e.to_string()))?;
    kith_core::group::migrate(&conn).map_err(|e| SimError::Setup(e.to_string()))?;
    Ok(conn)
}

impl Device {
    /// A fresh device of `user` with its database in `dir`.
    pub(crate) fn new(
        dir: &std::path::Path,
        index: usize,
        user: usize,
        identity: &IdentityKey,
        rng: &mut StdRng,
    ) -> Result<Self, SimError> {
        let address = format!("d{index}@sim.example");
        let signer = DeviceSigningKey::generate(rng);
        let certificate = DeviceCertificate::issue(
            identity,
            DeviceId::generate(rng),
            signer.public_key(),
            &address,
            1_700_000_000,
        )
        .map_err(|e| SimError::Setup(e.to_string()))?;
        let path = dir.join(format!("d{index}.db"));
        let conn = open(&path)?;
        let bytes = signer.to_bytes();
        let engine = GroupEngine::new(signer, certificate.clone())
            .map_err(|e| SimError::Setup(e.to_string()))?
            .with_deterministic_randomness(rng.gen());
        let signer = Zeroizing::new(*bytes);
        Ok(Device {
            address,
            user,
            signer,
            certificate,
            path,
            conn,
            engine,
            online: true,
            crash: None,
        })
    }

    /// The process died: drop the connection (an open transaction rolls back, as SQLite
    /// does after a crash) and open the file again with a fresh engine, whose MLS
    /// randomness is seeded with `seed` (drawn from the world's RNG, so a replay matches).
    pub(crate) fn reopen(&mut self, seed: u64) -> Result<(), SimError> {
        self.conn = open(&self.path)?;
        let signer = restore_signer(&self.signer)?;
        self.engine = GroupEngine::new(signer, self.certificate.clone())
            .map_err(|e| SimError::Setup(e.to_string()))?
            .with_deterministic_randomness(seed);
        Ok(())
    }

    /// Arms the progress handler for one call; the flag turns true if it fired.
    pub(crate) fn arm(&self, ticks: i64) -> Arc<AtomicBool> {
        let fired = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicI64::new(ticks));
        let flag = fired.clone();
        self.conn.progress_handler(
            8,
            Some(move || {
                if left.fetch_sub(1, Ordering::Relaxed) <= 0 {
                    flag.store(true, Ordering::Relaxed);
                    true
                } else {
                    false
                }
            }),
        );
        fired
    }

    /// Removes the progress handler.
    pub(crate) fn disarm(&self) {
        self.conn.progress_handler(0, None::<fn() -> bool>);
    }

    /// Whether the device holds the group.
    pub(crate) fn holds(&self, group: &GroupId) -> bool {
        self.engine
            .groups(&self.conn)
            .map(|g| g.contains(group))
            .unwrap_or(false)
    }
}

fn restore_signer(bytes: &[u8; 32]) -> Result<DeviceSigningKey, SimError> {
    DeviceSigningKey::from_bytes(bytes).map_err(|e| SimError::Setup(e.to_string()))
}
