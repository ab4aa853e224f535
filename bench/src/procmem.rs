//! Memory of a server process and its descendants, from /proc.
//!
//! kith-relay is one process; Dovecot runs one `imap` process per connection under its
//! master, so the figure that compares them is the sum over the process tree. RSS counts
//! shared pages (libraries, Dovecot's shared mappings) once per process; PSS splits them
//! between the processes sharing them, which is the fairer sum for a multi-process server.
use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::errors::ProcError;

/// Memory of a process tree at one moment, in KiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct TreeMemory {
    /// Processes in the tree.
    pub(crate) processes: usize,
    /// Sum of VmRSS.
    pub(crate) rss_kib: u64,
    /// Sum of Pss (smaps_rollup).
    pub(crate) pss_kib: u64,
}

/// Memory of `pid` and every descendant.
pub(crate) fn tree_memory(pid: u32) -> Result<TreeMemory, ProcError> {
    let mut total = TreeMemory::default();
    for p in process_tree(pid)? {
        // A child may exit between listing and reading: skip it, but not the root.
        let rss = match status_field_kib(p, "VmRSS:") {
            Ok(v) => v,
            Err(e) if p == pid => return Err(e),
            Err(_) => continue,
        };
        let pss = rollup_field_kib(p, "Pss:").unwrap_or(0);
        total.processes += 1;
        total.rss_kib += rss;
        total.pss_kib += pss;
    }
    Ok(total)
}

/// The soft limit on open files of `pid` (`Max open files` in /proc/PID/limits).
pub(crate) fn open_files_limit(pid: u32) -> Result<Option<u64>, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/limits"));
    let text = read(&path)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or(ProcError::MissingField {
            path: path.clone(),
            field: "Max open files",
        })?;
    let soft = line.split_whitespace().nth(3);
    Ok(soft.and_then(|s| s.parse().ok()))
}

/// `pid` and all its descendants.
fn process_tree(pid: u32) -> Result<Vec<u32>, ProcError> {
    let path = PathBuf::from("/proc");
    let entries = std::fs::read_dir(&path).map_err(|source| ProcError::Read { path, source })?;
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        if let Some(ppid) = parent_of(&stat) {
            children.entry(ppid).or_default().push(p);
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        if let Some(kids) = children.get(&tree[i]) {
            tree.extend(kids);
        }
        i += 1;
    }
    Ok(tree)
}

/// The parent pid from a /proc/PID/stat line (the field after the parenthesised command,
/// which may itself contain spaces and parentheses).
fn parent_of(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn status_field_kib(pid: u32, field: &'static str) -> Result<u64, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = read(&path)?;
    kib_field(&text, field).ok_or(ProcError::MissingField { path, field })
}

fn rollup_field_kib(pid: u32, field: &'static str) -> Result<u64, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/smaps_rollup"));
    let text = read(&path)?;
    kib_field(&text, field).ok_or(ProcError::MissingField { path, field })
}

/// `Field:   1234 kB` → 1234.
fn kib_field(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn read(path: &PathBuf) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_survives_odd_command_names() {
        let stat = "4242 (imap (x) y) S 17 4242 4242 0 -1 4194560";
        assert_eq!(parent_of(stat), Some(17));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn kib_fields_parse() {
        let status = "Name:\tx\nVmRSS:\t   2048 kB\nVmSwap:\t0 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(2048));
        assert_eq!(kib_field(status, "VmHWM:"), None);
    }

    #[test]
    fn own_tree_is_measured() {
        let me = std::process::id();
        let memory = tree_memory(me).expect("own process is readable");
        assert!(memory.processes >= 1);
        assert!(memory.rss_kib > 0);
        assert!(open_files_limit(me).expect("limits readable").is_some());
    }

    #[test]
    fn child_processes_are_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let tree = process_tree(std::process::id()).expect("tree");
        child.kill().expect("kill our own sleep");
        child.wait().expect("reap");
        assert!(tree.contains(&child.id()));
    }
}
