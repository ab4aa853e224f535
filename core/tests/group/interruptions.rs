//! Network helpers that interrupt an engine call at every point of its storage work, the
//! way a crash would, and check that the database is left exactly as it was.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kith_core::group::Incoming;
use kith_crypto::mls::begin_immediate;
use rusqlite::types::Value;
use rusqlite::Connection;

use super::{Envelope, Network};

/// SQLite virtual-machine steps between two calls of the progress handler: each try of a
/// sweep is interrupted this many steps later than the one before.
const STEPS_PER_TICK: i32 = 16;

/// Every row of every table of `conn`, in a stable order: what an interrupted call must
/// leave untouched.
fn dump(conn: &Connection) -> Vec<String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("list tables");
    let mut rows = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let width = stmt.column_count();
        let mut table_rows: Vec<String> = stmt
            .query_map([], |r| {
                (0..width)
                    .map(|c| r.get::<_, Value>(c))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("query")
            .map(|row| format!("{table}: {:?}", row.expect("row")))
            .collect();
        table_rows.sort();
        rows.extend(table_rows);
    }
    rows
}

impl Network {
    /// Delivers `envelope` to device `i` once interrupted after every tick of its storage
    /// work in turn (each try rolled back, as a crash would leave it), asserting that each
    /// try leaves the database unchanged; then delivers it whole. Returns how many tries
    /// were interrupted.
    pub fn deliver_interrupted_everywhere(&mut self, i: usize, envelope: Envelope) -> usize {
        let opened_with = self
            .open(i, &envelope)
            .expect("the device can open the frame");
        let node = &self.nodes[i];
        let before = dump(&node.conn);
        let mut tries = 0;
        for ticks in 0.. {
            let incoming = Incoming {
                frame: envelope.frame.clone(),
                opened_with: opened_with.clone(),
                stash_id: None,
            };
            let tx = begin_immediate(&node.conn).expect("begin");
            let left = Arc::new(AtomicI64::new(ticks));
            let counter = left.clone();
            node.conn.progress_handler(
                STEPS_PER_TICK,
                Some(move || counter.fetch_sub(1, Ordering::Relaxed) <= 0),
            );
            let result = node.engine.receive(&tx, self.now, incoming);
            node.conn.progress_handler(0, None::<fn() -> bool>);
            drop(tx);
            if left.load(Ordering::Relaxed) >= 0 {
                result.expect("an uninterrupted try succeeds");
                break;
            }
            tries += 1;
            let after = dump(&node.conn);
            let changed: Vec<_> = after.iter().filter(|r| !before.contains(r)).collect();
            let lost: Vec<_> = before.iter().filter(|r| !after.contains(r)).collect();
            assert!(
                changed.is_empty() && lost.is_empty(),
                "interrupted after {ticks} ticks, device {i} kept {changed:?} and lost {lost:?}"
            );
        }
        self.deliver(i, envelope);
        tries
    }
}
