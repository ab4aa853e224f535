//! One simulated device: its SQLite file, its engine, and the crash injector.
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

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
    /// Whether it holds the group and counts itself an admin of it, as last read; forgotten
    /// after each of its engine calls and on reopen ([`Device::forget_view`]).
    view: RefCell<Option<(GroupId, (bool, bool))>>,
}

/// Opens a device's database as the account database is opened (core's `db::open`):
/// write-ahead log; without fsync, since a simulated crash kills the process, not the
/// machine: what SQLite handed to the OS survives it, and fsync costs ~40 ms per call on
/// this disk.
fn configure(conn: Connection) -> Result<Connection, SimError> {
    conn.pragma_update(None, "synchronous", "OFF")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        return Err(SimError::Setup(format!("journal mode {mode}, not wal")));
    }
    Ok(conn)
}

/// Makes (or upgrades) openmls's tables and the engine's.
fn migrate(conn: &mut Connection) -> Result<(), SimError> {
    run_migrations(conn).map_err(|e| SimError::Setup(e.to_string()))?;
    kith_core::group::migrate(conn).map_err(|e| SimError::Setup(e.to_string()))
}

/// A database file with every table made, migrated once per process: each new device's
/// file starts as a copy of it (migrating every device took a sixth of a run).
fn migrated_template() -> Result<&'static [u8], SimError> {
    static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(template) = TEMPLATE.get() {
        return Ok(template);
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("template.db");
    // The default rollback journal leaves everything in the one file once it is closed.
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    migrate(&mut conn)?;
    drop(conn);
    let bytes = std::fs::read(&path)?;
    Ok(TEMPLATE.get_or_init(|| bytes))
}

/// A new device's database at `path`, with every table made.
fn create(path: &PathBuf) -> Result<Connection, SimError> {
    std::fs::write(path, migrated_template()?)?;
    configure(Connection::open(path)?)
}

/// A device's database after a crash, opened (and migrated) as on a restart.
fn open(path: &PathBuf) -> Result<Connection, SimError> {
    let mut conn = configure(Connection::open(path)?)?;
    migrate(&mut conn)?;
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
        let conn = create(&path)?;
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
            view: RefCell::new(None),
        })
    }

    /// The process died: drop the connection (an open transaction rolls back, as SQLite
    /// does after a crash) and open the file again with a fresh engine, whose MLS
    /// randomness is seeded with `seed` (drawn from the world's RNG, so a replay matches).
    pub(crate) fn reopen(&mut self, seed: u64) -> Result<(), SimError> {
        self.forget_view();
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
        self.view(group).0
    }

    /// Whether the device holds the group and counts itself an admin of it.
    pub(crate) fn is_admin(&self, group: &GroupId) -> bool {
        self.view(group).1
    }

    /// Forgets the view [`Device::holds`] and [`Device::is_admin`] read: the engine call
    /// that just ran (or the reopen) may have changed it.
    pub(crate) fn forget_view(&self) {
        self.view.replace(None);
    }

    /// Whether it holds the group and is an admin, read from its engine once per call: the
    /// world asks before each operation, and reading loads the group's MLS state.
    fn view(&self, group: &GroupId) -> (bool, bool) {
        if let Some((of, view)) = &*self.view.borrow() {
            if of == group {
                return *view;
            }
        }
        let holds = self
            .engine
            .groups(&self.conn)
            .is_ok_and(|g| g.contains(group));
        let admin = holds
            && self
                .engine
                .admins(&self.conn, group)
                .is_ok_and(|a| a.contains(&self.address));
        self.view.replace(Some((group.clone(), (holds, admin))));
        (holds, admin)
    }
}

fn restore_signer(bytes: &[u8; 32]) -> Result<DeviceSigningKey, SimError> {
    DeviceSigningKey::from_bytes(bytes).map_err(|e| SimError::Setup(e.to_string()))
}
