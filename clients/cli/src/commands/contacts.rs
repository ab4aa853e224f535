//! `kith invite`, `kith join`, `kith contacts`, `kith chats`, `kith group invite` and
//! `kith group add` (from a contact or a bundle).
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kith_core::client::{Client, ClientError};
use kith_core::contacts::{ContactError, Invite, JoinFailure};
use kith_core::events::Event;
use kith_core::group;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use serde_json::json;

use crate::session::{self, Until};
use crate::{group_id, print, SEND_LIMIT};

/// Runs the inbox and outbox like [`session::run`] and returns every event seen.
pub(crate) fn collect(
    client: &Arc<Client>,
    limit: Option<Duration>,
    until: Until,
) -> Result<Vec<Event>> {
    let mut seen = Vec::new();
    session::run(client, limit, until, |_, event| {
        seen.push(event.clone());
        Ok(())
    })?;
    Ok(seen)
}

fn is_answer(event: &Event) -> bool {
    matches!(
        event,
        Event::ContactAdded { .. }
            | Event::JoinFailed { .. }
            | Event::Group(group::Event::Joined { .. })
    )
}

/// The SAS lines of the contacts added among `events`, and the first join failure.
fn answers(events: &[Event]) -> (Vec<(String, String)>, Option<JoinFailure>) {
    let mut added = Vec::new();
    let mut failure = None;
    for event in events {
        match event {
            Event::ContactAdded { address, sas, .. } => added.push((address.clone(), sas.clone())),
            Event::JoinFailed { reason } => failure = failure.or(Some(*reason)),
            _ => {}
        }
    }
    (added, failure)
}

/// Shows an invite (QR code, link, https form) in text mode; returns its JSON fields.
fn show_invite(invite: &Invite, json: bool) -> Result<serde_json::Value> {
    let value = json!({
        "uri": invite.uri,
        "https_url": invite.https_url,
        "address": invite.payload.delivery_address,
        "expires_at": invite.payload.expires_at,
    });
    if !json {
        let code = QrCode::new(invite.uri.as_bytes()).context("making the QR code")?;
        let qr = code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build();
        println!("{qr}\n{}\n{}", invite.uri, invite.https_url);
    }
    Ok(value)
}

/// `kith invite`: a one-time contact invite; with `wait`, stays online for the answer.
pub(crate) fn invite(client: &Arc<Client>, ttl: u64, wait: u64, json: bool) -> Result<()> {
    let invite = client.create_invite(ttl)?;
    let value = show_invite(&invite, json)?;
    wait_for_joiner(client, value, wait, json)
}

/// `kith group invite GROUP`: a one-time invite into the group.
pub(crate) fn group_invite(
    client: &Arc<Client>,
    group: &str,
    ttl: u64,
    wait: u64,
    json: bool,
) -> Result<()> {
    let invite = client.create_group_invite(&group_id(group)?, ttl)?;
    let value = show_invite(&invite, json)?;
    wait_for_joiner(client, value, wait, json)
}

/// With `wait`, syncs until someone joined (or the time is up) and reports it; in JSON
/// mode prints the invite's fields and what happened as one object.
fn wait_for_joiner(
    client: &Arc<Client>,
    mut value: serde_json::Value,
    wait: u64,
    json: bool,
) -> Result<()> {
    if wait > 0 {
        let limit = Some(Duration::from_secs(wait));
        let events = collect(client, limit, Until::Event(is_answer))?;
        merge(&mut value, report(&events, json));
    }
    if json {
        println!("{value}");
    }
    Ok(())
}

/// Adds the fields of `extra` (an object) to `value` (an object).
pub(crate) fn merge(value: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(target), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        target.extend(extra);
    }
}

/// In text mode prints one line per contact added and per join that failed among
/// `events` (the code is what both people compare); returns the same as JSON fields.
pub(crate) fn report(events: &[Event], json: bool) -> serde_json::Value {
    let (added, failure) = answers(events);
    let failure = failure.map(|reason| Refused(reason).to_string());
    if !json {
        for (address, sas) in &added {
            println!("contact added: {address}, code {sas}");
        }
        if let Some(text) = &failure {
            println!("{text}");
        }
    }
    let added: Vec<_> = added
        .into_iter()
        .map(|(address, sas)| json!({ "contact": address, "sas": sas }))
        .collect();
    json!({ "contacts_added": added, "join_failed": failure })
}

/// `kith join LINK`: sends the join request; with `wait`, stays online for the answer.
pub(crate) fn join(client: &Arc<Client>, link: &str, wait: u64, json: bool) -> Result<()> {
    let joining = client.join(link)?;
    let fingerprint = joining.inviter.to_uri();
    let value = json!({ "sas": joining.sas, "inviter": fingerprint, "group": joining.is_group });
    let text = format!(
        "join request sent to {fingerprint}; compare the code {} with the inviter's screen",
        joining.sas
    );
    if wait == 0 {
        session::send_queued(client, SEND_LIMIT)?;
        return print(json, &value, &text);
    }
    let events = collect(
        client,
        Some(Duration::from_secs(wait)),
        Until::Event(is_answer),
    )?;
    let (added, failure) = answers(&events);
    if let Some(reason) = failure {
        return Err(Refused(reason).into());
    }
    let joined = events
        .iter()
        .any(|e| matches!(e, Event::Group(group::Event::Joined { .. })));
    if added.is_empty() && !joined {
        bail!(Pending);
    }
    print(json, &value, &text)
}

/// The inviter did not answer within the wait (exit code 7).
#[derive(Debug)]
pub(crate) struct Pending;

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the request is sent but the inviter has not answered yet; run `kith sync` later",
        )
    }
}

impl std::error::Error for Pending {}

/// The inviter refused the join, or its identity did not match the link (exit code 5).
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) JoinFailure);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            JoinFailure::AlreadyUsed => {
                f.write_str("the inviter refused: this invite was already used")
            }
            JoinFailure::Expired => f.write_str("the inviter refused: this invite had expired"),
            JoinFailure::FingerprintMismatch => {
                f.write_str("the inviter's identity does not match the link; no contact was made")
            }
            _ => f.write_str("the join failed"),
        }
    }
}

impl std::error::Error for Refused {}

/// `kith contacts`.
pub(crate) fn contacts(client: &Client, json: bool) -> Result<()> {
    let contacts = client.contacts()?;
    if json {
        let list: Vec<_> = contacts
            .iter()
            .map(|c| {
                let devices: Vec<_> = c
                    .devices
                    .iter()
                    .map(|d| json!({ "address": d.address, "key_packages": d.key_packages }))
                    .collect();
                json!({ "fingerprint": hex::encode(c.fingerprint().as_bytes()),
                        "verified": c.is_verified, "devices": devices })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    for c in contacts {
        let addresses: Vec<_> = c.devices.iter().map(|d| d.address.as_str()).collect();
        let verified = if c.is_verified {
            "verified"
        } else {
            "unverified"
        };
        println!(
            "{} {verified} {}",
            c.fingerprint().to_uri(),
            addresses.join(" ")
        );
    }
    Ok(())
}

/// `kith chats`.
pub(crate) fn chats(client: &Client, json: bool) -> Result<()> {
    let chats = client.chats()?;
    if json {
        let list: Vec<_> = chats
            .iter()
            .map(|c| json!({ "group": hex::encode(&c.group.0), "name": c.name, "messages": c.messages }))
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    for c in chats {
        println!(
            "{} {} ({} messages)",
            hex::encode(&c.group.0),
            c.name,
            c.messages
        );
    }
    Ok(())
}

/// `kith group add GROUP MEMBER`: MEMBER is a contact (address or fingerprint) or a bundle.
pub(crate) fn group_add(client: &Arc<Client>, group: &str, member: &str, json: bool) -> Result<()> {
    let group = group_id(group)?;
    match client.find_contact(member) {
        Ok(contact) => client.add_contact_to_group(&group, &contact)?,
        Err(ClientError::Contact(ContactError::UnknownContact(_))) => {
            let Ok(bundle) = hex::decode(member.trim()) else {
                return Err(
                    ClientError::from(ContactError::UnknownContact(member.to_owned())).into(),
                );
            };
            client.add_member(&group, &bundle)?;
        }
        Err(other) => return Err(other.into()),
    }
    session::send_queued(client, SEND_LIMIT)?;
    print(json, &json!({ "added": true }), "added")
}
