//! kith-demo: the main job on the embedded default. Starts a local Kith relay (real TLS
//! listeners on loopback, a real SQLite store in a temporary directory), creates two
//! devices' relay accounts the chatmail way, and has them exchange end-to-end encrypted
//! envelopes through it: SMTP submission in, IMAP IDLE push out, fetch and delete.
//!
//! It prints what each side does and exactly what the relay could see of each message.
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kith_core::events::Event;
use kith_core::group;
use kith_crypto::envelope::{self, SealKey};
use kith_crypto::frame::{Frame, FrameKind};
use kith_e2e::group::ClientDevice;
use kith_e2e::{imap_login, receive, start_relay, submit, Device, Imap, LocalRelay, PATIENCE};
use kith_relay::context::unix_now;
use tokio_util::sync::CancellationToken;

fn describe_what_the_relay_sees(mail: &[u8]) -> Result<String> {
    let packets = envelope::envelope_packets(mail)?;
    let names: Vec<String> = packets
        .iter()
        .map(|p| {
            let name = match p.tag {
                1 => "PKESK",
                3 => "SKESK",
                18 => "SEIPD",
                _ => "packet",
            };
            let version = p.version.map(|v| format!(" v{v}")).unwrap_or_default();
            format!("{name}{version} ({} bytes)", p.body_len)
        })
        .collect();
    Ok(format!(
        "a {}-byte message from the sender's address holding {}",
        mail.len(),
        names.join(" + ")
    ))
}

async fn exchange(
    relay: &LocalRelay,
    from: &Device,
    recipient: &Arc<Device>,
    imap: Imap,
    text: &str,
) -> Result<Imap> {
    let frame = Frame {
        kind: FrameKind::Mls,
        payload: text.as_bytes().to_vec(),
    };
    let public = recipient.keys.public();
    let mail = envelope::seal(
        &frame,
        SealKey::Device(&public),
        &from.address,
        unix_now() as u64,
        &mut rand::rngs::OsRng,
    )?;
    println!("{} -> {}: {text:?}", from.name, recipient.name);
    println!("  the relay sees: {}", describe_what_the_relay_sees(&mail)?);
    // The recipient is already waiting in IDLE when the message is submitted.
    let receiving = tokio::spawn({
        let device = Arc::clone(recipient);
        async move { receive(imap, &device).await }
    });
    submit(relay, from, recipient, &mail).await?;
    let (imap, opened, waited) = receiving.await??;
    if opened != text {
        bail!("{} opened {opened:?}, expected {text:?}", recipient.name);
    }
    println!(
        "  {} was woken by IMAP IDLE, fetched and opened it {} ms after it started waiting, and deleted it from the relay",
        recipient.name,
        waited.as_millis()
    );
    Ok(imap)
}

#[tokio::main]
async fn main() -> Result<()> {
    let relay = start_relay().await.context("starting the local relay")?;
    println!(
        "A Kith relay is running on 127.0.0.1 (SMTP submission {}, IMAP {}).",
        relay.submissions, relay.imaps
    );
    let (alice, bob) = (Arc::new(Device::new("alice")), Arc::new(Device::new("bob")));
    let alice_imap = imap_login(&relay, &alice).await?;
    let bob_imap = imap_login(&relay, &bob).await?;
    println!(
        "Relay accounts created on first login: alice = {}, bob = {}",
        alice.address, bob.address
    );
    let hello = "Hello Bob! Only your device can read this.";
    exchange(&relay, &alice, &bob, bob_imap, hello).await?;
    exchange(
        &relay,
        &bob,
        &alice,
        alice_imap,
        "Hi Alice, received and decrypted.",
    )
    .await?;
    let plaintext = format!(
        "From: <{}>\r\nSubject: hi\r\n\r\nnot encrypted\r\n",
        alice.address
    );
    let refused = submit(&relay, &alice, &bob, plaintext.as_bytes()).await;
    println!(
        "A plaintext message is refused by the relay: {}",
        refused
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "ACCEPTED (bug)".into())
    );
    group_chat(&relay).await.context("the group chat")?;
    for device in [&alice, &bob] {
        let left = relay
            .ctx
            .store
            .mailbox_status(&device.address)
            .await?
            .exists;
        println!("Messages left on the relay for {}: {left}", device.name);
    }
    relay.ctx.shutdown.cancel();
    Ok(())
}

/// Three full clients in one MLS group through the same relay; one is removed.
async fn group_chat(relay: &LocalRelay) -> Result<()> {
    println!("\nAn MLS group through the same relay (kith-core clients: MLS group engine,");
    println!("envelopes under epoch keys, IMAP IDLE inbox, SMTP outbox):");
    let dirs = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let mut devices = Vec::new();
    for name in ["alice", "bob", "carol"] {
        devices.push(ClientDevice::start(relay, dirs.path().join(name), name, &stop).await?);
    }
    let [alice, bob, carol] = &mut devices[..] else {
        unreachable!("three devices")
    };
    let chat = alice.client.create_group("demo")?;
    for peer in [&mut *bob, &mut *carol] {
        alice.client.add_member(&chat, &peer.client.bundle()?)?;
        let joined = |e: &Event| matches!(e, Event::Group(group::Event::Joined { .. }));
        peer.wait_for(joined).await?;
        println!("  alice added {}, who joined from the Welcome", peer.name);
    }
    alice
        .client
        .send_text(&chat, "Hi both, this is an MLS group.")?;
    bob.wait_for_message().await?;
    carol.wait_for_message().await?;
    println!(
        "  bob shows {:?}; carol shows {:?}",
        bob.texts(&chat)?,
        carol.texts(&chat)?
    );
    alice.client.remove_member(&chat, carol.address())?;
    let secret = "Carol was removed and cannot read this.";
    alice.client.send_text(&chat, secret)?;
    bob.wait_for_message().await?;
    wait_until_fetched(relay, carol.address()).await?;
    println!(
        "  after alice removed carol: bob shows {:?}",
        bob.texts(&chat)?
    );
    println!("  carol shows {:?}", carol.texts(&chat)?);
    if carol.texts(&chat)?.iter().any(|t| t == secret) {
        bail!("a removed member read a message sent after her removal");
    }
    stop.cancel();
    Ok(())
}

/// Waits until a device has fetched (and deleted) everything the relay held for it.
async fn wait_until_fetched(relay: &LocalRelay, address: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + PATIENCE;
    while relay.ctx.store.mailbox_status(address).await?.exists > 0 {
        if std::time::Instant::now() > deadline {
            bail!("{address} never fetched its messages");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}
