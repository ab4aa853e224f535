//! The `kith` command-line client: a thin shell over `kith_core::client::Client`.
//!
//! ```text
//! kith --data-dir D init --relay DOMAIN  create an account on the relay for DOMAIN and
//!     [--host H] [--imap-port P]          log in once (which registers it there); the
//!     [--smtp-port P] [--ca-cert PEM]     options reach a local relay, `--offline` skips
//!     [--offline]                         the login
//! kith --data-dir D bundle                print this device's key bundle (hex)
//! kith --data-dir D invite [--ttl S] [--wait S]   a one-time contact invite: link, https
//!                                         form and QR code; --wait stays for the joiner
//! kith --data-dir D join LINK [--wait S]  send a join request (and wait for the answer)
//! kith --data-dir D contacts              the contacts, their fingerprints and devices
//! kith --data-dir D chats                 the group chats
//! kith --data-dir D group create NAME     create a group; prints its id
//! kith --data-dir D group invite GROUP [--ttl S] [--wait S]   a one-time invite into GROUP
//! kith --data-dir D group add GROUP MEMBER   MEMBER: a contact's address or fingerprint
//!                                         (hex or kith:fp1/), or a bundle (hex)
//! kith --data-dir D send GROUP TEXT       queue a text and send the outbox
//! kith --data-dir D sync [--seconds N]    fetch and send for N seconds
//! kith --data-dir D history GROUP         the messages shown in GROUP
//! ```
//! Every command takes `--json` for machine-readable output.
//!
//! Exit codes: 0 success; 1 any other error; 2 bad command line (clap); 3 the invite link
//! is not valid (damaged, tampered, not a Kith link, or your own); 4 the link expired;
//! 5 the inviter refused the join (already used, expired on its side) or its identity did
//! not match the link; 6 no such contact; 7 the join request is sent but the inviter has
//! not answered within `--wait`.
#![forbid(unsafe_code)]

mod commands;
mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kith_core::account::Account;
use kith_core::client::Client;
use kith_core::content::Content;
use kith_core::group::GroupId;
use kith_core::transport::{RelayEndpoint, TrustAnchor};

use commands::{group_id, print};
use session::{sync, Until};

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
    /// Make a one-time contact invite: prints the link, the https form and a QR code.
    Invite {
        /// How long the invite is valid, in seconds (at most 30 days).
        #[arg(long, default_value_t = 24 * 3600)]
        ttl: u64,
        /// Stay online this many seconds for the joiner and print the contact and its code.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Join with an invite link (a contact invite or a group invite).
    Join {
        /// The `kith:i1/…` or `https://…/i1#…` link.
        link: String,
        /// Stay online this many seconds for the inviter's answer.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// List the contacts.
    Contacts,
    /// List the group chats.
    Chats,
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
    /// Add a contact's devices (by address or fingerprint), or a device from its bundle
    /// (hex, as `kith bundle` prints it), to a group.
    Add {
        /// The group id (hex).
        group: String,
        /// A contact's address or fingerprint, or a bundle (hex).
        member: String,
    },
    /// Make a one-time invite into a group: whoever joins with it is added by this device.
    Invite {
        /// The group id (hex).
        group: String,
        /// How long the invite is valid, in seconds (at most 30 days).
        #[arg(long, default_value_t = 24 * 3600)]
        ttl: u64,
        /// Stay online this many seconds for the joiner.
        #[arg(long, default_value_t = 0)]
        wait: u64,
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
        std::process::exit(exit_code(&error));
    }
}

/// The exit code for an error (see the module documentation).
fn exit_code(error: &anyhow::Error) -> i32 {
    use kith_core::client::ClientError;
    use kith_core::contacts::ContactError;
    if error
        .downcast_ref::<commands::contacts::Refused>()
        .is_some()
    {
        return 5;
    }
    if error
        .downcast_ref::<commands::contacts::Pending>()
        .is_some()
    {
        return 7;
    }
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::Contact(ContactError::Link(_) | ContactError::WrongKind(_)))
        | Some(ClientError::Contact(ContactError::OwnInvite)) => 3,
        Some(ClientError::Contact(ContactError::Expired { .. })) => 4,
        Some(ClientError::Contact(ContactError::UnknownContact(_))) => 6,
        _ => 1,
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
        Command::Group(GroupCommand::Add { group, member }) => {
            commands::contacts::group_add(&client, &group, &member, json)
        }
        Command::Group(GroupCommand::Invite { group, ttl, wait }) => {
            commands::contacts::group_invite(&client, &group, ttl, wait, json)
        }
        Command::Invite { ttl, wait } => commands::contacts::invite(&client, ttl, wait, json),
        Command::Join { link, wait } => commands::contacts::join(&client, &link, wait, json),
        Command::Contacts => commands::contacts::contacts(&client, json),
        Command::Chats => commands::contacts::chats(&client, json),
        Command::Send { group, text } => {
            let id = client.send_text(&group_id(&group)?, &text)?;
            sync(&client, Duration::from_secs(10), Until::Sent)?;
            print(json, &serde_json::json!({ "message": id }), &id)
        }
        Command::Sync { seconds } => {
            let events = sync(&client, Duration::from_secs(seconds), Until::Deadline)?;
            let mut value = serde_json::json!({ "synced": true });
            commands::contacts::merge(&mut value, commands::contacts::report(&events, json));
            print(json, &value, "synced")
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
