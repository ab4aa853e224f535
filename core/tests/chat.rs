//! What people say, through two real clients whose envelopes are carried by hand (so the
//! test can reorder and duplicate them): replies, reactions, edits, deletions, files in
//! chunks, and the rules about who may change what.
use kith_core::account::Account;
use kith_core::client::{ChatMessage, Client, ClientError, MessageBody};
use kith_core::events::Event;
use kith_core::group::GroupId;
use kith_core::transport::RelayEndpoint;

const NOW: u64 = 1_700_000_000;

struct Pair {
    _dirs: tempfile::TempDir,
    a: Client,
    b: Client,
    group: GroupId,
}

/// A and B in one group, B joined.
fn pair() -> Pair {
    let dirs = tempfile::tempdir().unwrap();
    let relay = RelayEndpoint::standard("relay.test");
    let make = |name: &str| {
        Client::new(Account::create(&dirs.path().join(name), relay.clone()).unwrap()).unwrap()
    };
    let (a, b) = (make("a"), make("b"));
    let group = a.create_group("friends").unwrap();
    a.add_member(&group, &b.bundle().unwrap()).unwrap();
    deliver(&a, &b);
    assert_eq!(b.groups().unwrap(), vec![group.clone()]);
    Pair {
        _dirs: dirs,
        a,
        b,
        group,
    }
}

/// Takes every queued envelope out of `from`'s outbox, oldest first.
fn take_outbox(from: &Client) -> Vec<Vec<u8>> {
    from.account()
        .database()
        .transaction(|tx| {
            let mut stmt = tx.prepare("SELECT envelope FROM outbox ORDER BY id")?;
            let rows = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<Vec<u8>>, _>>()?;
            drop(stmt);
            tx.execute("DELETE FROM outbox", [])?;
            Ok::<_, kith_core::db::DbError>(rows)
        })
        .unwrap()
}

fn hand_in(to: &Client, envelope: &[u8]) -> Vec<Event> {
    let events = to
        .account()
        .database()
        .transaction(|tx| to.handle_envelope(tx, NOW, envelope))
        .unwrap();
    to.committed(events.clone());
    events
}

/// Carries everything `from` queued to `to`, in order.
fn deliver(from: &Client, to: &Client) -> Vec<Event> {
    take_outbox(from)
        .iter()
        .flat_map(|e| hand_in(to, e))
        .collect()
}

fn text(message: &ChatMessage) -> &str {
    match &message.body {
        MessageBody::Text(text) => text,
        other => panic!("not a text: {other:?}"),
    }
}

#[test]
fn replies_reactions_and_edits_show_the_same_on_both_sides() {
    let Pair { a, b, group, _dirs } = pair();
    let hello = a.send_text(&group, "hello").unwrap();
    deliver(&a, &b);
    let reply = b.reply(&group, &hello, "hi A").unwrap();
    b.react(&group, &hello, "👍", false).unwrap();
    b.edit(&group, &reply, "hi A!").unwrap();
    let events = deliver(&b, &a);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::MessageChanged { message, .. } if message.0 == hello)));
    a.react(&group, &hello, "👍", false).unwrap();
    a.react(&group, &reply, "❤", false).unwrap();
    a.react(&group, &reply, "❤", true).unwrap();
    deliver(&a, &b);

    for (side, history) in [
        ("A", a.history(&group).unwrap()),
        ("B", b.history(&group).unwrap()),
    ] {
        assert_eq!(history.len(), 2, "{side}: {history:?}");
        assert_eq!(text(&history[0]), "hello");
        assert_eq!(text(&history[1]), "hi A!", "{side} sees the edit");
        assert!(history[1].edited);
        assert_eq!(history[1].reply_to.as_deref(), Some(hello.as_str()));
        let thumbs = &history[0].reactions["👍"];
        assert_eq!(thumbs.len(), 2, "{side}: both reacted");
        assert!(
            history[1].reactions.is_empty(),
            "{side}: the ❤ was withdrawn"
        );
    }
}

#[test]
fn only_the_sender_may_edit_or_delete_and_forged_changes_are_ignored() {
    let Pair { a, b, group, _dirs } = pair();
    let hello = a.send_text(&group, "hello").unwrap();
    deliver(&a, &b);
    assert!(matches!(
        b.edit(&group, &hello, "rewritten"),
        Err(ClientError::NotOwnMessage { .. })
    ));
    assert!(matches!(
        b.delete(&group, &hello),
        Err(ClientError::NotOwnMessage { .. })
    ));
    assert!(matches!(
        b.react(&group, "00112233445566778899aabbccddeeff", "👍", false),
        Err(ClientError::UnknownMessage { .. })
    ));
    assert!(matches!(
        b.react(&group, "not hex", "👍", false),
        Err(ClientError::UnknownMessage { .. })
    ));

    // B goes around its own client's check: the content still reaches A, which ignores it.
    let target = kith_core::content::MessageId(hex::decode(&hello).unwrap().try_into().unwrap());
    b.send_content(&group, kith_core::content::Content::Delete { target })
        .unwrap();
    b.send_content(
        &group,
        kith_core::content::Content::Edit {
            target,
            body: "forged".into(),
        },
    )
    .unwrap();
    deliver(&b, &a);
    let history = a.history(&group).unwrap();
    assert_eq!(text(&history[0]), "hello");
    assert!(!history[0].edited);
}

#[test]
fn a_deletion_erases_the_text_and_its_edits_even_when_it_arrives_first() {
    let Pair { a, b, group, _dirs } = pair();
    let first = a.send_text(&group, "secret one").unwrap();
    a.edit(&group, &first, "secret one, edited").unwrap();
    let second = a.send_text(&group, "secret two").unwrap();
    a.delete(&group, &first).unwrap();
    a.delete(&group, &second).unwrap();
    // Deliver in reverse: every deletion comes before what it deletes.
    let mut envelopes = take_outbox(&a);
    envelopes.reverse();
    for envelope in &envelopes {
        hand_in(&b, envelope);
    }
    for (side, client) in [("A", &a), ("B", &b)] {
        let history = client.history(&group).unwrap();
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|m| m.body == MessageBody::Deleted));
        assert!(client.messages(&group).unwrap().iter().all(|m| !matches!(
            &m.content,
            kith_core::content::Content::Text { .. } | kith_core::content::Content::Edit { .. }
        )));
        // The words are gone from the database file, not just hidden.
        let db = std::fs::read(client.account().database().path()).unwrap();
        let wal = std::fs::read(client.account().database().path().with_extension("db-wal"))
            .unwrap_or_default();
        for (file, bytes) in [("db", db), ("wal", wal)] {
            assert!(
                !contains(&bytes, b"secret one, edited"),
                "{side}: the text is still in the {file} file"
            );
        }
    }
    assert!(matches!(
        a.edit(&group, &first, "again"),
        Err(ClientError::UnknownMessage { .. })
    ));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_file_in_chunks_arrives_whole_once_in_any_order() {
    let Pair { a, b, group, _dirs } = pair();
    a.set_file_chunk_len(1024);
    let bytes: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = a
        .send_file(&group, "notes.bin", "application/octet-stream", &bytes)
        .unwrap();
    let mut envelopes = take_outbox(&a);
    assert_eq!(envelopes.len(), 5, "5,000 bytes in 1,024-byte chunks");
    envelopes.swap(0, 4);
    let mut shown = 0;
    for envelope in envelopes.iter().chain(envelopes.iter()) {
        shown += hand_in(&b, envelope)
            .iter()
            .filter(|e| matches!(e, Event::MessageReceived { message, .. } if message.0 == id))
            .count();
    }
    assert_eq!(
        shown, 1,
        "the file is shown once, when its last chunk arrives"
    );
    let history = b.history(&group).unwrap();
    assert_eq!(
        history[0].body,
        MessageBody::File {
            name: "notes.bin".into(),
            mime: "application/octet-stream".into(),
            len: 5_000
        }
    );
    let file = b.file(&id).unwrap().expect("complete");
    assert_eq!(file.bytes, bytes);
    assert_eq!(a.file(&id).unwrap().unwrap().bytes, bytes);

    // An empty file is one chunk; a deleted file is gone.
    let empty = a.send_file(&group, "empty", "text/plain", &[]).unwrap();
    a.delete(&group, &id).unwrap();
    deliver(&a, &b);
    assert_eq!(b.file(&empty).unwrap().unwrap().bytes, Vec::<u8>::new());
    assert_eq!(b.file(&id).unwrap(), None);
    assert_eq!(b.history(&group).unwrap()[0].body, MessageBody::Deleted);
}

#[test]
fn a_file_over_the_limit_is_refused_before_anything_is_sent() {
    let Pair {
        a, group, _dirs, ..
    } = pair();
    let big = vec![0u8; kith_core::client::MAX_FILE_LEN + 1];
    assert!(matches!(
        a.send_file(&group, "big", "application/octet-stream", &big),
        Err(ClientError::FileTooLarge { .. })
    ));
    assert!(take_outbox(&a).is_empty());
}

#[test]
fn a_rename_reaches_every_member_and_a_member_who_leaves_is_removed() {
    let Pair { a, b, group, _dirs } = pair();
    b.rename_group(&group, "book club").unwrap();
    deliver(&b, &a);
    for client in [&a, &b] {
        let summaries = client.group_summaries().unwrap();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].name, "book club");
        assert_eq!(summaries[0].members, 2);
    }

    b.leave_group(&group).unwrap();
    let events = deliver(&b, &a);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Group(kith_core::group::Event::LeaveRequested { .. })
    )));
    // A is the only member left to answer: its removal commit is due at once.
    a.handle_timeout().unwrap();
    assert_eq!(a.members(&group).unwrap().len(), 1);
    let events = deliver(&a, &b);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Group(kith_core::group::Event::Removed { .. }))));
    a.send_text(&group, "after B left").unwrap();
    deliver(&a, &b);
    assert!(b.history(&group).unwrap().is_empty());
}
