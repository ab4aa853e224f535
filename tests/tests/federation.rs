//! The whole path with real processes: two `kith-relay` processes federating over SMTP,
//! three users on them — Alice with two devices, one on each relay — in one MLS group;
//! texts, a reply, a reaction and a file cross the federation; Bob's client is stopped
//! mid-conversation and restarted from disk; Carol is removed and reads nothing new.
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kith_core::account::Account;
use kith_core::client::{ChatMessage, MessageBody};
use kith_core::events::Event;
use kith_core::group::{self, GroupId};
use kith_crypto::identity::IdentityKey;
use kith_e2e::group::ClientDevice;
use kith_e2e::process::RelayProcess;
use kith_e2e::PATIENCE;
use tokio_util::sync::CancellationToken;

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

fn account(dir: &Path, relay: &RelayProcess) -> Result<Account> {
    Ok(Account::create(dir, relay.endpoint()?)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_users_four_devices_two_federating_relays() -> Result<()> {
    let mut alpha = RelayProcess::prepare("alpha.test", |_| {})?;
    let mut beta = RelayProcess::prepare("beta.test", |_| {})?;
    alpha.route_to(&beta)?;
    beta.route_to(&alpha)?;
    alpha.spawn()?;
    beta.spawn()?;
    let dirs = tempfile::tempdir()?;
    let dir = |name: &str| dirs.path().join(name);
    let stop = CancellationToken::new();

    let alice1 = ClientDevice::launch(account(&dir("alice1"), &alpha)?, "alice1", &stop).await?;
    // Alice's second device: same identity, its own address on the other relay.
    let identity = IdentityKey::from_bytes(&alice1.client.account().identity().to_bytes()[..])?;
    let alice2_account = Account::create_device(&dir("alice2"), beta.endpoint()?, identity)?;
    let mut alice2 = ClientDevice::launch(alice2_account, "alice2", &stop).await?;
    let bob_stop = CancellationToken::new();
    let mut bob = ClientDevice::launch(account(&dir("bob"), &beta)?, "bob", &bob_stop).await?;
    let mut carol = ClientDevice::launch(account(&dir("carol"), &alpha)?, "carol", &stop).await?;

    let group = alice1.client.create_group("across relays")?;
    for device in [&bob, &carol, &alice2] {
        alice1.client.add_member(&group, &device.client.bundle()?)?;
    }
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
    let bob = ClientDevice::launch(Account::open(&dir("bob"))?, "bob", &bob_stop).await?;
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
    alice1.client.send_text(&group, "after Carol")?;
    for device in [&alice2, &bob] {
        history_until(device, &group, has_text("after Carol")).await?;
    }
    assert_eq!(alice1.client.members(&group)?.len(), 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!texts(&carol.client.history(&group)?).contains(&"after Carol"));

    stop.cancel();
    bob_stop.cancel();
    alpha.stop()?;
    beta.stop()?;
    Ok(())
}
