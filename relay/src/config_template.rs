//! The commented `relay.toml` that `kith-relay init` writes: the values come from the
//! [`Config`] being written (so defaults never drift), the comments from [`FIELD_DOCS`].
use toml_edit::{DocumentMut, Item};

use crate::config::Config;

/// One comment per table and field, by dotted path.
const FIELD_DOCS: &[(&str, &str)] = &[
    (
        "domain",
        "The mail domain this relay serves: accounts are <random>@<domain>.",
    ),
    (
        "data_dir",
        "Directory for the database (relay.db); relative to this file.",
    ),
    (
        "listen",
        "Listening sockets, \"host:port\"; \"\" switches a listener off.",
    ),
    (
        "listen.submissions",
        "SMTP submission with implicit TLS (465 in production).",
    ),
    (
        "listen.submission",
        "SMTP submission with STARTTLS (587 in production).",
    ),
    (
        "listen.smtp",
        "Inbound SMTP from other relays (25 in production); STARTTLS offered, no AUTH.",
    ),
    (
        "listen.imaps",
        "IMAP with implicit TLS (993 in production).",
    ),
    ("listen.imap", "IMAP with STARTTLS (143 in production)."),
    (
        "listen.metrics",
        "Prometheus metrics, plain HTTP GET /metrics: keep it on loopback.",
    ),
    (
        "listen.allow_plaintext_on_loopback",
        "Allow AUTH/LOGIN without TLS on loopback listeners (tests, local development).",
    ),
    (
        "tls",
        "TLS certificate chain and private key, PEM; relative to this file.",
    ),
    ("tls.cert", "Certificate chain (PEM)."),
    ("tls.key", "Private key (PEM); keep it mode 0600."),
    (
        "accounts",
        "Accounts are created on first login, the chatmail way.",
    ),
    (
        "accounts.create_on_login",
        "Create an account when an unknown address logs in.",
    ),
    (
        "accounts.username_length",
        "Exact length of a new account's local part (a-z, 0-9).",
    ),
    (
        "accounts.password_min_length",
        "Shortest password a new account may have.",
    ),
    (
        "accounts.min_free_disk_mib",
        "Refuse new accounts when the data directory has less free space (MiB).",
    ),
    (
        "limits",
        "Limits; each is answered with a clear SMTP/IMAP error.",
    ),
    (
        "limits.max_message_bytes",
        "Largest message accepted (bytes); refused with 552 as soon as exceeded.",
    ),
    (
        "limits.mailbox_quota_bytes",
        "Mailbox quota (bytes); the oldest messages are trimmed to make room.",
    ),
    (
        "limits.expiry_days",
        "Messages are deleted this many days after arrival, fetched or not.",
    ),
    (
        "limits.send_per_minute",
        "Messages one account may send per minute (450 4.7.1 beyond).",
    ),
    (
        "limits.connections_per_ip",
        "Concurrent connections from one IP address (421 beyond).",
    ),
    (
        "limits.failed_logins_per_ip_per_minute",
        "Failed logins from one IP address per minute (421 beyond).",
    ),
    (
        "limits.max_recipients",
        "Recipients per message (452 4.5.3 beyond).",
    ),
    (
        "limits.idle_timeout_secs",
        "Seconds a client may stay silent before it is disconnected.",
    ),
    (
        "federation",
        "Delivery to other relays: MX lookup, or a static route per domain.",
    ),
    (
        "federation.routes",
        "Static routes: domain = \"host:port\", used instead of MX lookup.",
    ),
    (
        "federation.insecure_static_routes",
        "Accept self-signed certificates on static routes (tests and private deployments only).",
    ),
    (
        "federation.retry_initial_secs",
        "First retry delay after a failed delivery (seconds); doubles each time.",
    ),
    (
        "federation.retry_max_secs",
        "Longest retry delay (seconds).",
    ),
    (
        "federation.give_up_after_hours",
        "Drop a message still undelivered after this many hours.",
    ),
    ("logging", "Logging. Message content is never logged."),
    (
        "logging.log_ip_addresses",
        "Log client IP addresses (off by default, as chatmail).",
    ),
    (
        "logging.log_mail_addresses",
        "Log mail addresses (off by default).",
    ),
];

impl Config {
    /// The configuration as TOML with a comment above every table and field.
    pub fn to_commented_toml(&self) -> String {
        let mut doc: DocumentMut = self.to_toml().parse().expect("our own TOML output parses");
        for (path, comment) in FIELD_DOCS {
            annotate(&mut doc, path, comment);
        }
        format!(
            "# kith-relay configuration. Every field may be left out: it then takes the value\n\
             # shown here (its default unless `kith-relay init` was told otherwise).\n\n{doc}"
        )
    }
}

fn annotate(doc: &mut DocumentMut, path: &str, comment: &str) {
    let prefix = format!("\n# {comment}\n");
    match path.split_once('.') {
        None => match doc.get_mut(path) {
            Some(Item::Table(table)) => table.decor_mut().set_prefix(prefix),
            Some(_) => {
                if let Some(mut key) = doc.as_table_mut().key_mut(path) {
                    key.leaf_decor_mut().set_prefix(prefix.trim_start());
                }
            }
            None => {}
        },
        Some((table, field)) => {
            let Some(Item::Table(table)) = doc.get_mut(table) else {
                return;
            };
            match table.get_mut(field) {
                Some(Item::Table(inner)) => inner.decor_mut().set_prefix(prefix),
                Some(_) => {
                    if let Some(mut key) = table.key_mut(field) {
                        key.leaf_decor_mut().set_prefix(prefix.trim_start());
                    }
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_comment_and_the_file_reads_back() {
        let config = Config::default();
        let toml = config.to_toml();
        let doc: DocumentMut = toml.parse().unwrap();
        for (name, item) in doc.iter() {
            assert!(
                FIELD_DOCS.iter().any(|(p, _)| *p == name),
                "no comment for {name}"
            );
            if let Item::Table(table) = item {
                for (field, _) in table.iter() {
                    let path = format!("{name}.{field}");
                    assert!(
                        FIELD_DOCS.iter().any(|(p, _)| *p == path),
                        "no comment for {path}"
                    );
                }
            }
        }
        let commented = config.to_commented_toml();
        assert!(commented.contains("# Largest message accepted"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, &commented).unwrap();
        let read = Config::load(&path).unwrap();
        assert_eq!(
            read.limits.max_message_bytes,
            config.limits.max_message_bytes
        );
        assert_eq!(read.listen.smtp, config.listen.smtp);
    }

    #[test]
    fn an_empty_address_disables_a_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "[listen]\nimap = \"\"\nsmtp = \"127.0.0.1:2600\"\n").unwrap();
        let read = Config::load(&path).unwrap();
        assert_eq!(read.listen.imap, None);
        assert_eq!(read.listen.smtp, Some("127.0.0.1:2600".parse().unwrap()));
        assert!(read.listen.imaps.is_some());
        let written = Config::load(&path).unwrap().to_toml();
        assert!(written.contains("imap = \"\""));
    }
}
