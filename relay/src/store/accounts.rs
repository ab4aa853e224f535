//! Accounts, created on first login the chatmail way.
use kith_crypto::account_password::{hash_account_password, verify_account_password};
use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, UnixTime};
use crate::errors::StoreError;

/// The rules for logging in and for creating an account on first login.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    /// This relay's domain; only `<local>@<domain>` addresses exist here.
    pub domain: String,
    /// Create unknown accounts on first login.
    pub create_on_login: bool,
    /// Exact length of a new account's local part (characters `a-z0-9`).
    pub username_length: usize,
    /// Minimum password length of a new account.
    pub password_min_length: usize,
    /// Refuse creation when the data directory has less free space than this.
    pub min_free_disk_bytes: u64,
}

/// The result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The account existed and the password was right.
    LoggedIn,
    /// The account did not exist and was created with this password.
    Created,
    /// The account exists and the password is wrong.
    BadPassword,
    /// The account does not exist and was not created.
    Refused(CreationRefusal),
}

impl LoginOutcome {
    /// Whether the client is now authenticated.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Self::LoggedIn | Self::Created)
    }
}

/// Why an unknown account was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationRefusal {
    /// Account creation is switched off.
    Disabled,
    /// The address is not at this relay's domain.
    WrongDomain,
    /// The local part is not `username_length` characters of `a-z0-9`.
    BadUsername,
    /// The password is shorter than `password_min_length`.
    PasswordTooShort,
    /// The disk is nearly full.
    DiskNearlyFull,
}

impl Store {
    /// Logs in, creating the account if it is unknown and the policy allows.
    pub async fn login(
        &self,
        address: &str,
        password: &str,
        policy: &AccountPolicy,
        now: UnixTime,
    ) -> Result<LoginOutcome, StoreError> {
        let address = address.to_ascii_lowercase();
        if let Some(stored) = self.password_hash(&address).await? {
            return Ok(check(password, &stored));
        }
        if let Some(refusal) = self.creation_refusal(&address, password, policy)? {
            return Ok(LoginOutcome::Refused(refusal));
        }
        let hash = hash_account_password(password, &mut rand::rngs::OsRng);
        let password = zeroize::Zeroizing::new(password.to_owned());
        self.inner
            .writer
            .write(move |conn| {
                let inserted = conn.execute(
                    "INSERT OR IGNORE INTO accounts (address, password_hash, created_at, uidvalidity)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![address, hash, now, uidvalidity(now)],
                )?;
                if inserted == 1 {
                    return Ok((LoginOutcome::Created, Vec::new()));
                }
                // Someone created it between our read and this write: check against theirs.
                let stored = stored_hash(conn, &address)?.ok_or(StoreError::NoSuchMailbox)?;
                Ok((check(&password, &stored), Vec::new()))
            })
            .await
    }

    /// Whether `address` has a mailbox here.
    pub async fn account_exists(&self, address: &str) -> Result<bool, StoreError> {
        Ok(self
            .password_hash(&address.to_ascii_lowercase())
            .await?
            .is_some())
    }

    async fn password_hash(&self, address: &str) -> Result<Option<String>, StoreError> {
        let address = address.to_owned();
        self.read(move |conn| stored_hash(conn, &address)).await
    }

    fn creation_refusal(
        &self,
        address: &str,
        password: &str,
        policy: &AccountPolicy,
    ) -> Result<Option<CreationRefusal>, StoreError> {
        if !policy.create_on_login {
            return Ok(Some(CreationRefusal::Disabled));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Ok(Some(CreationRefusal::WrongDomain));
        };
        if !domain.eq_ignore_ascii_case(&policy.domain) {
            return Ok(Some(CreationRefusal::WrongDomain));
        }
        let valid_local = local.len() == policy.username_length
            && local
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_local {
            return Ok(Some(CreationRefusal::BadUsername));
        }
        if password.chars().count() < policy.password_min_length {
            return Ok(Some(CreationRefusal::PasswordTooShort));
        }
        if self.available_disk_bytes()? < policy.min_free_disk_bytes {
            return Ok(Some(CreationRefusal::DiskNearlyFull));
        }
        Ok(None)
    }
}

fn check(password: &str, stored: &str) -> LoginOutcome {
    if verify_account_password(password, stored) {
        LoginOutcome::LoggedIn
    } else {
        LoginOutcome::BadPassword
    }
}

fn stored_hash(conn: &Connection, address: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT password_hash FROM accounts WHERE address = ?1",
            [address],
            |row| row.get(0),
        )
        .optional()?)
}

/// UIDVALIDITY for a new mailbox: its creation time, as RFC 3501 suggests; never 0.
fn uidvalidity(now: UnixTime) -> u32 {
    u32::try_from(now).unwrap_or(u32::MAX).max(1)
}
