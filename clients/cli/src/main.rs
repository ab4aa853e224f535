//! The `kith` command-line client: a thin shell over `kith_core::client::Client`.
//!
//! ```text
//! kith --data-dir D init --relay DOMAIN  create an account on the relay for DOMAIN and
//!     [--host H] [--imap-port P]          log in once (which registers it there); the
//!     [--smtp-port P] [--ca-cert PEM]     options reach a local relay, `--offline` skips
//!     [--offline]                         the login
//! kith --data-dir D bundle                print this device's key bundle (hex)
//! kith --data-dir D group create NAME     create a group; prints its id
//! kith --data-dir D group add GROUP BUNDLE
//! kith --data-dir D send GROUP TEXT       queue a text and send the outbox
//! kith --data-dir D sync [--seconds N]    fetch and send for N seconds
//! kith --data-dir D history GROUP         the messages shown in GROUP
//! ```
//! Every command takes `--json` for machine-readable output.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kith_core::account::Account;
use kith_core::client::Client;
use kith_core::content::Content;
use kith_core::events::{ConnectionState, Event};
use kith_core::group::GroupId;
use kith_core::transport::{InboxOptions, OutboxOptions, RelayEndpoint, TrustAnchor};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "kith",
    about = "Kith: end-to-end encrypted groups over mail relays"
)]
struct Cli {
    /// The account's data directory.
    #[arg(long, global = true, default_value = "kith-data")]
    data_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account on a relay (by default IMAP 993 and submission 465 at DOMAIN,
    /// certificates from the public roots).
    Init {
        /// The relay's mail domain.
        #[arg(long)]
        relay: String,
        /// The host to connect to and check certificates against (default: the domain).
        #[arg(long)]
        host: Option<String>,
        /// The IMAP port (implicit TLS).
        #[arg(long, default_value_t = 993, value_parser = clap::value_parser!(u16).range(1..))]
        imap_port: u16,
        /// The SMTP submission port (implicit TLS).
        #[arg(long, default_value_t = 465, value_parser = clap::value_parser!(u16).range(1..))]
        smtp_port: u16,
        /// Trust only the certificate(s) in this PEM file, such as a local relay's
        /// self-signed `cert.pem`, instead of the public roots.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        /// Only create the account locally; it is registered on the relay by the first
        /// `kith sync` (until then, messages to it are refused).
        #[arg(long)]
        offline: bool,
    },
    /// Print this device's key bundle, for someone who will add it to a group.
    Bundle,
    /// Groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Send a text to a group.
    Send {
        /// The group id (hex).
        group: String,
        /// The text.
        text: String,
    },
    /// Fetch incoming envelopes and send queued ones for a while.
    Sync {
        /// How long to run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Print the messages of a group.
    History {
        /// The group id (hex).
        group: String,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group.
    Create {
        /// Its name.
        name: String,
    },
    /// Add a device to a group from its bundle (hex, as `kith bundle` prints it).
    Add {
        /// The group id (hex).
        group: String,
        /// The device's bundle (hex).
        bundle: String,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("kith: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    if let Command::Init {
        relay,
        host,
        imap_port,
        smtp_port,
        ca_cert,
        offline,
    } = &cli.command
    {
        let endpoint = endpoint(
            relay,
            host.as_deref(),
            *imap_port,
            *smtp_port,
            ca_cert.as_deref(),
        )?;
        let account = Account::create(&cli.data_dir, endpoint).context("creating the account")?;
        let address = account.address().to_owned();
        // The first login creates the account on the relay (the chatmail way), so others
        // can send to it right away.
        if !offline {
            let client = Arc::new(Client::new(account).context("starting the client")?);
            sync(&client, Duration::from_secs(20), Until::Connected)
                .context("registering the account on the relay")?;
        }
        return print(json, &serde_json::json!({ "address": address }), &address);
    }
    let account = Account::open(&cli.data_dir).context("opening the account")?;
    let client = Arc::new(Client::new(account).context("starting the client")?);
    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Bundle => {
            let bundle = hex::encode(client.bundle()?);
            print(json, &serde_json::json!({ "bundle": bundle }), &bundle)
        }
        Command::Group(GroupCommand::Create { name }) => {
            let group = hex::encode(client.create_group(&name)?.0);
            print(json, &serde_json::json!({ "group": group }), &group)
        }
        Command::Group(GroupCommand::Add { group, bundle }) => {
            let bundle = hex::decode(bundle.trim()).context("the bundle is not hex")?;
            client.add_member(&group_id(&group)?, &bundle)?;
            sync(&client, Duration::from_secs(10), Until::Sent)?;
            print(json, &serde_json::json!({ "added": true }), "added")
        }
        Command::Send { group, text } => {
            let id = client.send_text(&group_id(&group)?, &text)?;
            sync(&client, Duration::from_secs(10), Until::Sent)?;
            print(json, &serde_json::json!({ "message": id }), &id)
        }
        Command::Sync { seconds } => {
            sync(&client, Duration::from_secs(seconds), Until::Deadline)?;
            print(json, &serde_json::json!({ "synced": true }), "synced")
        }
        Command::History { group } => history(&client, &group_id(&group)?, json),
    }
}

/// The relay endpoint `kith init` stores: the standard layout, with the host, ports and
/// trust anchor the options override.
fn endpoint(
    domain: &str,
    host: Option<&str>,
    imap_port: u16,
    smtp_port: u16,
    ca_cert: Option<&Path>,
) -> Result<RelayEndpoint> {
    let mut endpoint = RelayEndpoint::standard(domain);
    if let Some(host) = host {
        endpoint.imap.host = host.to_owned();
        endpoint.smtp.host = host.to_owned();
    }
    endpoint.imap.port = imap_port;
    endpoint.smtp.port = smtp_port;
    if let Some(path) = ca_cert {
        endpoint.trust = TrustAnchor::PemFile(trusted_certificate(path)?);
    }
    Ok(endpoint)
}

/// Checks that `path` is a readable PEM file holding a certificate; returns its absolute
/// path, so the account keeps working from any directory.
fn trusted_certificate(path: &Path) -> Result<PathBuf> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the certificate {}", path.display()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        bail!("{} holds no PEM certificate", path.display());
    }
    std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve the certificate path {}", path.display()))
}

fn history(client: &Client, group: &GroupId, json: bool) -> Result<()> {
    let messages = client.messages(group)?;
    let rows: Vec<_> = messages
        .iter()
        .map(|m| {
            let text = match &m.content {
                Content::Text { body, .. } => body.clone(),
                other => format!("{other:?}"),
            };
            (m, text)
        })
        .collect();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(m, text)| {
                serde_json::json!({ "id": m.id, "sender": m.sender, "sent_at": m.sent_at,
                                    "outgoing": m.is_outgoing, "text": text })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for (m, text) in rows {
            println!("{} {}: {text}", m.sent_at, m.sender);
        }
    }
    Ok(())
}

/// When [`sync`] may stop before its time limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Run for the whole limit.
    Deadline,
    /// Stop once the outbox is empty.
    Sent,
    /// Stop once the inbox has logged in (which registers a new account on the relay).
    Connected,
}

/// Runs the inbox and outbox for up to `limit`, or until `until` holds. Fails if the relay
/// refused an envelope, or if `until` still does not hold at the limit.
fn sync(client: &Arc<Client>, limit: Duration, until: Until) -> Result<()> {
    client.handle_timeout()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let mut events = client.account().events().subscribe();
        let outbox = client.account().outbox(OutboxOptions::default());
        let inbox = client.account().inbox(InboxOptions::default());
        let handler = client.inbox_handler();
        let inbox_task = tokio::spawn({
            let stop = stop.clone();
            async move { inbox.run(handler, stop).await }
        });
        let outbox_task = tokio::spawn({
            let stop = stop.clone();
            let outbox = outbox.clone();
            async move { outbox.run(stop).await }
        });
        let (mut connected, mut refused) = (false, 0usize);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Ok(event) = events.try_recv() {
                match event {
                    Event::ConnectionChanged(ConnectionState::Connected) => connected = true,
                    Event::EnvelopeRejected { .. } => refused += 1,
                    _ => {}
                }
            }
            let done = match until {
                Until::Deadline => false,
                Until::Sent => outbox.pending()? == 0,
                Until::Connected => connected,
            };
            if done || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.cancel();
        inbox_task.await.context("inbox task")??;
        outbox_task.await.context("outbox task")??;
        if refused > 0 {
            bail!(
                "the relay refused {refused} envelope(s) for good; a recipient may not have \
                 connected to the relay yet (`kith init` or `kith sync` registers an account)"
            );
        }
        match until {
            Until::Sent if outbox.pending()? > 0 => {
                bail!("the relay did not accept every envelope yet; run `kith sync` later")
            }
            Until::Connected if !connected => {
                bail!("could not log in to the relay; run `kith sync` to try again")
            }
            _ => Ok(()),
        }
    })
}

fn group_id(hex_id: &str) -> Result<GroupId> {
    Ok(GroupId(
        hex::decode(hex_id.trim()).context("the group id is not hex")?,
    ))
}

fn print(json: bool, value: &serde_json::Value, text: &str) -> Result<()> {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(())
}
