//! The chat commands: send (text, reply, file), react, edit, delete, save a file, history,
//! and how `watch` prints what arrives.
use std::path::Path;

use anyhow::{bail, Context, Result};
use kith_core::client::{ChatMessage, Client, MessageBody};
use kith_core::events::Event;
use kith_core::group::GroupId;
use serde_json::{json, Value};

/// What `kith send` sends.
pub(crate) enum Outgoing<'a> {
    /// A text, possibly a reply.
    Text {
        /// The text.
        text: &'a str,
        /// The message replied to (hex id).
        reply_to: Option<&'a str>,
    },
    /// A file from disk.
    File {
        /// Its path.
        path: &'a Path,
        /// Its media type, if the user gave one.
        mime: Option<&'a str>,
    },
}

/// Sends a text, reply or file; returns the new message's id.
pub(crate) fn send(client: &Client, group: &GroupId, what: Outgoing<'_>) -> Result<String> {
    Ok(match what {
        Outgoing::Text {
            text,
            reply_to: None,
        } => client.send_text(group, text)?,
        Outgoing::Text {
            text,
            reply_to: Some(to),
        } => client.reply(group, to, text)?,
        Outgoing::File { path, mime } => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the file {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".to_owned());
            let mime = mime.unwrap_or_else(|| guess_mime(&name));
            client.send_file(group, &name, mime, &bytes)?
        }
    })
}

/// A media type from a file name's extension (the common ones; the rest are octets).
fn guess_mime(name: &str) -> &'static str {
    let extension = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "txt" | "md" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Writes a received file (by its message id) to `path`; refuses to overwrite.
pub(crate) fn save(client: &Client, message: &str, path: &Path) -> Result<u64> {
    let Some(file) = client.file(message)? else {
        bail!("no complete file with id {message} on this device");
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    std::io::Write::write_all(&mut out, &file.bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file.bytes.len() as u64)
}

/// One message as JSON.
pub(crate) fn message_json(m: &ChatMessage) -> Value {
    let (kind, text, file) = match &m.body {
        MessageBody::Text(text) => ("text", Some(text.as_str()), None),
        MessageBody::File { name, mime, len } => (
            "file",
            None,
            Some(json!({ "name": name, "mime": mime, "len": len })),
        ),
        MessageBody::Deleted => ("deleted", None, None),
        _ => ("unknown", None, None),
    };
    json!({
        "id": m.id, "sender": m.sender, "sent_at": m.sent_at, "outgoing": m.is_outgoing,
        "kind": kind, "text": text, "file": file, "reply_to": m.reply_to,
        "edited": m.edited, "reactions": m.reactions,
    })
}

/// One message as a line of text.
pub(crate) fn message_line(m: &ChatMessage) -> String {
    let body = match &m.body {
        MessageBody::Text(text) => text.clone(),
        MessageBody::File { name, mime, len } => format!("[file {name}, {mime}, {len} bytes]"),
        MessageBody::Deleted => "[deleted]".to_owned(),
        _ => "[?]".to_owned(),
    };
    let mut line = format!("{} {} {}: {body}", short(&m.id), m.sent_at, m.sender);
    if let Some(to) = &m.reply_to {
        line = format!("{line}  (reply to {})", short(to));
    }
    if m.edited {
        line.push_str("  (edited)");
    }
    for (emoji, who) in &m.reactions {
        line.push_str(&format!("  {emoji}×{}", who.len()));
    }
    line
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Prints a group's history.
pub(crate) fn history(client: &Client, group: &GroupId, json: bool) -> Result<()> {
    let messages = client.history(group)?;
    if json {
        let list: Vec<Value> = messages.iter().map(message_json).collect();
        println!("{}", Value::Array(list));
    } else {
        for m in &messages {
            println!("{}", message_line(m));
        }
    }
    Ok(())
}

/// Prints one event for `kith watch`: arriving and changed messages in full, the rest as
/// a short description. JSON output is one object per line.
pub(crate) fn print_event(client: &Client, event: &Event, json: bool) -> Result<()> {
    let (kind, value) = match event {
        Event::MessageReceived { chat, message } | Event::MessageChanged { chat, message } => {
            let kind = if matches!(event, Event::MessageReceived { .. }) {
                "message"
            } else {
                "changed"
            };
            let group = client.chat_group(*chat)?;
            let found = match &group {
                Some(g) => client.history(g)?.into_iter().find(|m| m.id == message.0),
                None => None,
            };
            let group_hex = group.map(|g| hex::encode(g.0)).unwrap_or_default();
            match found {
                Some(m) if json => (
                    kind,
                    json!({ "group": group_hex, "message": message_json(&m) }),
                ),
                Some(m) => {
                    println!(
                        "{kind} in {}: {}",
                        &group_hex[..group_hex.len().min(8)],
                        message_line(&m)
                    );
                    return Ok(());
                }
                None => (kind, json!({ "group": group_hex, "id": message.0 })),
            }
        }
        Event::Group(group_event) => ("group", json!({ "event": format!("{group_event:?}") })),
        Event::ConnectionChanged(state) => ("connection", json!({ "state": format!("{state:?}") })),
        Event::EnvelopeRejected { reason, .. } => ("rejected", json!({ "reason": reason })),
        Event::OutboxChanged { pending } => ("outbox", json!({ "pending": pending })),
        _ => return Ok(()),
    };
    if json {
        println!("{}", json!({ "event": kind, "data": value }));
    } else {
        println!("{kind}: {value}");
    }
    Ok(())
}
