//! The end-to-end group scenario every deployment must pass, whatever the servers are (two
//! federating Kith relays, or a standard Postfix + Dovecot): three users, Alice with two
//! devices; Bob and Carol become Alice's contacts by invite and join; texts, a reply, a reaction and a chunked file; Bob's client stopped
//! mid-conversation and restarted from disk; Carol removed and reading nothing new.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kith_core::account::Account;
use kith_core::client::{ChatMessage, MessageBody};
use kith_core::events::Event;
use kith_core::group::{self, GroupId};
use tokio_util::sync::CancellationToken;

use crate::group::ClientDevice;
use crate::PATIENCE;

/// The four devices' accounts, created by the caller on whatever servers it tests.
pub struct Accounts {
    /// Alice's first device.
    pub alice1: Account,
    /// Alice's second device (same identity key as `alice1`).
    pub alice2: Account,
    /// Bob's device; its client is restarted from `bob_dir` midway.
    pub bob: Account,
    /// Where Bob's account lives.
    pub bob_dir: PathBuf,
    /// Carol's device; Carol is removed midway.
    pub carol: Account,
}

/// Runs the scenario; fails with what went wrong.
pub async fn run(accounts: Accounts) -> Result<()> {
    let stop = CancellationToken::new();
    let bob_stop = CancellationToken::new();
    let alice1 = ClientDevice::launch(accounts.alice1, "alice1", &stop).await?;
    let mut alice2 = ClientDevice::launch(accounts.alice2, "alice2", &stop).await?;
    let mut bob = ClientDevice::launch(accounts.bob, "bob", &bob_stop).await?;
    let mut carol = ClientDevice::launch(accounts.carol, "carol", &stop).await?;
    let result = async {
        // Bob and Carol become Alice's verified contacts through the invite handshake
        // (both sides see the same code); Alice's own second device is added by bundle.
        for device in [&mut bob, &mut carol] {
            become_contacts(&alice1, device).await?;
        }
        let group = alice1.client.create_group("everyone")?;
        for device in [&bob, &carol] {
            let contact = alice1.client.find_contact(device.address())?;
            alice1.client.add_contact_to_group(&group, &contact)?;
        }
        alice1.client.add_member(&group, &alice2.client.bundle()?)?;
        for device in [&mut bob, &mut carol, &mut alice2] {
            joined(device, &group).await?;
        }
        let members = alice1.client.members(&group)?;
        assert_eq!(members.len(), 4);
        let alice_identity = alice1.client.account().identity().public_key();
        let alice_devices = members
            .iter()
            .filter(|m| m.identity == alice_identity)
            .count();
        assert_eq!(alice_devices, 2, "both of Alice's devices are leaves");

        // Texts, a reply, a reaction and a file, each crossing the federation.
        let hello = alice1.client.send_text(&group, "hello from alpha")?;
        history_until(&bob, &group, has_text("hello from alpha")).await?;
        bob.client.reply(&group, &hello, "hello from beta")?;
        bob.client.react(&group, &hello, "🎉", false)?;
        alice2.client.set_file_chunk_len(1024);
        let photo: Vec<u8> = (0..2_500u32).map(|i| (i * 31 % 256) as u8).collect();
        let file = alice2
            .client
            .send_file(&group, "photo.jpg", "image/jpeg", &photo)?;
        for device in [&alice1, &alice2, &bob, &carol] {
            let history = history_until(device, &group, |h| {
                h.len() == 3 && h[0].reactions.contains_key("🎉")
            })
            .await?;
            assert_eq!(texts(&history), ["hello from alpha", "hello from beta"]);
            let reply = history
                .iter()
                .find(|m| m.body == MessageBody::Text("hello from beta".into()))
                .context("the reply")?;
            assert_eq!(reply.reply_to.as_deref(), Some(hello.as_str()));
            let received = device.client.file(&file)?.context("the file arrived")?;
            assert_eq!(received.bytes, photo, "{}", device.name);
        }

        // Bob's client stops mid-conversation; what is sent meanwhile waits on his relay.
        bob_stop.cancel();
        drop(bob);
        alice1.client.send_text(&group, "while Bob was away, 1")?;
        carol.client.send_text(&group, "while Bob was away, 2")?;
        history_until(&alice2, &group, has_text("while Bob was away, 2")).await?;
        let bob_stop = CancellationToken::new();
        let bob = ClientDevice::launch(Account::open(&accounts.bob_dir)?, "bob", &bob_stop).await?;
        let history = history_until(&bob, &group, |h| h.len() == 5).await?;
        // Messages of different senders in the same second may show in either order.
        let mut shown = texts(&history);
        shown.sort_unstable();
        assert_eq!(
            shown,
            [
                "hello from alpha",
                "hello from beta",
                "while Bob was away, 1",
                "while Bob was away, 2"
            ],
            "each message once, nothing lost across the restart"
        );
        bob.client.send_text(&group, "back again")?;
        history_until(&carol, &group, has_text("back again")).await?;

        // Carol is removed; from then on she reads nothing.
        let carol_address = carol.address().to_owned();
        alice2.client.remove_member(&group, &carol_address)?;
        let removed = group::Event::Removed {
            group: group.clone(),
        };
        carol
            .wait_for(|e| matches!(e, Event::Group(g) if *g == removed))
            .await?;
        // "After" means after the sender has the removal: until then a message in the old
        // epoch is rightly Carol's to read (she was a member when it was sent).
        for device in [&alice1, &bob] {
            members_until(device, &group, 3).await?;
        }
        alice1.client.send_text(&group, "after Carol")?;
        for device in [&alice2, &bob] {
            history_until(device, &group, has_text("after Carol")).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!texts(&carol.client.history(&group)?).contains(&"after Carol"));

        bob_stop.cancel();
        Ok(())
    }
    .await;
    stop.cancel();
    bob_stop.cancel();
    result
}

/// Polls `device`'s history of `group` until `ready` holds (up to [`PATIENCE`]).
async fn history_until(
    device: &ClientDevice,
    group: &GroupId,
    ready: impl Fn(&[ChatMessage]) -> bool,
) -> Result<Vec<ChatMessage>> {
    let started = Instant::now();
    loop {
        let history = device.client.history(group)?;
        if ready(&history) {
            return Ok(history);
        }
        if started.elapsed() > PATIENCE {
            bail!("{}: history never got there: {history:#?}", device.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `inviter` shows an invite, `joiner` joins with it; both must end with each other as a
/// verified contact and the same 6-digit code.
async fn become_contacts(inviter: &ClientDevice, joiner: &mut ClientDevice) -> Result<()> {
    let invite = inviter.client.create_invite(600)?;
    let mut inviter_events = inviter.client.account().events().subscribe();
    let joining = joiner.client.join(&invite.uri)?;
    let added = |e: &Event| matches!(e, Event::ContactAdded { .. });
    let Event::ContactAdded {
        sas: joiner_sas, ..
    } = joiner.wait_for(added).await?
    else {
        bail!("not a ContactAdded event");
    };
    let inviter_sas = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(Event::ContactAdded { sas, .. }) = inviter_events.recv().await {
                return sas;
            }
        }
    })
    .await
    .context("the inviter never added the contact")?;
    if joiner_sas != inviter_sas || joiner_sas != joining.sas {
        bail!("the two screens show different codes: {joiner_sas} / {inviter_sas}");
    }
    let contact = inviter.client.find_contact(joiner.address())?;
    if !contact.is_verified {
        bail!("{} is not a verified contact", joiner.name);
    }
    Ok(())
}

/// Polls until `device` counts `count` member devices in `group` (up to [`PATIENCE`]).
async fn members_until(device: &ClientDevice, group: &GroupId, count: usize) -> Result<()> {
    let started = Instant::now();
    while device.client.members(group)?.len() != count {
        if started.elapsed() > PATIENCE {
            bail!("{}: the group never had {count} members", device.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn texts(history: &[ChatMessage]) -> Vec<&str> {
    history
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn has_text(text: &'static str) -> impl Fn(&[ChatMessage]) -> bool {
    move |history| texts(history).contains(&text)
}

async fn joined(device: &mut ClientDevice, group: &GroupId) -> Result<()> {
    let wanted = group::Event::Joined {
        group: group.clone(),
    };
    device
        .wait_for(|e| matches!(e, Event::Group(g) if *g == wanted))
        .await
        .map(drop)
}
