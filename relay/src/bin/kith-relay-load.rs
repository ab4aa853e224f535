//! Load generator for the relay's IMAP side.
//!
//! * `serve`: an IMAP-only relay (implicit TLS and plain loopback listeners) on free ports,
//!   with limits opened up for load; prints its ports and pid.
//! * `idle`: opens N IDLE sessions against a `serve` process and reports its RSS before and
//!   after, i.e. memory per idle connection.
//! * `fanout`: one process: a relay, N IDLE sessions (one account each), then one message
//!   accepted for all N; reports how long until every session saw `EXISTS`.
//!
//! `ulimit -n` must exceed the connection count (each side holds one fd per connection).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use kith_relay::config::Config;
use kith_relay::context::{unix_now, RelayContext};
use kith_relay::store::Accepted;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const DOMAIN: &str = "load.test";
const PASSWORD: &str = "load-test-password";

#[derive(Parser)]
#[command(about = "Load generator for kith-relay's IMAP server")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Run an IMAP-only relay for load tests until interrupted.
    Serve {
        /// Data directory (created; a fresh one per run).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Open IDLE sessions against a `serve` process and report its memory.
    Idle {
        /// The relay's listener (`imaps` port with --tls, else the plain `imap` one).
        #[arg(long)]
        addr: SocketAddr,
        /// The relay's pid (its RSS is read from /proc).
        #[arg(long)]
        pid: u32,
        /// Number of IDLE sessions.
        #[arg(long, default_value_t = 10_000)]
        connections: u32,
        /// Use TLS (implicit, the `imaps` port).
        #[arg(long)]
        tls: bool,
    },
    /// One message to N local recipients, each in IDLE; time until all were notified.
    Fanout {
        /// Number of recipients (each with its own IDLE session).
        #[arg(long, default_value_t = 1_000)]
        recipients: u32,
        /// Use TLS for the sessions.
        #[arg(long)]
        tls: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Mode::Serve { dir } => serve(&dir).await,
            Mode::Idle {
                addr,
                pid,
                connections,
                tls,
            } => idle(addr, pid, connections, tls).await,
            Mode::Fanout { recipients, tls } => fanout(recipients, tls).await,
        }
    })
}

/// Listeners of a load-test relay.
struct Running {
    ctx: RelayContext,
    imaps: SocketAddr,
    imap: SocketAddr,
}

async fn start_relay(dir: &Path) -> Result<Running> {
    std::fs::create_dir_all(dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    kith_relay::tls::write_self_signed(&["localhost".into()], &cert, &key)?;
    let tls = kith_relay::tls::load_server_config(&cert, &key)?;
    let mut config = Config {
        domain: DOMAIN.into(),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.accounts.min_free_disk_mib = 0;
    config.limits.connections_per_ip = 1_000_000;
    config.limits.failed_logins_per_ip_per_minute = 1_000_000;
    config.limits.idle_timeout_secs = 3600;
    config.listen.allow_plaintext_on_loopback = true;
    let ctx = RelayContext::new(config, tls)?;
    let imaps_listener = TcpListener::bind("127.0.0.1:0").await?;
    let imap_listener = TcpListener::bind("127.0.0.1:0").await?;
    let (imaps, imap) = (imaps_listener.local_addr()?, imap_listener.local_addr()?);
    tokio::spawn(kith_relay::imap::serve(imaps_listener, ctx.clone(), true));
    tokio::spawn(kith_relay::imap::serve(imap_listener, ctx.clone(), false));
    Ok(Running { ctx, imaps, imap })
}

async fn serve(dir: &Path) -> Result<()> {
    let relay = start_relay(dir).await?;
    println!(
        "imaps={} imap={} pid={}",
        relay.imaps,
        relay.imap,
        std::process::id()
    );
    tokio::signal::ctrl_c().await?;
    relay.ctx.shutdown.cancel();
    Ok(())
}

fn address(n: u32) -> String {
    format!("load{n:05}@{DOMAIN}")
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?)
}

/// A client connection: plain TCP or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(addr: SocketAddr, tls: bool) -> Result<Box<dyn Stream>> {
    let tcp = TcpStream::connect(addr).await?;
    if !tls {
        return Ok(Box::new(tcp));
    }
    let connector = tokio_rustls::TlsConnector::from(client_tls());
    let name = rustls_pki_types::ServerName::try_from("localhost")?;
    Ok(Box::new(connector.connect(name, tcp).await?))
}

/// Logs in as account `n`, selects INBOX and enters IDLE.
async fn idle_session(addr: SocketAddr, tls: bool, n: u32) -> Result<BufReader<Box<dyn Stream>>> {
    let mut stream = BufReader::new(connect(addr, tls).await?);
    read_until(&mut stream, "* OK").await?;
    let script = format!(
        "a LOGIN {} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n",
        address(n)
    );
    stream.get_mut().write_all(script.as_bytes()).await?;
    stream.get_mut().flush().await?;
    read_until(&mut stream, "+ ").await?;
    Ok(stream)
}

/// Reads lines until one starts with `prefix`; fails on a tagged NO/BAD or end of stream.
async fn read_until<S: AsyncRead + Unpin>(stream: &mut BufReader<S>, prefix: &str) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            bail!("connection closed while waiting for {prefix:?}");
        }
        if line.starts_with(prefix) {
            return Ok(());
        }
        if line.contains(" NO ") || line.contains(" BAD ") {
            bail!("server refused: {}", line.trim_end());
        }
    }
}

/// Opens `count` IDLE sessions, `parallel` at a time.
async fn open_sessions(
    addr: SocketAddr,
    tls: bool,
    count: u32,
) -> Result<Vec<BufReader<Box<dyn Stream>>>> {
    use futures::StreamExt;
    let sessions: Vec<Result<_>> = futures::stream::iter(0..count)
        .map(|n| idle_session(addr, tls, n))
        .buffer_unordered(128)
        .collect()
        .await;
    sessions.into_iter().collect()
}

/// Logs in (creating the account) and out for accounts `0..count`, 16 at a time.
async fn create_accounts(addr: SocketAddr, tls: bool, count: u32) -> Result<()> {
    use futures::StreamExt;
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|n| async move {
            let mut stream = BufReader::new(connect(addr, tls).await?);
            read_until(&mut stream, "* OK").await?;
            let script = format!("a LOGIN {} {PASSWORD}\r\nb LOGOUT\r\n", address(n));
            stream.get_mut().write_all(script.as_bytes()).await?;
            read_until(&mut stream, "b OK").await
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn idle(addr: SocketAddr, pid: u32, connections: u32, tls: bool) -> Result<()> {
    // Create the accounts first, a few at a time, so that neither the database's growth nor
    // heap kept from a burst of handshakes is counted.
    create_accounts(addr, tls, connections).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let sessions = open_sessions(addr, tls, connections).await?;
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / f64::from(connections);
    println!(
        "{connections} IDLE sessions ({}) opened in {:.1}s; relay RSS {before} KiB -> {after} KiB; {:.0} bytes ({:.1} KiB) per connection",
        if tls { "TLS" } else { "plain" },
        opened_in.as_secs_f64(),
        per,
        per / 1024.0
    );
    drop(sessions);
    Ok(())
}

async fn fanout(recipients: u32, tls: bool) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("kith-relay-fanout-{}", std::process::id()));
    let relay = start_relay(&dir).await?;
    let addr = if tls { relay.imaps } else { relay.imap };
    let sessions = open_sessions(addr, tls, recipients).await?;
    let mut waiters = Vec::new();
    for mut session in sessions {
        waiters.push(tokio::spawn(async move {
            read_until(&mut session, "* 1 EXISTS").await?;
            Ok::<Instant, anyhow::Error>(Instant::now())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = Accepted {
        sender: format!("sender@{DOMAIN}"),
        local: (0..recipients).map(address).collect(),
        remote: Vec::new(),
        msgid: None,
        body: bytes::Bytes::from_static(b"Subject: fan-out\r\n\r\nciphertext would go here\r\n"),
    };
    let t0 = Instant::now();
    let report = relay.ctx.store.accept(accepted, unix_now()).await?;
    let committed = t0.elapsed();
    let mut latencies = Vec::new();
    for waiter in waiters {
        latencies.push(waiter.await??.duration_since(t0));
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "fan-out to {} IDLE sessions ({}): stored for {} mailboxes in {:.1} ms; EXISTS seen by all within {:.1} ms of accept() (p50 {:.1} ms, p99 {:.1} ms)",
        recipients,
        if tls { "TLS" } else { "plain" },
        report.delivered,
        committed.as_secs_f64() * 1e3,
        pick(1.0).as_secs_f64() * 1e3,
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
    );
    relay.ctx.shutdown.cancel();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn client_tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(insecure::AcceptAny))
        .with_no_client_auth();
    Arc::new(config)
}

/// The load-test relay's certificate is self-signed and on loopback: accept it.
mod insecure {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub(super) struct AcceptAny;

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}
