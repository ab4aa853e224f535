//! kith-audit: inspect envelopes, scan a relay's data directory, re-run known-answer vectors.
//!
//! - `kith-audit inspect FILE.eml` prints what a relay can see of an envelope: outer
//!   headers, sizes and the OpenPGP packet list, nothing else.
//! - `kith-audit scan DIR` checks every message a relay stores (`DIR/relay.db`, table
//!   `messages`, opened read-only) and every `.eml` file under `DIR`; it prints one line
//!   per message that is not a valid envelope and exits non-zero if there is any.
//! - `kith-audit vectors` re-runs the known-answer vector files and prints a table.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kith_crypto::envelope::{check_envelope, envelope_layout, PacketSummary};
use kith_crypto::vectors::SUITES;
use mail_parser::MessageParser;
use rusqlite::{Connection, OpenFlags};

#[derive(Parser)]
#[command(
    name = "kith-audit",
    about = "Audit tools for Kith envelopes and vectors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print exactly what a relay can see of an envelope.
    Inspect {
        /// The message file (RFC 5322).
        file: PathBuf,
    },
    /// Fail if any message stored under a relay's data directory is not a valid envelope.
    Scan {
        /// The relay's data directory (with relay.db), or a directory of .eml files.
        dir: PathBuf,
    },
    /// Re-run the known-answer vector files and print a pass/fail table.
    Vectors {
        /// The directory holding the vector files.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors"))]
        dir: PathBuf,
        /// Write fresh vector files instead of checking them (only to create them once).
        #[arg(long, hide = true)]
        generate: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { file } => inspect(&file),
        Command::Scan { dir } => scan(&dir),
        Command::Vectors { dir, generate } if generate => generate_vectors(&dir),
        Command::Vectors { dir, .. } => vectors(&dir),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("kith-audit: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn tag_name(tag: u8) -> &'static str {
    match tag {
        1 => "PKESK",
        3 => "SKESK",
        18 => "SEIPD",
        _ => "other",
    }
}

fn packet_line(p: &PacketSummary) -> String {
    let version = p.version.map_or("-".to_owned(), |v| format!("v{v}"));
    let mut flags = Vec::new();
    if p.is_partial {
        flags.push("partial lengths");
    }
    if p.is_legacy_format {
        flags.push("legacy header");
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(" ({})", flags.join(", "))
    };
    format!(
        "  offset {:>6}: {} (tag {}) {version}, header {} B, body {} B{flags}",
        p.offset,
        tag_name(p.tag),
        p.tag,
        p.header_len,
        p.body_len
    )
}

/// Prints the outer headers, sizes and packets; returns whether the envelope is valid.
fn inspect(file: &Path) -> Result<bool> {
    let message = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    println!("size: {} bytes", message.len());
    println!("headers:");
    if let Some(parsed) = MessageParser::default().parse_headers(&message) {
        for (name, value) in parsed.headers_raw() {
            println!("  {name}: {}", value.trim().replace("\r\n", " "));
        }
    }
    match envelope_layout(&message) {
        Ok(layout) => {
            println!("openpgp part: {} bytes armored", layout.armored_len);
            println!("openpgp message: {} bytes", layout.payload_len);
            println!("packets:");
            for p in &layout.packets {
                println!("{}", packet_line(p));
            }
            println!("verdict: valid envelope");
            Ok(true)
        }
        Err(err) => {
            println!("verdict: NOT a valid envelope: {err}");
            Ok(false)
        }
    }
}

/// Checks every stored message; prints one line per bad one; returns whether all passed.
fn scan(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut total = 0usize;
    let mut bad = 0usize;
    let db = dir.join("relay.db");
    if db.exists() {
        let (t, b) = scan_database(&db)?;
        total += t;
        bad += b;
    }
    let mut files = Vec::new();
    collect_eml(dir, &mut files)?;
    files.sort();
    for path in &files {
        let message = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        total += 1;
        if let Err(err) = check_envelope(&message) {
            bad += 1;
            println!("{}: {err}", path.display());
        }
    }
    if total == 0 && !db.exists() {
        bail!("no relay.db and no .eml files under {}", dir.display());
    }
    eprintln!("scanned {total} messages: {bad} not valid envelopes");
    Ok(bad == 0)
}

/// Scans `SELECT id, body FROM messages` read-only; returns (messages, bad messages).
fn scan_database(db: &Path) -> Result<(usize, usize)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags)
        .with_context(|| format!("opening {} read-only", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT id, body FROM messages ORDER BY id")
        .context("reading the messages table")?;
    let mut rows = stmt.query([])?;
    let (mut total, mut bad) = (0, 0);
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let body: Vec<u8> = row.get(1)?;
        total += 1;
        if let Err(err) = check_envelope(&body) {
            bad += 1;
            println!("relay.db message {id}: {err}");
        }
    }
    Ok((total, bad))
}

fn collect_eml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_eml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "eml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs every registered suite and prints a table; returns whether all passed.
fn vectors(dir: &Path) -> Result<bool> {
    println!("{:<12} {:<20} {:>6}  result", "suite", "file", "cases");
    let mut all_passed = true;
    for suite in SUITES {
        let path = dir.join(suite.file);
        let outcome = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|json| (suite.check)(&json));
        let (cases, result) = match outcome {
            Ok(n) => (n.to_string(), "PASS".to_owned()),
            Err(why) => {
                all_passed = false;
                ("-".to_owned(), format!("FAIL: {why}"))
            }
        };
        println!("{:<12} {:<20} {cases:>6}  {result}", suite.name, suite.file);
    }
    Ok(all_passed)
}

fn generate_vectors(dir: &Path) -> Result<bool> {
    std::fs::create_dir_all(dir)?;
    for suite in SUITES {
        if let Some(generate) = suite.generate {
            let json = generate().map_err(anyhow::Error::msg)?;
            let path = dir.join(suite.file);
            std::fs::write(&path, json + "\n")?;
            println!("wrote {}", path.display());
        }
    }
    Ok(true)
}
