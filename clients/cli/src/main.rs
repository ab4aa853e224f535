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
//! kith --data-dir D group remove GROUP ADDRESS | leave GROUP | rename GROUP NAME
//! kith --data-dir D group members GROUP | admin GROUP ADDRESS
//! kith --data-dir D send GROUP TEXT [--reply-to ID] | send GROUP --file F [--mime M]
//! kith --data-dir D react GROUP ID EMOJI [--remove]
//! kith --data-dir D edit GROUP ID TEXT | delete GROUP ID
//! kith --data-dir D save ID PATH          write a received file to PATH (never overwrites)
//! kith --data-dir D sync [--seconds N]    fetch and send for N seconds
//! kith --data-dir D watch [--seconds N]   print what happens, live, until Ctrl-C (or N s)
//! kith --data-dir D history GROUP         the messages shown in GROUP
//! ```
//! Message ids are the hex ids that `send`, `history` and `watch` print.
//! Every command takes `--json` for machine-readable output.
//!
//! Exit codes: 0 success; 1 any other error; 2 bad command line (clap); 3 the invite link
//! is not valid (damaged, tampered, not a Kith link, or your own); 4 the link expired;
//! 5 the inviter refused the join (already used, expired on its side) or its identity did
//! not match the link; 6 no such contact; 7 the join request is sent but the inviter has
//! not answered within `--wait`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kith_core::account::Account;
use kith_core::client::Client;
use kith_core::group::GroupId;
use kith_core::transport::{RelayEndpoint, TrustAnchor};
use serde_json::json;

use session::Until;

mod chat;
mod commands;
mod session;

/// How long a command that sends waits for the relay to accept everything it queued.
const SEND_LIMIT: Duration = Duration::from_secs(10);

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
    /// Send a text, a reply or a file to a group.
    Send {
        /// The group id (hex).
        group: String,
        /// The text (not with --file).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Reply to this message (hex id).
        #[arg(long)]
        reply_to: Option<String>,
        /// Send this file instead of a text (chunked if large).
        #[arg(long, conflicts_with = "reply_to")]
        file: Option<PathBuf>,
        /// The file's media type (default: guessed from its extension).
        #[arg(long, requires = "file")]
        mime: Option<String>,
    },
    /// React to a message with an emoji (or withdraw the reaction).
    React {
        /// The group id (hex).
        group: String,
        /// The message id (hex).
        message: String,
        /// The reaction.
        emoji: String,
        /// Withdraw this reaction instead.
        #[arg(long)]
        remove: bool,
    },
    /// Replace the text of one of your messages.
    Edit {
        /// The group id (hex).
        group: String,
        /// The message id (hex).
        message: String,
        /// The new text.
        text: String,
    },
    /// Delete one of your messages on every member device.
    Delete {
        /// The group id (hex).
        group: String,
        /// The message id (hex).
        message: String,
    },
    /// Write a received file to disk.
    Save {
        /// The file's message id (hex).
        message: String,
        /// Where to write it (must not exist).
        path: PathBuf,
    },
    /// Print events as they happen (JSON lines with --json) until Ctrl-C.
    Watch {
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
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
    /// Remove a member device from a group.
    Remove {
        /// The group id (hex).
        group: String,
        /// The device's address.
        address: String,
    },
    /// Leave a group (a member commits your removal).
    Leave {
        /// The group id (hex).
        group: String,
    },
    /// Rename a group for everyone.
    Rename {
        /// The group id (hex).
        group: String,
        /// The new name.
        name: String,
    },
    /// List a group's member devices (admins marked).
    Members {
        /// The group id (hex).
        group: String,
    },
    /// Make a member device an admin (who may add and remove members).
    Admin {
        /// The group id (hex).
        group: String,
        /// The device's address.
        address: String,
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
        std::process::exit(commands::exit_code(&error));
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
            let limit = Some(Duration::from_secs(20));
            session::run(&client, limit, Until::Connected, |_, _| Ok(()))
                .context("registering the account on the relay")?;
        }
        return print(json, &json!({ "address": address }), &address);
    }
    let account = Account::open(&cli.data_dir).context("opening the account")?;
    let client = Arc::new(Client::new(account).context("starting the client")?);
    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Bundle => {
            let bundle = hex::encode(client.bundle()?);
            print(json, &json!({ "bundle": bundle }), &bundle)
        }
        Command::Group(GroupCommand::Create { name }) => {
            let group = hex::encode(client.create_group(&name)?.0);
            print(json, &json!({ "group": group }), &group)
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
        Command::Group(GroupCommand::Remove { group, address }) => {
            client.remove_member(&group_id(&group)?, &address)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "removed": address }), "removed")
        }
        Command::Group(GroupCommand::Leave { group }) => {
            client.leave_group(&group_id(&group)?)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(
                json,
                &json!({ "leaving": true }),
                "asked the group to remove this device",
            )
        }
        Command::Group(GroupCommand::Rename { group, name }) => {
            client.rename_group(&group_id(&group)?, &name)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "name": name }), "renamed")
        }
        Command::Group(GroupCommand::Members { group }) => {
            let group = group_id(&group)?;
            let (members, admins) = (client.members(&group)?, client.admins(&group)?);
            let is_admin = |address: &String| admins.contains(address);
            let list: Vec<_> = members
                .iter()
                .map(|m| {
                    json!({ "address": m.address, "admin": is_admin(&m.address),
                            "identity": hex::encode(m.identity.to_bytes()) })
                })
                .collect();
            let text: Vec<_> = members
                .iter()
                .map(|m| match is_admin(&m.address) {
                    true => format!("{} (admin)", m.address),
                    false => m.address.clone(),
                })
                .collect();
            print(json, &serde_json::Value::Array(list), &text.join("\n"))
        }
        Command::Group(GroupCommand::Admin { group, address }) => {
            client.make_admin(&group_id(&group)?, std::slice::from_ref(&address))?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "admin": address }), "made admin")
        }
        Command::Send {
            group,
            text,
            reply_to,
            file,
            mime,
        } => {
            let what = match (&file, &text) {
                (Some(path), _) => chat::Outgoing::File {
                    path,
                    mime: mime.as_deref(),
                },
                (None, Some(text)) => chat::Outgoing::Text {
                    text,
                    reply_to: reply_to.as_deref(),
                },
                (None, None) => bail!("give a text or --file"),
            };
            let id = chat::send(&client, &group_id(&group)?, what)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "message": id }), &id)
        }
        Command::React {
            group,
            message,
            emoji,
            remove,
        } => {
            let id = client.react(&group_id(&group)?, &message, &emoji, remove)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "message": id }), &id)
        }
        Command::Edit {
            group,
            message,
            text,
        } => {
            let id = client.edit(&group_id(&group)?, &message, &text)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "message": id }), &id)
        }
        Command::Delete { group, message } => {
            let id = client.delete(&group_id(&group)?, &message)?;
            session::send_queued(&client, SEND_LIMIT)?;
            print(json, &json!({ "message": id }), &id)
        }
        Command::Save { message, path } => {
            let len = chat::save(&client, &message, &path)?;
            let text = format!("wrote {len} bytes to {}", path.display());
            print(json, &json!({ "path": path, "len": len }), &text)
        }
        Command::Sync { seconds } => {
            let limit = Some(Duration::from_secs(seconds));
            let events = commands::contacts::collect(&client, limit, Until::Deadline)?;
            let mut value = json!({ "synced": true });
            commands::contacts::merge(&mut value, commands::contacts::report(&events, json));
            print(json, &value, "synced")
        }
        Command::Watch { seconds } => {
            let limit = seconds.map(Duration::from_secs);
            session::run(&client, limit, Until::Deadline, |client, event| {
                chat::print_event(client, event, json)
            })
        }
        Command::History { group } => chat::history(&client, &group_id(&group)?, json),
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
