use super::accounts::CreationRefusal;
use super::*;

const DOMAIN: &str = "relay.test";
const NOW: UnixTime = 1_700_000_000;

fn policy() -> AccountPolicy {
    AccountPolicy {
        domain: DOMAIN.into(),
        create_on_login: true,
        username_length: 9,
        password_min_length: 9,
        min_free_disk_bytes: 0,
    }
}

fn limits() -> StoreLimits {
    StoreLimits {
        mailbox_quota_bytes: 10_000,
        expiry_secs: 86_400,
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir, limits()).unwrap()
}

async fn account(store: &Store, local: &str) -> String {
    let address = format!("{local}@{DOMAIN}");
    let outcome = store
        .login(&address, "password123", &policy(), NOW)
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::Created);
    address
}

fn message(local: &[&str], msgid: &str, body: &[u8]) -> Accepted {
    Accepted {
        sender: format!("sender001@{DOMAIN}"),
        local: local.iter().map(|s| s.to_string()).collect(),
        remote: Vec::new(),
        msgid: Some(msgid.into()),
        body: Bytes::copy_from_slice(body),
    }
}

use bytes::Bytes;

#[tokio::test]
async fn first_login_creates_then_password_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let address = account(&store, "abcdefghi").await;
    assert_eq!(
        store
            .login(&address, "password123", &policy(), NOW)
            .await
            .unwrap(),
        LoginOutcome::LoggedIn
    );
    assert_eq!(
        store
            .login(&address, "password124", &policy(), NOW)
            .await
            .unwrap(),
        LoginOutcome::BadPassword
    );
    // Case of the address does not matter.
    let upper = address.to_ascii_uppercase();
    assert_eq!(
        store
            .login(&upper, "password123", &policy(), NOW)
            .await
            .unwrap(),
        LoginOutcome::LoggedIn
    );
}

#[tokio::test]
async fn creation_is_refused_for_each_rule() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let refused = |r| LoginOutcome::Refused(r);
    let cases = [
        (
            "abcdefghi@other.test",
            "password123",
            policy(),
            refused(CreationRefusal::WrongDomain),
        ),
        (
            "abcdefgh@relay.test",
            "password123",
            policy(),
            refused(CreationRefusal::BadUsername),
        ),
        (
            "abcdefgh!@relay.test",
            "password123",
            policy(),
            refused(CreationRefusal::BadUsername),
        ),
        (
            "abcdefghi@relay.test",
            "short",
            policy(),
            refused(CreationRefusal::PasswordTooShort),
        ),
        (
            "abcdefghi@relay.test",
            "password123",
            AccountPolicy {
                create_on_login: false,
                ..policy()
            },
            refused(CreationRefusal::Disabled),
        ),
        (
            "abcdefghi@relay.test",
            "password123",
            AccountPolicy {
                min_free_disk_bytes: u64::MAX,
                ..policy()
            },
            refused(CreationRefusal::DiskNearlyFull),
        ),
    ];
    for (address, password, policy, expected) in cases {
        assert_eq!(
            store.login(address, password, &policy, NOW).await.unwrap(),
            expected,
            "{address}"
        );
        assert!(!store.account_exists(address).await.unwrap());
    }
}

#[tokio::test]
async fn one_body_serves_every_local_mailbox_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let store = open(dir.path());
        let a = account(&store, "aaaaaaaaa").await;
        let b = account(&store, "bbbbbbbbb").await;
        let report = store
            .accept(
                message(&[&a, &b, "nobody000@relay.test"], "<m1@x>", b"hello"),
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(report.delivered, 2);
        assert_eq!(report.unknown, vec!["nobody000@relay.test".to_string()]);
        (a, b)
    };
    // Reopen: what was acknowledged is there.
    let store = open(dir.path());
    for address in [&a, &b] {
        let status = store.mailbox_status(address).await.unwrap();
        assert_eq!((status.exists, status.unseen, status.uidnext), (1, 1, 2));
        assert_eq!(
            store.fetch_body(address, 1).await.unwrap().unwrap(),
            &b"hello"[..]
        );
    }
    let conn = Connection::open(store.path()).unwrap();
    let bodies: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bodies, 1, "one body for both mailboxes");
}

#[tokio::test]
async fn the_same_message_id_is_stored_once_even_after_it_was_fetched_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = account(&store, "aaaaaaaaa").await;
    assert_eq!(
        store
            .accept(message(&[&a], "<m1@x>", b"one"), NOW)
            .await
            .unwrap()
            .delivered,
        1
    );
    assert_eq!(
        store
            .accept(message(&[&a], "<m1@x>", b"one"), NOW)
            .await
            .unwrap()
            .duplicates,
        1
    );
    store
        .set_flags(&a, vec![1], Flags::DELETED, FlagsMode::Add)
        .await
        .unwrap();
    assert_eq!(store.expunge(&a, None).await.unwrap(), vec![1]);
    let again = store
        .accept(message(&[&a], "<m1@x>", b"one"), NOW + 10)
        .await
        .unwrap();
    assert_eq!((again.delivered, again.duplicates), (0, 1));
    assert_eq!(store.mailbox_status(&a).await.unwrap().exists, 0);
}

#[tokio::test]
async fn a_full_mailbox_trims_its_oldest_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = account(&store, "aaaaaaaaa").await;
    let body = vec![b'x'; 4_000];
    for i in 0..3 {
        let report = store
            .accept(message(&[&a], &format!("<m{i}@x>"), &body), NOW)
            .await
            .unwrap();
        assert_eq!(report.trimmed, usize::from(i == 2));
    }
    let uids: Vec<u32> = store
        .list_messages(&a)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, vec![2, 3]);
}

#[tokio::test]
async fn flags_and_expunge_follow_imap_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = account(&store, "aaaaaaaaa").await;
    for i in 0..3 {
        store
            .accept(message(&[&a], &format!("<m{i}@x>"), b"m"), NOW)
            .await
            .unwrap();
    }
    let set = store
        .set_flags(&a, vec![1, 2, 99], Flags::SEEN, FlagsMode::Add)
        .await
        .unwrap();
    assert_eq!(set, vec![(1, Flags::SEEN), (2, Flags::SEEN)]);
    store
        .set_flags(&a, vec![2, 3], Flags::DELETED, FlagsMode::Add)
        .await
        .unwrap();
    store
        .set_flags(&a, vec![2], Flags::SEEN, FlagsMode::Remove)
        .await
        .unwrap();
    // UID EXPUNGE limited to 3 leaves 2 (also \Deleted) alone.
    assert_eq!(store.expunge(&a, Some(vec![3])).await.unwrap(), vec![3]);
    let list = store.list_messages(&a).await.unwrap();
    assert_eq!(
        list.iter().map(|m| (m.uid, m.flags)).collect::<Vec<_>>(),
        vec![(1, Flags::SEEN), (2, Flags::DELETED)]
    );
    assert_eq!(store.expunge(&a, None).await.unwrap(), vec![2]);
    assert_eq!(store.mailbox_status(&a).await.unwrap().exists, 1);
    // UIDs are never reused.
    store
        .accept(message(&[&a], "<m9@x>", b"m"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.list_messages(&a).await.unwrap().last().unwrap().uid,
        4
    );
}

#[tokio::test]
async fn expiry_deletes_old_messages_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = account(&store, "aaaaaaaaa").await;
    store
        .accept(message(&[&a], "<old@x>", b"old"), NOW)
        .await
        .unwrap();
    store
        .accept(message(&[&a], "<new@x>", b"new"), NOW + 50_000)
        .await
        .unwrap();
    assert_eq!(store.expire(NOW + 86_401).await.unwrap(), 1);
    let list = store.list_messages(&a).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        store.fetch_body(&a, list[0].uid).await.unwrap().unwrap(),
        &b"new"[..]
    );
}

#[tokio::test]
async fn queue_entries_share_the_body_and_release_it_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut accepted = message(&[], "<q@x>", b"federated");
    accepted.remote = vec![
        (
            "one.test".into(),
            vec!["x@one.test".into(), "y@one.test".into()],
        ),
        ("two.test".into(), vec!["z@two.test".into()]),
    ];
    assert_eq!(store.accept(accepted, NOW).await.unwrap().queued, 2);
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    let due = store.due_queue_items(NOW, 10).await.unwrap();
    assert_eq!(due[0].recipients, vec!["x@one.test", "y@one.test"]);
    store.retry_queue_item(due[0].id, NOW + 60).await.unwrap();
    assert_eq!(store.due_queue_items(NOW, 10).await.unwrap().len(), 1);
    assert_eq!(store.next_queue_due().await.unwrap(), Some(NOW));
    for item in due {
        store.finish_queue_item(item.id).await.unwrap();
    }
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    let conn = Connection::open(store.path()).unwrap();
    let bodies: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bodies, 0);
}

#[tokio::test]
async fn a_watcher_hears_of_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = account(&store, "aaaaaaaaa").await;
    let mut watch = store.watch_mailbox(&a);
    let before = *watch.borrow_and_update();
    store
        .accept(message(&[&a], "<w@x>", b"w"), NOW)
        .await
        .unwrap();
    watch.changed().await.unwrap();
    assert_ne!(*watch.borrow(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_all_land_with_distinct_uids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreLimits {
            mailbox_quota_bytes: u64::MAX,
            ..limits()
        },
    )
    .unwrap();
    let a = account(&store, "aaaaaaaaa").await;
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            let a = a.clone();
            tokio::spawn(async move {
                store
                    .accept(message(&[&a], &format!("<c{i}@x>"), b"c"), NOW)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().delivered, 1);
    }
    let uids: Vec<u32> = store
        .list_messages(&a)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, (1..=300).collect::<Vec<_>>());
}
