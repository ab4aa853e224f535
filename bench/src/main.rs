//! `kith-loadgen`: the load generator behind docs/benchmarks.md.
//!
//! It drives any chatmail-style server over implicit-TLS SMTP submission and IMAP — a Kith
//! relay, or Postfix + Dovecot set up by `bench/postfix-dovecot/setup.sh` — with PGP/MIME
//! envelopes, and measures end-to-end delivery latency, throughput, memory per IDLE
//! connection and fan-out. Example:
//!
//! ```text
//! kith-loadgen --smtp 127.0.0.1:4650 --imap 127.0.0.1:9930 --insecure --domain relay.test \
//!     latency --rate 1000 --duration 10
//! ```
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod accounts;
mod errors;
mod imap;
mod message;
mod procmem;
mod report;
mod scenario;
mod smtp;
mod stats;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::accounts::AccountPool;
use crate::imap::ImapTarget;
use crate::scenario::fanout::FanoutPlan;
use crate::scenario::flow::FlowPlan;
use crate::scenario::idle::IdlePlan;
use crate::scenario::Bench;
use crate::smtp::SmtpTarget;
use crate::tls::Trust;

/// Load generator for chatmail-style relays (kith-relay, Postfix + Dovecot).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Where the server is and how to log in.
#[derive(Debug, Args)]
struct TargetArgs {
    /// SMTP submission with implicit TLS, HOST:PORT.
    #[arg(long, global = true, default_value = "127.0.0.1:4650")]
    smtp: String,
    /// IMAP with implicit TLS, HOST:PORT.
    #[arg(long, global = true, default_value = "127.0.0.1:9930")]
    imap: String,
    /// Accept any server certificate (self-signed benchmark servers).
    #[arg(long, global = true)]
    insecure: bool,
    /// Trust this PEM certificate instead of accepting any.
    #[arg(long, global = true, conflicts_with = "insecure")]
    ca_cert: Option<PathBuf>,
    /// Mail domain of generated accounts and Message-IDs.
    #[arg(long, global = true, default_value = "localhost")]
    domain: String,
    /// File of `address:password` lines; without it accounts are generated and created by
    /// their first login.
    #[arg(long, global = true)]
    accounts: Option<PathBuf>,
    /// Name of the server under test, shown in the report.
    #[arg(long, global = true, default_value = "server")]
    label: String,
    /// Print the report as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// End-to-end latency (submit → fetched by an IDLE-ing receiver) at a fixed rate.
    Latency {
        /// Messages per second (open loop).
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[command(flatten)]
        flow: FlowArgs,
    },
    /// Delivered messages per second with many concurrent senders.
    Throughput {
        /// Messages in total.
        #[arg(long, default_value_t = 20_000)]
        messages: u64,
        #[command(flatten)]
        flow: FlowArgs,
    },
    /// Server memory per idle IMAP IDLE connection.
    Idle {
        /// IDLE connections to hold open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// The server's process id (its descendants are counted too).
        #[arg(long)]
        server_pid: u32,
        /// Connections opened at once.
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Seconds to let the server settle before each measurement.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
    },
    /// One message to many local recipients, each in IDLE.
    Fanout {
        /// Recipients of the message.
        #[arg(long, default_value_t = 1000)]
        recipients: usize,
        /// Messages sent one after the other.
        #[arg(long, default_value_t = 5)]
        rounds: u64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 4096)]
        size: usize,
        /// Seconds a recipient waits for its notification before giving up.
        #[arg(long, default_value_t = 120.0)]
        limit: f64,
    },
}

/// Options shared by latency and throughput.
#[derive(Debug, Args)]
struct FlowArgs {
    /// Concurrent submission connections.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Receiving mailboxes.
    #[arg(long, default_value_t = 10)]
    receivers: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Seconds to wait for stragglers after the last submission.
    #[arg(long, default_value_t = 30.0)]
    drain: f64,
}

impl FlowArgs {
    fn plan(&self, messages: u64, rate: Option<f64>) -> FlowPlan {
        FlowPlan {
            messages,
            rate,
            senders: self.senders,
            receivers: self.receivers,
            size: self.size,
            drain: Duration::from_secs_f64(self.drain),
            idle_poll: Duration::from_secs(5),
        }
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    tracing::info!(nofile, "open-file limit");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let report = runtime.block_on(run(cli.target, cli.scenario, nofile))?;
    if report.1 {
        println!("{}", serde_json::to_string_pretty(&report.0)?);
    } else {
        print!("{}", report.0.table());
    }
    Ok(())
}

async fn run(
    target: TargetArgs,
    scenario: Scenario,
    nofile: u64,
) -> Result<(report::Report, bool)> {
    let mut bench = bench(&target)?;
    let load_before = load_average();
    let mut report = match scenario {
        Scenario::Latency {
            rate,
            duration,
            flow,
        } => {
            if !(rate > 0.0 && duration > 0.0) {
                bail!("--rate and --duration must be positive");
            }
            let messages = (rate * duration).round().max(1.0) as u64;
            scenario::flow::run(&mut bench, &flow.plan(messages, Some(rate)), "latency").await?
        }
        Scenario::Throughput { messages, flow } => {
            scenario::flow::run(&mut bench, &flow.plan(messages, None), "throughput").await?
        }
        Scenario::Idle {
            connections,
            server_pid,
            concurrency,
            settle,
        } => {
            if nofile < connections as u64 + 256 {
                bail!("this process may open only {nofile} files; {connections} connections need more");
            }
            let plan = IdlePlan {
                connections,
                server_pid,
                concurrency: concurrency.max(1),
                settle: Duration::from_secs_f64(settle),
            };
            scenario::idle::run(&mut bench, &plan).await?
        }
        Scenario::Fanout {
            recipients,
            rounds,
            size,
            limit,
        } => {
            let plan = FanoutPlan {
                recipients,
                rounds,
                size,
                limit: Duration::from_secs_f64(limit),
            };
            scenario::fanout::run(&mut bench, &plan).await?
        }
    };
    report.parameter("load_average_before", load_before);
    report.parameter("load_average_after", load_average());
    report.parameter(
        "nproc",
        std::thread::available_parallelism().map_or(0, |n| n.get()) as u64,
    );
    Ok((report, target.json))
}

/// The 1, 5 and 15 minute load averages (the machine is shared: they say how much).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn bench(target: &TargetArgs) -> Result<Bench> {
    let trust = match &target.ca_cert {
        Some(path) => Trust::CaFile(path.clone()),
        None if target.insecure => Trust::Insecure,
        None => bail!("give --insecure (self-signed server) or --ca-cert FILE"),
    };
    let (smtp_host, smtp_port) = host_port(&target.smtp)?;
    let (imap_host, imap_port) = host_port(&target.imap)?;
    let accounts = match &target.accounts {
        Some(path) => AccountPool::from_file(path)?,
        None => AccountPool::generated(&target.domain),
    };
    Ok(Bench {
        smtp: SmtpTarget {
            host: smtp_host,
            port: smtp_port,
            trust: trust.clone(),
        },
        imap: ImapTarget::new(&imap_host, imap_port, &trust)?,
        accounts,
        domain: target.domain.clone(),
        label: target.label.clone(),
        run: rand::random(),
    })
}

/// `host:port` → (host, port).
fn host_port(s: &str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("{s:?} is not HOST:PORT"))?;
    let port = port.parse().with_context(|| format!("bad port in {s:?}"))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parses() {
        assert_eq!(
            host_port("127.0.0.1:11465").expect("ok"),
            ("127.0.0.1".into(), 11465)
        );
        assert_eq!(host_port("[::1]:993").expect("ok"), ("::1".into(), 993));
        assert!(host_port("nohost").is_err());
        assert!(host_port("h:notaport").is_err());
    }

    #[test]
    fn cli_parses_every_scenario() {
        let cli = Cli::try_parse_from([
            "kith-loadgen",
            "--insecure",
            "throughput",
            "--senders",
            "100",
            "--size",
            "4096",
            "--messages",
            "50000",
            "--smtp",
            "127.0.0.1:11465",
        ])
        .expect("parses");
        assert_eq!(cli.target.smtp, "127.0.0.1:11465");
        assert!(matches!(
            cli.scenario,
            Scenario::Throughput {
                messages: 50_000,
                ..
            }
        ));
        for args in [
            vec![
                "kith-loadgen",
                "latency",
                "--rate",
                "1000",
                "--duration",
                "10",
            ],
            vec![
                "kith-loadgen",
                "idle",
                "--connections",
                "10000",
                "--server-pid",
                "1",
            ],
            vec!["kith-loadgen", "fanout", "--recipients", "1000"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok());
        }
        assert!(Cli::try_parse_from(["kith-loadgen", "idle"]).is_err());
    }
}
