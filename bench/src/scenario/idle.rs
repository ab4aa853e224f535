//! Memory per idle connection: N IMAP sessions, one account each, all in IDLE; the server's
//! memory (its whole process tree) before and after, divided by N.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;

use super::Bench;
use crate::imap::IdleHandle;
use crate::procmem::{self, TreeMemory};
use crate::report::Report;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct IdlePlan {
    /// Connections to open.
    pub(crate) connections: usize,
    /// The server's (master) process id.
    pub(crate) server_pid: u32,
    /// Connections opened at once.
    pub(crate) concurrency: usize,
    /// How long to let the server settle before each measurement.
    pub(crate) settle: Duration,
}

/// Runs the plan.
pub(crate) async fn run(bench: &mut Bench, plan: &IdlePlan) -> Result<Report> {
    let mut r = Report::new("idle", &bench.label);
    r.parameter("connections", plan.connections as u64);
    if let Some(limit) = procmem::open_files_limit(plan.server_pid)? {
        if limit < plan.connections as u64 + 64 {
            r.note(format!(
                "server's open-file limit is {limit}, below {} connections: raise it (ulimit -n)",
                plan.connections
            ));
        }
    }
    let accounts = bench.accounts(plan.connections).await?;
    tokio::time::sleep(plan.settle).await;
    let before = procmem::tree_memory(plan.server_pid)?;
    let started = Instant::now();
    let imap = bench.imap.clone();
    let opened: Vec<Result<IdleHandle>> = futures::stream::iter(accounts)
        .map(|account| {
            let imap = imap.clone();
            async move { imap.idle(&account).await }
        })
        .buffer_unordered(plan.concurrency)
        .collect()
        .await;
    let open_time = started.elapsed();
    let mut handles = Vec::with_capacity(opened.len());
    let mut first_error = None;
    for o in opened {
        match o {
            Ok(h) => handles.push(h),
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    tokio::time::sleep(plan.settle).await;
    let after = procmem::tree_memory(plan.server_pid).context("measuring after")?;
    let own = procmem::tree_memory(std::process::id())?;
    report_memory(&mut r, before, after, handles.len());
    r.figure("connections in IDLE", handles.len() as f64, "conns");
    r.figure("time to open them all", open_time.as_secs_f64(), "s");
    r.figure("generator RSS", own.rss_kib as f64 / 1024.0, "MiB");
    if let Some(e) = first_error {
        r.note(format!(
            "{} connections failed, first: {e}",
            plan.connections - handles.len()
        ));
    }
    // Dropping the handles closes the sockets; the server sees the connections reset.
    drop(handles);
    Ok(r)
}

fn report_memory(r: &mut Report, before: TreeMemory, after: TreeMemory, n: usize) {
    let per = |b: u64, a: u64| {
        if n == 0 {
            0.0
        } else {
            (a as f64 - b as f64) / n as f64
        }
    };
    r.figure("server processes before", before.processes as f64, "procs");
    r.figure("server processes after", after.processes as f64, "procs");
    r.figure("server RSS before", before.rss_kib as f64 / 1024.0, "MiB");
    r.figure("server RSS after", after.rss_kib as f64 / 1024.0, "MiB");
    r.figure("server PSS before", before.pss_kib as f64 / 1024.0, "MiB");
    r.figure("server PSS after", after.pss_kib as f64 / 1024.0, "MiB");
    r.figure(
        "RSS per idle connection",
        per(before.rss_kib, after.rss_kib),
        "KiB",
    );
    r.figure(
        "PSS per idle connection",
        per(before.pss_kib, after.pss_kib),
        "KiB",
    );
}
