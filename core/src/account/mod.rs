//! One Kith account: a data directory holding `account.db` with this device's identity key,
//! device key and certificate, relay credentials and everything else the core stores.
//!
//! ```no_run
//! # fn demo() -> Result<(), kith_core::account::AccountError> {
//! use kith_core::account::Account;
//! use kith_core::transport::RelayEndpoint;
//! let dir = std::path::Path::new("/tmp/kith-alice");
//! let account = Account::create(dir, RelayEndpoint::standard("relay.example"))?;
//! println!("my address: {}", account.address());
//! drop(account);
//! let again = Account::open(dir)?;
//! # Ok(()) }
//! ```
mod errors;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::DeviceSigningKey;
use rand::rngs::OsRng;
use rand::Rng;
use tokio::sync::Notify;
use zeroize::Zeroizing;

pub use errors::AccountError;

use crate::db::{self, Database, DeviceRecord, OutboxId, StoredKeys};
use crate::events::EventBus;
use crate::transport::{Credentials, Inbox, InboxOptions, Outbox, OutboxOptions, RelayEndpoint};

/// Length of the random local part of a relay address (chatmail's default).
pub const ADDRESS_LOCAL_LEN: usize = 9;
/// Length of a generated relay password: 24 characters of 62 ≈ 143 bits.
pub const PASSWORD_LEN: usize = 24;

const LOCAL_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// An open account.
pub struct Account {
    data_dir: PathBuf,
    db: Database,
    device: DeviceRecord,
    keys: StoredKeys,
    events: EventBus,
    outbox_wake: Arc<Notify>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("data_dir", &self.data_dir)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Creates a new account in `data_dir` (made if missing, mode 0700): a fresh identity
    /// key, device signing key, device id, a random relay address at `relay.domain` with a
    /// random password (the relay creates the account on first login), and a device
    /// certificate binding them. Fails if the directory already holds an account.
    pub fn create(data_dir: &Path, relay: RelayEndpoint) -> Result<Self, AccountError> {
        Self::create_device(data_dir, relay, IdentityKey::generate(&mut OsRng))
    }

    /// Creates the account of another device of the user whose identity key is `identity`:
    /// its own relay address, keys and certificate, signed by that identity, so members
    /// accept it as the same user. Device linking delivers the identity key to a new device
    /// over the link channel and then calls this.
    pub fn create_device(
        data_dir: &Path,
        relay: RelayEndpoint,
        identity: IdentityKey,
    ) -> Result<Self, AccountError> {
        let address = format!(
            "{}@{}",
            random_string(LOCAL_ALPHABET, ADDRESS_LOCAL_LEN),
            relay.domain
        );
        let password = Zeroizing::new(random_string(PASSWORD_ALPHABET, PASSWORD_LEN));
        Self::create_with_login(data_dir, relay, address, password, identity)
    }

    /// Creates an account for a mailbox that already exists on a standard mail server
    /// (Postfix + Dovecot, say), which does not create accounts on first login: the
    /// address and password are the server's, the identity key is new or the user's.
    pub fn create_with_login(
        data_dir: &Path,
        relay: RelayEndpoint,
        address: String,
        password: Zeroizing<String>,
        identity: IdentityKey,
    ) -> Result<Self, AccountError> {
        create_private_dir(data_dir)?;
        let db = Database::open(data_dir)?;
        if db.read(db::device::load_device).is_ok() {
            return Err(AccountError::AlreadyExists(data_dir.to_owned()));
        }
        let now = crate::transport::unix_millis() / 1000;
        let device = DeviceRecord {
            device_id: DeviceId::generate(&mut OsRng),
            address,
            password,
            relay,
            created_at: now,
        };
        let signing = DeviceSigningKey::generate(&mut OsRng);
        let certificate = DeviceCertificate::issue(
            &identity,
            device.device_id,
            signing.public_key(),
            &device.address,
            now as u64,
        )?;
        let keys = StoredKeys {
            identity,
            signing,
            certificate,
        };
        db.transaction(|tx| {
            db::device::insert_account(tx, &device, &keys)?;
            // The envelope key Welcomes and device-to-device traffic are sealed to.
            crate::client::store::envelope_key(tx).map_err(|e| db::DbError::Malformed {
                what: "envelope key",
                reason: e.to_string(),
            })?;
            Ok::<_, AccountError>(())
        })?;
        tracing::info!(device = %device.device_id, "account created");
        Ok(Self::assemble(data_dir, db, device, keys))
    }

    /// Opens the account in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, AccountError> {
        if !data_dir.join(db::DATABASE_FILE).exists() {
            return Err(AccountError::NotFound(data_dir.to_owned()));
        }
        let db = Database::open(data_dir)?;
        let device = db.read(db::device::load_device)?;
        let keys = db.read(db::device::load_keys)?;
        Ok(Self::assemble(data_dir, db, device, keys))
    }

    fn assemble(data_dir: &Path, db: Database, device: DeviceRecord, keys: StoredKeys) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            db,
            device,
            keys,
            events: EventBus::new(),
            outbox_wake: Arc::new(Notify::new()),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// This device's relay address.
    pub fn address(&self) -> &str {
        &self.device.address
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.device.device_id
    }

    /// The relay this device uses.
    pub fn relay(&self) -> &RelayEndpoint {
        &self.device.relay
    }

    /// The relay login.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            address: self.device.address.clone(),
            password: self.device.password.clone(),
        }
    }

    /// The user's identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.keys.identity
    }

    /// This device's MLS signature key.
    pub fn signing_key(&self) -> &DeviceSigningKey {
        &self.keys.signing
    }

    /// This device's certificate.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.keys.certificate
    }

    /// The account database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The event stream; clients call `events().subscribe()`.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The inbox loop for this account (run it with [`Inbox::run`]).
    pub fn inbox(&self, options: InboxOptions) -> Inbox {
        let relay = &self.device.relay;
        Inbox::new(
            relay.imap.clone(),
            relay.trust.clone(),
            self.credentials(),
            self.db.clone(),
            self.events.clone(),
            options,
        )
    }

    /// The outbox sender for this account (run it with [`Outbox::run`]); every outbox
    /// made here shares one wake-up signal with [`Account::queue_envelope`].
    pub fn outbox(&self, options: OutboxOptions) -> Outbox {
        let relay = &self.device.relay;
        Outbox::new(
            relay.smtp.clone(),
            relay.trust.clone(),
            self.credentials(),
            self.db.clone(),
            self.events.clone(),
            Arc::clone(&self.outbox_wake),
            options,
        )
    }

    /// The wake-up signal shared by this account's outboxes.
    pub(crate) fn outbox_wake(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox_wake)
    }

    /// Queues one envelope for `recipients` in its own transaction and wakes the sender.
    /// (Code that produces an envelope together with other state calls
    /// [`Outbox::enqueue`] inside its own transaction instead.)
    pub fn queue_envelope(
        &self,
        envelope: &[u8],
        recipients: &[String],
    ) -> Result<OutboxId, AccountError> {
        let id = self
            .db
            .transaction(|tx| Outbox::enqueue(tx, envelope, recipients))?;
        self.outbox_wake.notify_one();
        Ok(id)
    }
}

/// `len` characters drawn uniformly from `alphabet` with the operating system's RNG.
fn random_string(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[OsRng.gen_range(0..alphabet.len())]))
        .collect()
}

fn create_private_dir(path: &Path) -> Result<(), AccountError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| AccountError::DataDir {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

#[cfg(test)]
mod tests;
