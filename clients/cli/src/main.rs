//! The `kith` command-line client: a thin shell over `kith_core::client::Client`.
//!
//! ```text
//! kith --data-dir D init --relay HOST     create an account on the relay at HOST
//! kith --data-dir D bundle                print this device's key bundle (hex)
//! kith --data-dir D group create NAME     create a group; prints its id
//! kith --data-dir D group add GROUP BUNDLE
//! kith --data-dir D send GROUP TEXT       queue a text and send the outbox
//! kith --data-dir D sync [--seconds N]    fetch and send for N seconds
//! kith --data-dir D history GROUP         the messages shown in GROUP
//! ```
//! Every command takes `--json` for machine-readable output.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kith_core::account::Account;
use kith_core::client::Client;
use kith_core::content::Content;
use kith_core::group::GroupId;
use kith_core::transport::{InboxOptions, OutboxOptions, RelayEndpoint};
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
    /// Create an account on a relay (IMAP 993 and submission 465 at HOST).
    Init {
        /// The relay's domain.
        #[arg(long)]
        relay: String,
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
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("kith: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    if let Command::Init { relay } = &cli.command {
        let account = Account::create(&cli.data_dir, RelayEndpoint::standard(relay))
            .context("creating the account")?;
        return print(
            json,
            &serde_json::json!({ "address": account.address() }),
            account.address(),
        );
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
            sync(&client, Duration::from_secs(10), true)?;
            print(json, &serde_json::json!({ "added": true }), "added")
        }
        Command::Send { group, text } => {
            let id = client.send_text(&group_id(&group)?, &text)?;
            sync(&client, Duration::from_secs(10), true)?;
            print(json, &serde_json::json!({ "message": id }), &id)
        }
        Command::Sync { seconds } => {
            sync(&client, Duration::from_secs(seconds), false)?;
            print(json, &serde_json::json!({ "synced": true }), "synced")
        }
        Command::History { group } => history(&client, &group_id(&group)?, json),
    }
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

/// Runs the inbox and outbox for up to `limit`; with `until_sent`, stops as soon as the
/// outbox is empty.
fn sync(client: &Arc<Client>, limit: Duration, until_sent: bool) -> Result<()> {
    client.handle_timeout()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
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
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if until_sent && outbox.pending()? == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.cancel();
        inbox_task.await.context("inbox task")??;
        outbox_task.await.context("outbox task")??;
        if until_sent && outbox.pending()? > 0 {
            bail!("the relay did not accept every envelope yet; run `kith sync` later");
        }
        Ok(())
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
