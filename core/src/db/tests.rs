use super::*;

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

#[test]
fn opening_sets_wal_secure_delete_and_the_schema_version() {
    let (dir, db) = open();
    db.read(|conn| {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        assert_eq!(mode, "wal");
        let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
        assert_eq!(secure, 1);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(version, schema::MIGRATIONS.len() as i64);
        // openmls's tables live in the same file.
        let mls: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'openmls%'",
            [],
            |r| r.get(0),
        )?;
        assert!(mls > 0, "openmls tables missing");
        Ok(())
    })
    .unwrap();
    drop(db);
    // Opening again runs no migration twice.
    Database::open(dir.path()).unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let (dir, db) = open();
    db.read(|conn| Ok(conn.pragma_update(None, "user_version", 99)?))
        .unwrap();
    drop(db);
    assert!(matches!(
        Database::open(dir.path()),
        Err(DbError::NewerSchema { found: 99, .. })
    ));
}

#[test]
fn a_failed_transaction_leaves_nothing_behind() {
    let (_dir, db) = open();
    let result: Result<(), DbError> = db.transaction(|tx| {
        Outbox::enqueue(tx, b"x", &["a@b.test".into()])?;
        Err(DbError::NoAccount)
    });
    assert!(result.is_err());
    assert_eq!(db.read(outbox::len).unwrap(), 0);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), DbError> = db.transaction(|tx| {
            Outbox::enqueue(tx, b"x", &["a@b.test".into()])?;
            panic!("handler crashed mid-transaction");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(db.read(outbox::len).unwrap(), 0, "rolled back on unwind");
    db.transaction(|tx| Outbox::enqueue(tx, b"y", &["a@b.test".into()]))
        .unwrap();
    assert_eq!(
        db.read(outbox::len).unwrap(),
        1,
        "still usable after a panic"
    );
}

#[test]
fn outbox_rows_are_due_in_order_and_reschedule() {
    let (_dir, db) = open();
    let recipients = vec!["a@b.test".to_owned(), "c@d.test".to_owned()];
    let first = db
        .read(|c| outbox::insert(c, b"one", &recipients, 1000))
        .unwrap();
    let second = db
        .read(|c| outbox::insert(c, b"two", &recipients, 1000))
        .unwrap();
    assert!(db.read(|c| outbox::next_due(c, 999)).unwrap().is_none());
    let due = db.read(|c| outbox::next_due(c, 1000)).unwrap().unwrap();
    assert_eq!(
        (due.id, due.recipients.clone()),
        (first, recipients.clone())
    );
    db.read(|c| outbox::reschedule(c, first, 5000, "421 busy"))
        .unwrap();
    let due = db.read(|c| outbox::next_due(c, 1000)).unwrap().unwrap();
    assert_eq!(due.id, second);
    assert_eq!(db.read(outbox::earliest_due).unwrap(), Some(1000));
    db.read(|c| outbox::remove(c, second)).unwrap();
    let due = db.read(|c| outbox::next_due(c, 5000)).unwrap().unwrap();
    assert_eq!((due.id, due.attempts), (first, 1));
}

#[test]
fn cursor_and_processed_ids_round_trip() {
    let (_dir, db) = open();
    assert_eq!(db.read(inbox::load_cursor).unwrap(), None);
    let cursor = InboxCursor {
        uid_validity: 7,
        last_uid: 42,
    };
    let key = MessageKey("mid:x@y".into());
    db.transaction(|tx| {
        inbox::store_cursor(tx, cursor)?;
        inbox::mark_processed(tx, &key, 100)?;
        inbox::mark_processed(tx, &key, 100)
    })
    .unwrap();
    assert_eq!(db.read(inbox::load_cursor).unwrap(), Some(cursor));
    assert!(db.read(|c| inbox::is_processed(c, &key)).unwrap());
    assert!(!db
        .read(|c| inbox::is_processed(c, &MessageKey("mid:other".into())))
        .unwrap());
    assert_eq!(db.read(|c| inbox::prune_processed(c, 101)).unwrap(), 1);
    assert!(!db.read(|c| inbox::is_processed(c, &key)).unwrap());
}

use crate::transport::Outbox;

#[test]
fn migration_5_indexes_the_deletions_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        for migration in &schema::MIGRATIONS[..4] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            "INSERT INTO chats (id, kind, created_at) VALUES (1, 'group', 0);
             INSERT INTO messages VALUES ('d1', 1, x'01', x'', CAST('{\"type\":\"delete\",\"target\":\"aa\"}' AS BLOB), 0, 0, 'received');
             INSERT INTO messages VALUES ('t1', 1, x'01', x'', CAST('{\"type\":\"text\",\"body\":\"aa\"}' AS BLOB), 0, 0, 'received');
             INSERT INTO messages VALUES ('e1', 1, x'02', x'', x'', 0, 0, 'received');",
        )
        .unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    let rows: Vec<(String, Vec<u8>)> = db
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT target, identity FROM message_deletions")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .unwrap();
    assert_eq!(rows, vec![("aa".to_owned(), vec![1u8])]);
}
