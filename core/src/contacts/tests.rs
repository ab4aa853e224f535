//! The handshake between real clients (real SQLite files in a temporary directory), with
//! envelopes carried by hand from one outbox to the other inbox handler, and time chosen
//! by the test.
use kith_crypto::fingerprint::Fingerprint;
use kith_crypto::invite::{InviteKind, InvitePayload};

use super::{ContactError, JoinFailure, Via, STOCK};
use crate::account::Account;
use crate::client::{Client, ClientError};
use crate::events::Event;
use crate::group;
use crate::transport::RelayEndpoint;

fn client(dir: &tempfile::TempDir, name: &str) -> Client {
    let account = Account::create(
        &dir.path().join(name),
        RelayEndpoint::standard("relay.test"),
    )
    .unwrap();
    Client::new(account).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Takes every envelope out of `from`'s outbox: (envelope, recipients).
fn drain(from: &Client) -> Vec<(Vec<u8>, Vec<String>)> {
    from.account()
        .database()
        .transaction(|tx| {
            let mut stmt = tx.prepare("SELECT envelope, recipients FROM outbox ORDER BY id")?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get::<_, String>(1)?)))?
                .collect::<Result<Vec<(Vec<u8>, String)>, _>>()?;
            drop(stmt);
            tx.execute("DELETE FROM outbox", [])?;
            Ok::<_, crate::db::DbError>(rows)
        })
        .unwrap()
        .into_iter()
        .map(|(env, to)| (env, serde_json::from_str(&to).unwrap()))
        .collect()
}

/// Hands each envelope addressed to `to` to its handler at `at`; returns the events.
fn deliver(
    to: &Client,
    envelopes: &[(Vec<u8>, Vec<String>)],
    at: u64,
) -> Result<Vec<Event>, ClientError> {
    let mut events = Vec::new();
    for (envelope, recipients) in envelopes {
        if recipients.iter().any(|r| r == to.account().address()) {
            let more = to
                .account()
                .database()
                .transaction(|tx| to.handle_envelope(tx, at, envelope))?;
            events.extend(more);
        }
    }
    Ok(events)
}

fn sas_of(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ContactAdded { sas, .. } => Some(sas.clone()),
            _ => None,
        })
        .collect()
}

fn failures(events: &[Event]) -> Vec<JoinFailure> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::JoinFailed { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn invite_join_makes_verified_contacts_with_stocked_key_packages_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (client(&dir, "a"), client(&dir, "b"));
    let invite = a.create_invite(3600).unwrap();
    assert!(invite.https_url.starts_with("https://relay.test/i1#"));
    let joining = b.join(&invite.uri).unwrap();
    assert_eq!(
        joining.inviter,
        Fingerprint::of(&a.account().identity().public_key())
    );
    let request = drain(&b);
    assert_eq!(request.len(), 1);
    let at_a = deliver(&a, &request, now()).unwrap();
    assert_eq!(sas_of(&at_a), vec![joining.sas.clone()]);
    let at_b = deliver(&b, &drain(&a), now()).unwrap();
    assert_eq!(sas_of(&at_b), vec![joining.sas.clone()]);

    let a_contacts = a.contacts().unwrap();
    let b_contacts = b.contacts().unwrap();
    assert_eq!(a_contacts.len(), 1);
    assert_eq!(b_contacts.len(), 1);
    assert_eq!(a_contacts[0].identity, b.account().identity().public_key());
    assert_eq!(b_contacts[0].identity, a.account().identity().public_key());
    assert!(a_contacts[0].is_verified && b_contacts[0].is_verified);
    assert_eq!(a_contacts[0].devices[0].address, b.account().address());
    assert_eq!(a_contacts[0].devices[0].key_packages, STOCK + 1);
    assert_eq!(b_contacts[0].devices[0].key_packages, STOCK + 1);
    assert_eq!(
        a.find_contact(b.account().address()).unwrap().id,
        a_contacts[0].id
    );
    let fp = hex::encode(a_contacts[0].fingerprint().as_bytes());
    assert_eq!(a.find_contact(&fp).unwrap().id, a_contacts[0].id);

    // A group from the contact: one KeyPackage is used; B joins and replenishes A's stock.
    let group = a.create_group("friends").unwrap();
    a.add_contact_to_group(&group, &a_contacts[0]).unwrap();
    assert_eq!(a.contacts().unwrap()[0].devices[0].key_packages, STOCK);
    let at_b = deliver(&b, &drain(&a), now()).unwrap();
    assert!(at_b.contains(&Event::Group(group::Event::Joined {
        group: group.clone()
    })));
    let refill = drain(&b);
    assert_eq!(refill.len(), 1);
    deliver(&a, &refill, now()).unwrap();
    assert_eq!(a.contacts().unwrap()[0].devices[0].key_packages, STOCK + 1);
    // The same refill again (a replay under a new Message-ID): nothing is stocked twice.
    deliver(&a, &refill, now()).unwrap();
    let distinct: i64 = a
        .account()
        .database()
        .read(|db| {
            Ok(db.query_row(
                "SELECT count(DISTINCT key_package) FROM contact_key_packages",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(distinct as usize, STOCK + 1);
    assert_eq!(a.contacts().unwrap()[0].devices[0].key_packages, STOCK + 1);
    assert_eq!(b.chats().unwrap()[0].group, group);
}

#[test]
fn duplicates_change_nothing_and_a_second_joiner_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (client(&dir, "a"), client(&dir, "b"), client(&dir, "c"));
    let invite = a.create_invite(3600).unwrap();
    b.join(&invite.uri).unwrap();
    let request = drain(&b);
    deliver(&a, &request, now()).unwrap();
    let reply = drain(&a);
    // The same request again: no event, no answer, still one contact.
    assert!(deliver(&a, &request, now()).unwrap().is_empty());
    assert!(drain(&a).is_empty());
    deliver(&b, &reply, now()).unwrap();
    assert!(deliver(&b, &reply, now()).unwrap().is_empty());
    assert_eq!(b.contacts().unwrap().len(), 1);

    // C photographed the link: the inviter refuses, explicitly, and C learns it.
    c.join(&invite.https_url).unwrap();
    assert!(sas_of(&deliver(&a, &drain(&c), now()).unwrap()).is_empty());
    let at_c = deliver(&c, &drain(&a), now()).unwrap();
    assert_eq!(failures(&at_c), vec![JoinFailure::AlreadyUsed]);
    assert_eq!(a.contacts().unwrap().len(), 1);
    assert!(c.contacts().unwrap().is_empty());
}

#[test]
fn expired_links_are_refused_by_the_joiner_and_late_requests_by_the_inviter() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (client(&dir, "a"), client(&dir, "b"));
    let invite = a.create_invite(60).unwrap();
    let mut stale = invite.payload.clone();
    stale.expires_at = 1_000;
    let error = b.join(&stale.to_uri().unwrap()).unwrap_err();
    assert!(matches!(
        error,
        ClientError::Contact(ContactError::Expired { expires_at: 1_000 })
    ));
    assert!(drain(&b).is_empty());

    b.join(&invite.uri).unwrap();
    let late = invite.payload.expires_at + 1;
    assert!(sas_of(&deliver(&a, &drain(&b), late).unwrap()).is_empty());
    let at_b = deliver(&b, &drain(&a), late).unwrap();
    assert_eq!(failures(&at_b), vec![JoinFailure::Expired]);
    assert!(a.contacts().unwrap().is_empty() && b.contacts().unwrap().is_empty());
    assert!(matches!(
        a.create_invite(0),
        Err(ClientError::Contact(ContactError::BadTtl(0)))
    ));
}

#[test]
fn tampered_links_and_channel_messages_are_refused_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (client(&dir, "a"), client(&dir, "b"));
    let invite = a.create_invite(3600).unwrap();
    let mut damaged = invite.uri.clone();
    damaged.truncate(damaged.len() - 3);
    assert!(matches!(
        b.join(&damaged),
        Err(ClientError::Contact(ContactError::Link(_)))
    ));
    assert!(matches!(
        a.join(&invite.uri),
        Err(ClientError::Contact(ContactError::OwnInvite))
    ));

    // A join request whose channel message was altered fails the channel's tag.
    b.join(&invite.uri).unwrap();
    let request = drain(&b);
    let frame = a
        .account()
        .database()
        .transaction(|tx| {
            let id: i64 = tx.query_row("SELECT id FROM invites", [], |r| r.get(0))?;
            let key = {
                let invites = super::store::live_invites(tx, now(), 0).unwrap();
                let secret = kith_crypto::invite::InviteSecret::from_bytes(*invites[0].1);
                *kith_crypto::channel::first_message_key(&secret)
            };
            let key = kith_crypto::envelope::SymmetricKey::new(
                kith_crypto::envelope::SymmetricKind::Invite,
                key,
            );
            let frame = kith_crypto::envelope::open(
                &request[0].0,
                kith_crypto::envelope::OpenKey::Symmetric(&key),
            )
            .unwrap();
            Ok::<_, crate::db::DbError>((id, frame))
        })
        .unwrap();
    let (id, mut frame) = frame;
    let last = frame.payload.len() - 1;
    frame.payload[last] ^= 1;
    let result = a.account().database().transaction(|tx| {
        a.handshake()
            .receive(tx, now(), &frame.payload, Via::Invite(id))
            .map_err(ClientError::from)
    });
    assert!(matches!(
        result,
        Err(ClientError::Contact(ContactError::Channel(_)))
    ));
    // The invite is still unused: the genuine request still works.
    assert_eq!(sas_of(&deliver(&a, &request, now()).unwrap()).len(), 1);
}

#[test]
fn a_link_whose_fingerprint_is_not_the_inviters_makes_no_contact() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (client(&dir, "a"), client(&dir, "b"), client(&dir, "c"));
    let invite = a.create_invite(3600).unwrap();
    let mut forged = invite.payload.clone();
    forged.kind = InviteKind::Contact {
        fingerprint: Fingerprint::of(&c.account().identity().public_key()),
    };
    b.join(&forged.to_uri().unwrap()).unwrap();
    deliver(&a, &drain(&b), now()).unwrap();
    let at_b = deliver(&b, &drain(&a), now()).unwrap();
    assert_eq!(failures(&at_b), vec![JoinFailure::FingerprintMismatch]);
    assert!(b.contacts().unwrap().is_empty());
}

#[test]
fn a_stranger_joins_a_group_with_a_group_invite() {
    let dir = tempfile::tempdir().unwrap();
    let (a, d) = (client(&dir, "a"), client(&dir, "d"));
    let group = a.create_group("club").unwrap();
    let invite = a.create_group_invite(&group, 3600).unwrap();
    let payload = InvitePayload::parse(&invite.uri).unwrap();
    assert!(matches!(payload.kind, InviteKind::Group { .. }));
    let joining = d.join(&invite.uri).unwrap();
    assert!(joining.is_group);
    deliver(&a, &drain(&d), now()).unwrap();
    let at_d = deliver(&d, &drain(&a), now()).unwrap();
    assert!(at_d.contains(&Event::Group(group::Event::Joined {
        group: group.clone()
    })));
    assert_eq!(d.groups().unwrap(), vec![group.clone()]);
    // Nobody became anybody's contact.
    assert!(a.contacts().unwrap().is_empty() && d.contacts().unwrap().is_empty());
}
