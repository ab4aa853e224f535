//! The relay's configuration: one TOML file, every field with a documented default.
//!
//! `kith-relay init` writes a complete file; any field left out of a file takes the default
//! shown here (chatmail's defaults where chatmail has one).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::errors::ConfigError;

/// The whole relay configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The mail domain this relay serves: accounts are `<random>@<domain>`.
    pub domain: String,
    /// Directory holding the database (`relay.db`) and nothing else the relay writes.
    pub data_dir: PathBuf,
    /// Where to listen.
    pub listen: Listen,
    /// TLS certificate and key.
    pub tls: Tls,
    /// Account creation rules.
    pub accounts: Accounts,
    /// Size, quota, expiry and rate limits.
    pub limits: Limits,
    /// Outbound delivery to other relays.
    pub federation: Federation,
    /// Logging.
    pub logging: Logging,
}

/// Listening sockets. A `None` address (an empty string in the file) disables that listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// SMTP submission with implicit TLS (port 465 in production).
    #[serde(with = "optional_address")]
    pub submissions: Option<SocketAddr>,
    /// SMTP submission with STARTTLS (port 587 in production).
    #[serde(with = "optional_address")]
    pub submission: Option<SocketAddr>,
    /// Inbound SMTP from other relays (port 25 in production); STARTTLS offered.
    #[serde(with = "optional_address")]
    pub smtp: Option<SocketAddr>,
    /// IMAP with implicit TLS (port 993 in production).
    #[serde(with = "optional_address")]
    pub imaps: Option<SocketAddr>,
    /// IMAP with STARTTLS (port 143 in production).
    #[serde(with = "optional_address")]
    pub imap: Option<SocketAddr>,
    /// Prometheus metrics over plain HTTP; keep it on loopback.
    #[serde(with = "optional_address")]
    pub metrics: Option<SocketAddr>,
    /// Allow AUTH/LOGIN without TLS. Honoured only for loopback listeners; for tests and
    /// local development.
    pub allow_plaintext_on_loopback: bool,
}

/// TLS material (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Account creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// Create an account on the first login with an unknown address.
    pub create_on_login: bool,
    /// Exact length of the random local part of a new address.
    pub username_length: usize,
    /// Minimum password length for a new account.
    pub password_min_length: usize,
    /// Refuse to create accounts when the data directory's file system has less free space
    /// than this many MiB.
    pub min_free_disk_mib: u64,
}

/// Limits; every one answers with a clear SMTP/IMAP error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message accepted, in bytes (refused as soon as it is exceeded).
    pub max_message_bytes: u64,
    /// Mailbox quota in bytes; when a delivery exceeds it, the oldest messages are trimmed.
    pub mailbox_quota_bytes: u64,
    /// Messages are deleted this many days after arrival, fetched or not.
    pub expiry_days: u32,
    /// Messages one account may send per minute.
    pub send_per_minute: u32,
    /// Concurrent connections from one IP address (all listeners together).
    pub connections_per_ip: u32,
    /// Failed logins allowed from one IP address per minute.
    pub failed_logins_per_ip_per_minute: u32,
    /// Recipients in one message.
    pub max_recipients: usize,
    /// Seconds a client may stay silent before the connection is closed (IDLE excepted,
    /// which is allowed 30 minutes as RFC 2177 requires).
    pub idle_timeout_secs: u64,
}

/// Outbound delivery to other relays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Federation {
    /// Static routes: domain → `host:port`, tried instead of MX lookup.
    pub routes: std::collections::BTreeMap<String, String>,
    /// Skip certificate verification when connecting to static routes (tests and private
    /// deployments with self-signed certificates only).
    pub insecure_static_routes: bool,
    /// First retry delay in seconds; doubles on every failure.
    pub retry_initial_secs: u64,
    /// Largest retry delay in seconds.
    pub retry_max_secs: u64,
    /// Give up (and drop the message) after this many hours in the queue.
    pub give_up_after_hours: u64,
}

/// Logging.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// Log IP addresses (off by default: chatmail logs none).
    pub log_ip_addresses: bool,
    /// Log mail addresses (off by default).
    pub log_mail_addresses: bool,
}

/// A listener address in the file: `"host:port"`, or `""` for a disabled listener. (TOML has
/// no null, and a missing field takes the default, so the empty string is the only way to
/// switch a listener off.)
mod optional_address {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        address: &Option<SocketAddr>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => serializer.collect_str(address),
            None => serializer.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim()
            .parse()
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            data_dir: PathBuf::from("kith-relay-data"),
            listen: Listen::default(),
            tls: Tls::default(),
            accounts: Accounts::default(),
            limits: Limits::default(),
            federation: Federation::default(),
            logging: Logging::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        let local = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        Self {
            submissions: local(4650),
            submission: local(5870),
            smtp: local(2525),
            imaps: local(9930),
            imap: local(1430),
            metrics: local(9100),
            allow_plaintext_on_loopback: false,
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            cert: PathBuf::from("cert.pem"),
            key: PathBuf::from("key.pem"),
        }
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            create_on_login: true,
            username_length: 9,
            password_min_length: 9,
            min_free_disk_mib: 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 30 * 1024 * 1024,
            mailbox_quota_bytes: 100 * 1024 * 1024,
            expiry_days: 20,
            send_per_minute: 60,
            connections_per_ip: 20,
            failed_logins_per_ip_per_minute: 10,
            max_recipients: 1000,
            idle_timeout_secs: 300,
        }
    }
}

impl Default for Federation {
    fn default() -> Self {
        Self {
            routes: Default::default(),
            insecure_static_routes: false,
            retry_initial_secs: 30,
            retry_max_secs: 3600,
            give_up_after_hours: 72,
        }
    }
}

impl Config {
    /// Reads a config file. Relative paths inside it are taken relative to the file's
    /// directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.tls.cert = base.join(&config.tls.cert);
        config.tls.key = base.join(&config.tls.key);
        config.validate()?;
        Ok(config)
    }

    /// Checks values that TOML alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, why: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: why.to_owned(),
            })
        };
        if self.domain.is_empty() || self.domain.contains(['@', ' ']) {
            return invalid("domain", "must be a bare domain name");
        }
        if self.accounts.username_length < 3 {
            return invalid("accounts.username_length", "must be at least 3");
        }
        if self.accounts.password_min_length < 8 {
            return invalid("accounts.password_min_length", "must be at least 8");
        }
        if self.limits.max_recipients == 0 {
            return invalid("limits.max_recipients", "must be at least 1");
        }
        if self.limits.max_message_bytes > self.limits.mailbox_quota_bytes {
            return invalid(
                "limits.max_message_bytes",
                "must not exceed the mailbox quota",
            );
        }
        Ok(())
    }

    /// Serialises the config as TOML (what `kith-relay init` writes).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config is always representable as TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_config_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            domain: "relay.example".into(),
            ..Config::default()
        };
        config
            .federation
            .routes
            .insert("other.example".into(), "127.0.0.1:2526".into());
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        let read = Config::load(&path).unwrap();
        assert_eq!(read.domain, "relay.example");
        assert_eq!(read.data_dir, dir.path().join("kith-relay-data"));
        assert_eq!(read.federation.routes["other.example"], "127.0.0.1:2526");
        assert_eq!(read.limits.max_message_bytes, 30 * 1024 * 1024);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "domain = \"a.example\"\n[limits]\nexpiry_days = 3\n").unwrap();
        let read = Config::load(&path).unwrap();
        assert_eq!(read.limits.expiry_days, 3);
        assert_eq!(read.limits.max_recipients, 1000);

        std::fs::write(&path, "domian = \"typo.example\"\n").unwrap();
        assert!(matches!(
            Config::load(&path),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let config = Config {
            domain: "a@b".into(),
            ..Config::default()
        };
        match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "domain"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
