//! This device's row, its keys and its certificate.
use kith_crypto::certificate::{DeviceCertificate, DeviceId, DEVICE_ID_LEN};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::DeviceSigningKey;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

use super::DbError;
use crate::transport::RelayEndpoint;

/// This device: its id, relay account and relay.
#[derive(Clone)]
pub struct DeviceRecord {
    /// The device's id (also in its certificate).
    pub device_id: DeviceId,
    /// The device's relay address, `local@relay-domain`.
    pub address: String,
    /// The relay account's password.
    pub password: Zeroizing<String>,
    /// Where the relay is and how to reach it.
    pub relay: RelayEndpoint,
    /// When the account was created, in Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("device_id", &self.device_id)
            .field("relay", &self.relay)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The device's secret keys and certificate.
#[derive(Debug)]
pub struct StoredKeys {
    /// The user's identity key.
    pub identity: IdentityKey,
    /// This device's MLS signature key.
    pub signing: DeviceSigningKey,
    /// The certificate binding `signing` and the address to `identity`.
    pub certificate: DeviceCertificate,
}

/// Writes the device row and keys of a new account (fails if one exists).
pub(crate) fn insert_account(
    conn: &Connection,
    device: &DeviceRecord,
    keys: &StoredKeys,
) -> Result<(), DbError> {
    let relay = serde_json::to_string(&device.relay).map_err(|e| DbError::Malformed {
        what: "relay endpoint",
        reason: e.to_string(),
    })?;
    conn.execute(
        "INSERT INTO device (singleton, device_id, address, password, relay, created_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        params![
            &device.device_id.0[..],
            device.address,
            device.password.as_str(),
            relay,
            device.created_at
        ],
    )?;
    conn.execute(
        "INSERT INTO identity_key (singleton, secret) VALUES (1, ?1)",
        [&keys.identity.to_bytes()[..]],
    )?;
    conn.execute(
        "INSERT INTO device_key (singleton, signing_secret, certificate) VALUES (1, ?1, ?2)",
        params![&keys.signing.to_bytes()[..], keys.certificate.encode()],
    )?;
    Ok(())
}

/// The device row, or [`DbError::NoAccount`].
pub(crate) fn load_device(conn: &Connection) -> Result<DeviceRecord, DbError> {
    let row = conn
        .query_row(
            "SELECT device_id, address, password, relay, created_at FROM device",
            [],
            |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, String>(1)?,
                    Zeroizing::new(row.get::<_, String>(2)?),
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?
        .ok_or(DbError::NoAccount)?;
    let (id, address, password, relay, created_at) = row;
    let id: [u8; DEVICE_ID_LEN] = id.as_slice().try_into().map_err(|_| DbError::Malformed {
        what: "device id",
        reason: format!("{} bytes", id.len()),
    })?;
    let relay = serde_json::from_str(&relay).map_err(|e| DbError::Malformed {
        what: "relay endpoint",
        reason: e.to_string(),
    })?;
    Ok(DeviceRecord {
        device_id: DeviceId(id),
        address,
        password,
        relay,
        created_at,
    })
}

/// The device's keys and certificate, or [`DbError::NoAccount`].
pub(crate) fn load_keys(conn: &Connection) -> Result<StoredKeys, DbError> {
    let identity: Zeroizing<Vec<u8>> = conn
        .query_row("SELECT secret FROM identity_key", [], |row| row.get(0))
        .optional()?
        .map(Zeroizing::new)
        .ok_or(DbError::NoAccount)?;
    let (signing, certificate): (Zeroizing<Vec<u8>>, Vec<u8>) = conn
        .query_row(
            "SELECT signing_secret, certificate FROM device_key",
            [],
            |row| Ok((Zeroizing::new(row.get(0)?), row.get(1)?)),
        )
        .optional()?
        .ok_or(DbError::NoAccount)?;
    let malformed = |what, reason: String| DbError::Malformed { what, reason };
    Ok(StoredKeys {
        identity: IdentityKey::from_bytes(&identity)
            .map_err(|e| malformed("identity key", e.to_string()))?,
        signing: DeviceSigningKey::from_bytes(&signing)
            .map_err(|e| malformed("device signing key", e.to_string()))?,
        certificate: DeviceCertificate::decode(&certificate)
            .map_err(|e| malformed("device certificate", e.to_string()))?,
    })
}
