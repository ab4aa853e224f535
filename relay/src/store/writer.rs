//! The store's single writer: a thread that owns the write connection and commits jobs in
//! batches (group commit), so that one fsync covers many messages.
//!
//! Every job runs inside a savepoint of the batch transaction: a job that fails is rolled back
//! alone and the rest of the batch still commits. A job's caller hears back only after the
//! COMMIT has returned, that is, after the data is durable.
use std::sync::mpsc::{self, Receiver, Sender};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::notify::Notifier;
use crate::errors::StoreError;

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// What a job did, to be reported after COMMIT.
pub(crate) struct Applied {
    /// Mailboxes whose contents changed (their watchers are woken after COMMIT).
    changed: Vec<String>,
    /// The job failed: its savepoint is rolled back.
    failed: bool,
    /// Called with the outcome of the COMMIT.
    finish: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

type Job = Box<dyn FnOnce(&Connection) -> Applied + Send>;

/// A handle for sending jobs to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection, notifier: Notifier) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, notifier))
            .expect("spawning the store writer thread");
        Self { jobs }
    }

    /// Runs `work` in a transaction and returns its value once the transaction is durable.
    /// `work` returns its value and the mailboxes it changed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Vec<String>), StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| match work(conn) {
            Ok((value, changed)) => Applied {
                changed,
                failed: false,
                finish: Box::new(move |committed| {
                    let _ = tx.send(committed.map(|()| value));
                }),
            },
            Err(error) => Applied {
                changed: Vec::new(),
                failed: true,
                finish: Box::new(move |_| {
                    let _ = tx.send(Err(error));
                }),
            },
        });
        self.jobs.send(job).map_err(|_| StoreError::Unavailable)?;
        // A job dropped unrun (the batch could not begin) drops `tx`: that is Unavailable too.
        rx.await.map_err(|_| StoreError::Unavailable)?
    }
}

fn run(conn: Connection, rx: Receiver<Job>, notifier: Notifier) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, batch, &notifier);
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(conn: &Connection, batch: Vec<Job>, notifier: &Notifier) {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unrun tells each caller the store is unavailable.
        tracing::error!(%error, jobs = batch.len(), "cannot begin a store transaction");
        return;
    }
    let applied: Vec<Applied> = batch
        .into_iter()
        .map(|job| run_in_savepoint(conn, job))
        .collect();
    let committed = conn.execute_batch("COMMIT");
    if let Err(error) = &committed {
        tracing::error!(%error, "store commit failed; rolling back the batch");
        let _ = conn.execute_batch("ROLLBACK");
    }
    let mut changed: Vec<String> = Vec::new();
    for a in applied {
        if committed.is_ok() {
            changed.extend(a.changed);
        }
        (a.finish)(
            committed
                .as_ref()
                .map(|_| ())
                .map_err(|_| StoreError::Unavailable),
        );
    }
    changed.sort_unstable();
    changed.dedup();
    for mailbox in changed {
        notifier.wake(&mailbox);
    }
}

fn run_in_savepoint(conn: &Connection, job: Job) -> Applied {
    if let Err(error) = conn.execute_batch("SAVEPOINT job") {
        return Applied {
            changed: Vec::new(),
            failed: true,
            finish: Box::new(move |_| tracing::error!(%error, "cannot open a savepoint")),
        };
    }
    let applied = job(conn);
    if applied.failed {
        let _ = conn.execute_batch("ROLLBACK TO job");
    }
    let _ = conn.execute_batch("RELEASE job");
    applied
}
