//! The contacts module's rows: pending invites (ours), pending joins (theirs), contacts,
//! their devices and the stock of their KeyPackages (migration 4).
use kith_crypto::certificate::{DeviceCertificate, VerifiedDevice};
use kith_crypto::identity::IdentityPublicKey;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

use super::{Contact, ContactDevice, ContactError, STOCK};
use crate::group::GroupId;

/// One of our invites, as stored.
pub(crate) struct StoredInvite {
    pub(crate) group: Option<GroupId>,
    pub(crate) invite_secret: Zeroizing<[u8; 16]>,
    pub(crate) channel_secret: Zeroizing<[u8; 32]>,
    pub(crate) expires_at: u64,
    pub(crate) used_by: Option<[u8; 32]>,
}

/// A live invite: its row id and its secret.
pub(crate) type LiveInvite = (i64, Zeroizing<[u8; 16]>);

/// One of our joins, as stored.
pub(crate) struct StoredJoin {
    pub(crate) channel_secret: Zeroizing<[u8; 32]>,
    pub(crate) invite: Zeroizing<Vec<u8>>,
}

fn array<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], ContactError> {
    bytes.try_into().map_err(|_| ContactError::Malformed(what))
}

pub(crate) fn insert_invite(
    db: &Connection,
    group: Option<&GroupId>,
    invite_secret: &[u8; 16],
    channel_secret: &[u8; 32],
    expires_at: u64,
    now: u64,
) -> Result<(), ContactError> {
    db.execute(
        "INSERT INTO invites (kind, group_id, invite_secret, channel_secret, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            if group.is_some() { "group" } else { "contact" },
            group.map(|g| g.0.clone()),
            &invite_secret[..],
            &channel_secret[..],
            expires_at as i64,
            now as i64
        ],
    )?;
    Ok(())
}

/// Our invites whose answers we still read (unexpired, or expired less than `grace`
/// seconds ago so that a late joiner hears a refusal): (id, invite secret).
pub(crate) fn live_invites(
    db: &Connection,
    now: u64,
    grace: u64,
) -> Result<Vec<LiveInvite>, ContactError> {
    let mut stmt =
        db.prepare("SELECT id, invite_secret FROM invites WHERE expires_at + ?1 >= ?2")?;
    let rows = stmt.query_map(params![grace as i64, now as i64], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            Zeroizing::new(row.get::<_, Vec<u8>>(1)?),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, secret) = row?;
        out.push((id, Zeroizing::new(array(&secret, "invite secret")?)));
    }
    Ok(out)
}

/// Forgets invites nobody can answer any more.
pub(crate) fn expire_invites(db: &Connection, now: u64, grace: u64) -> Result<(), ContactError> {
    db.execute(
        "DELETE FROM invites WHERE expires_at + ?1 < ?2",
        params![grace as i64, now as i64],
    )?;
    Ok(())
}

pub(crate) fn invite(db: &Connection, id: i64) -> Result<StoredInvite, ContactError> {
    let row = db
        .query_row(
            "SELECT group_id, invite_secret, channel_secret, expires_at, used_by
             FROM invites WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, Option<Vec<u8>>>(0)?,
                    Zeroizing::new(row.get::<_, Vec<u8>>(1)?),
                    Zeroizing::new(row.get::<_, Vec<u8>>(2)?),
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                ))
            },
        )
        .optional()?
        .ok_or(ContactError::Malformed("invite row"))?;
    let (group, invite_secret, channel_secret, expires_at, used_by) = row;
    Ok(StoredInvite {
        group: group.map(GroupId),
        invite_secret: Zeroizing::new(array(&invite_secret, "invite secret")?),
        channel_secret: Zeroizing::new(array(&channel_secret, "invite channel secret")?),
        expires_at: expires_at as u64,
        used_by: used_by.map(|k| array(&k, "joiner key")).transpose()?,
    })
}

pub(crate) fn mark_invite_used(
    db: &Connection,
    id: i64,
    joiner_key: &[u8; 32],
    now: u64,
) -> Result<(), ContactError> {
    db.execute(
        "UPDATE invites SET used_by = ?2, used_at = ?3 WHERE id = ?1",
        params![id, &joiner_key[..], now as i64],
    )?;
    Ok(())
}

pub(crate) fn insert_join(
    db: &Connection,
    joiner_key: &[u8; 32],
    channel_secret: &[u8; 32],
    invite: &[u8],
    now: u64,
) -> Result<(), ContactError> {
    db.execute(
        "INSERT INTO joins (joiner_key, channel_secret, invite, state, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4)",
        params![&joiner_key[..], &channel_secret[..], invite, now as i64],
    )?;
    Ok(())
}

/// A join still waiting for its reply.
pub(crate) fn pending_join(
    db: &Connection,
    joiner_key: &[u8; 32],
) -> Result<Option<StoredJoin>, ContactError> {
    let row = db
        .query_row(
            "SELECT channel_secret, invite FROM joins WHERE joiner_key = ?1 AND state = 'pending'",
            [&joiner_key[..]],
            |row| {
                Ok((
                    Zeroizing::new(row.get::<_, Vec<u8>>(0)?),
                    Zeroizing::new(row.get::<_, Vec<u8>>(1)?),
                ))
            },
        )
        .optional()?;
    let Some((secret, invite)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredJoin {
        channel_secret: Zeroizing::new(array(&secret, "join channel secret")?),
        invite,
    }))
}

pub(crate) fn finish_join(
    db: &Connection,
    joiner_key: &[u8; 32],
    state: &str,
) -> Result<(), ContactError> {
    db.execute(
        "UPDATE joins SET state = ?2, channel_secret = x'' WHERE joiner_key = ?1",
        params![&joiner_key[..], state],
    )?;
    Ok(())
}

/// Stores (or refreshes) a verified contact and one of its devices; returns the contact id.
pub(crate) fn upsert_contact(
    db: &Connection,
    device: &VerifiedDevice,
    certificate: &DeviceCertificate,
    now: u64,
) -> Result<i64, ContactError> {
    let identity = device.identity_key.to_bytes();
    db.execute(
        "INSERT INTO contacts (identity_key, is_verified, added_at) VALUES (?1, 1, ?2)
         ON CONFLICT (identity_key) DO UPDATE SET is_verified = 1",
        params![&identity[..], now as i64],
    )?;
    let contact: i64 = db.query_row(
        "SELECT id FROM contacts WHERE identity_key = ?1",
        [&identity[..]],
        |row| row.get(0),
    )?;
    upsert_device(db, contact, device, certificate)?;
    Ok(contact)
}

pub(crate) fn upsert_device(
    db: &Connection,
    contact: i64,
    device: &VerifiedDevice,
    certificate: &DeviceCertificate,
) -> Result<(), ContactError> {
    db.execute(
        "INSERT INTO contact_devices (contact_id, device_id, address, certificate)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (contact_id, device_id) DO UPDATE SET address = ?3, certificate = ?4",
        params![
            contact,
            &device.device_id.0[..],
            device.delivery_address,
            certificate.encode()
        ],
    )?;
    Ok(())
}

/// The contact id of an identity key, if it is a contact.
pub(crate) fn contact_id(
    db: &Connection,
    identity: &IdentityPublicKey,
) -> Result<Option<i64>, ContactError> {
    Ok(db
        .query_row(
            "SELECT id FROM contacts WHERE identity_key = ?1",
            [&identity.to_bytes()[..]],
            |row| row.get(0),
        )
        .optional()?)
}

/// Adds KeyPackages to a contact device's stock (each at most once), then keeps only the newest [`STOCK`]
/// ordinary ones and the newest last-resort one.
pub(crate) fn stock_key_packages(
    db: &Connection,
    contact: i64,
    device_id: &[u8; 16],
    packages: &[(Vec<u8>, bool)],
    now: u64,
) -> Result<(), ContactError> {
    for (package, is_last_resort) in packages {
        // A package already stocked (a replayed message) is not stocked twice.
        db.execute(
            "INSERT INTO contact_key_packages
                 (contact_id, device_id, key_package, is_last_resort, received_at)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (
                 SELECT 1 FROM contact_key_packages
                 WHERE contact_id = ?1 AND device_id = ?2 AND key_package = ?3)",
            params![
                contact,
                &device_id[..],
                package,
                *is_last_resort,
                now as i64
            ],
        )?;
    }
    for (is_last_resort, keep) in [(false, STOCK), (true, 1)] {
        db.execute(
            "DELETE FROM contact_key_packages WHERE contact_id = ?1 AND device_id = ?2
               AND is_last_resort = ?3 AND id NOT IN (
                 SELECT id FROM contact_key_packages WHERE contact_id = ?1 AND device_id = ?2
                   AND is_last_resort = ?3 ORDER BY id DESC LIMIT ?4)",
            params![contact, &device_id[..], is_last_resort, keep as i64],
        )?;
    }
    Ok(())
}

/// Takes a KeyPackage of a contact device to add it with: the oldest ordinary one (removed
/// from the stock), else the last-resort one (kept).
pub(crate) fn take_key_package(
    db: &Connection,
    contact: i64,
    device_id: &[u8],
) -> Result<Option<Vec<u8>>, ContactError> {
    let row: Option<(i64, Vec<u8>, bool)> = db
        .query_row(
            "SELECT id, key_package, is_last_resort FROM contact_key_packages
             WHERE contact_id = ?1 AND device_id = ?2 ORDER BY is_last_resort, id LIMIT 1",
            params![contact, device_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((id, package, is_last_resort)) = row else {
        return Ok(None);
    };
    if !is_last_resort {
        db.execute("DELETE FROM contact_key_packages WHERE id = ?1", [id])?;
    }
    Ok(Some(package))
}

/// Every contact with its devices and stock sizes.
pub(crate) fn contacts(db: &Connection) -> Result<Vec<Contact>, ContactError> {
    let mut stmt =
        db.prepare("SELECT id, identity_key, is_verified, added_at FROM contacts ORDER BY id")?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, bool>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, identity, is_verified, added_at) = row?;
        let identity = IdentityPublicKey::from_bytes(&identity)
            .map_err(|_| ContactError::Malformed("contact identity key"))?;
        out.push(Contact {
            id,
            identity,
            is_verified,
            added_at: added_at as u64,
            devices: devices(db, id)?,
        });
    }
    Ok(out)
}

fn devices(db: &Connection, contact: i64) -> Result<Vec<ContactDevice>, ContactError> {
    let mut stmt = db.prepare(
        "SELECT d.device_id, d.address,
                (SELECT count(*) FROM contact_key_packages k
                  WHERE k.contact_id = d.contact_id AND k.device_id = d.device_id)
         FROM contact_devices d WHERE d.contact_id = ?1 ORDER BY d.address",
    )?;
    let rows = stmt.query_map([contact], |row| {
        Ok((
            row.get::<_, Vec<u8>>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (device_id, address, stocked) = row?;
        out.push(ContactDevice {
            device_id: array(&device_id, "contact device id")?,
            address,
            key_packages: stocked as usize,
        });
    }
    Ok(out)
}
