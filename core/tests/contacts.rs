//! Contacts end to end through a real kith-relay in process: A invites, B joins, both end
//! up with each other as verified contacts (same SAS), A makes a group from the contact
//! and they talk; a stranger joins another group with a group invite; a second joiner of
//! a used invite is refused.
#[path = "support/devices.rs"]
mod devices;
#[path = "transport/harness.rs"]
#[allow(dead_code)]
mod harness;

use devices::{device, Device};
use harness::{wait_for_event, Relay};
use kith_core::contacts::JoinFailure;
use kith_core::content::Content;
use kith_core::events::Event;
use kith_core::group::{self, GroupId};
use tokio_util::sync::CancellationToken;

async fn added_sas(device: &mut Device) -> String {
    match wait_for_event(&mut device.events, |e| {
        matches!(e, Event::ContactAdded { .. })
    })
    .await
    {
        Event::ContactAdded { sas, .. } => sas,
        _ => unreachable!("filtered"),
    }
}

async fn joined(device: &mut Device, group: &GroupId) {
    let wanted = group::Event::Joined {
        group: group.clone(),
    };
    wait_for_event(&mut device.events, |e| *e == Event::Group(wanted.clone())).await;
}

fn texts(device: &Device, group: &GroupId) -> Vec<(String, bool)> {
    device
        .client
        .messages(group)
        .unwrap()
        .into_iter()
        .map(|m| match m.content {
            Content::Text { body, .. } => (body, m.is_outgoing),
            other => panic!("unexpected content {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_join_contacts_group_and_messages_through_the_relay() {
    let relay = Relay::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let mut a = device(&relay, &dirs, "a", &stop).await;
    let mut b = device(&relay, &dirs, "b", &stop).await;
    let mut c = device(&relay, &dirs, "c", &stop).await;

    let invite = a.client.create_invite(600).unwrap();
    let joining = b.client.join(&invite.uri).unwrap();
    assert_eq!(added_sas(&mut a).await, joining.sas);
    assert_eq!(added_sas(&mut b).await, joining.sas);
    let contact_b = a.client.find_contact(b.client.account().address()).unwrap();
    let contact_a = b.client.find_contact(a.client.account().address()).unwrap();
    assert!(contact_a.is_verified && contact_b.is_verified);
    assert_eq!(
        contact_b.identity,
        b.client.account().identity().public_key()
    );

    // C photographed the QR code: A refuses, and C hears so.
    c.client.join(&invite.https_url).unwrap();
    let refused = wait_for_event(&mut c.events, |e| matches!(e, Event::JoinFailed { .. })).await;
    assert_eq!(
        refused,
        Event::JoinFailed {
            reason: JoinFailure::AlreadyUsed
        }
    );
    assert_eq!(a.client.contacts().unwrap().len(), 1);

    // A group from the contact, and a text each way.
    let group = a.client.create_group("friends").unwrap();
    a.client.add_contact_to_group(&group, &contact_b).unwrap();
    joined(&mut b, &group).await;
    a.client.send_text(&group, "hello contact").unwrap();
    wait_for_event(&mut b.events, |e| {
        matches!(e, Event::MessageReceived { .. })
    })
    .await;
    b.client.send_text(&group, "hello back").unwrap();
    wait_for_event(&mut a.events, |e| {
        matches!(e, Event::MessageReceived { .. })
    })
    .await;
    assert_eq!(
        texts(&b, &group),
        vec![("hello contact".into(), false), ("hello back".into(), true)]
    );

    // C, nobody's contact, joins a second group through a group invite.
    let club = a.client.create_group("club").unwrap();
    let group_invite = a.client.create_group_invite(&club, 600).unwrap();
    assert!(c.client.join(&group_invite.uri).unwrap().is_group);
    joined(&mut c, &club).await;
    c.client.send_text(&club, "hi from C").unwrap();
    wait_for_event(&mut a.events, |e| {
        matches!(e, Event::MessageReceived { .. })
    })
    .await;
    assert_eq!(texts(&a, &club), vec![("hi from C".into(), false)]);
    assert!(c.client.contacts().unwrap().is_empty());

    stop.cancel();
    for device in [a, b, c] {
        for task in device.tasks {
            task.await.unwrap().unwrap();
        }
    }
}
