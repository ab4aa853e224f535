//! What every listener shares: configuration, store, limits, metrics, TLS, shutdown signal.
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::store::{AccountPolicy, Store, StoreLimits, UnixTime};

/// Shared state of a running relay; cheap to clone.
#[derive(Clone)]
pub struct RelayContext {
    /// The configuration the relay was started with.
    pub config: Arc<Config>,
    /// The message store.
    pub store: Store,
    /// Rate limits.
    pub limiter: Arc<Limiter>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// TLS server configuration for every listener.
    pub tls: Arc<rustls::ServerConfig>,
    /// Cancelled when the relay shuts down; every loop that waits also waits on this.
    pub shutdown: CancellationToken,
    /// Woken when a message for another relay was queued, so the queue runner delivers it
    /// at once.
    pub outbound: Arc<Notify>,
}

impl RelayContext {
    /// Builds the context: opens the store in the configured data directory.
    pub fn new(
        config: Config,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<Self, crate::errors::StoreError> {
        let store = Store::open(&config.data_dir, store_limits(&config))?;
        Ok(Self {
            limiter: Arc::new(Limiter::new(config.limits.clone())),
            config: Arc::new(config),
            store,
            metrics: Arc::default(),
            tls,
            shutdown: CancellationToken::new(),
            outbound: Arc::default(),
        })
    }

    /// The account rules from the configuration.
    pub fn account_policy(&self) -> AccountPolicy {
        let accounts = &self.config.accounts;
        AccountPolicy {
            domain: self.config.domain.clone(),
            create_on_login: accounts.create_on_login,
            username_length: accounts.username_length,
            password_min_length: accounts.password_min_length,
            min_free_disk_bytes: accounts.min_free_disk_mib * 1024 * 1024,
        }
    }

    /// Whether `address` belongs to this relay's domain.
    pub fn is_local(&self, address: &str) -> bool {
        address
            .rsplit_once('@')
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&self.config.domain))
    }
}

/// The store limits from the configuration.
pub fn store_limits(config: &Config) -> StoreLimits {
    StoreLimits {
        mailbox_quota_bytes: config.limits.mailbox_quota_bytes,
        expiry_secs: i64::from(config.limits.expiry_days) * 86_400,
    }
}

/// The current time in Unix seconds (the edge where the clock is read).
pub fn unix_now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
