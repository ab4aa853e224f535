//! kith-relay: a zero-knowledge, chatmail-style relay that stores and forwards encrypted
//! envelopes over a trimmed SMTP/IMAP transport.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use kith_relay::{config::Config, context::RelayContext, tls};
//! let config = Config::load(std::path::Path::new("relay.toml"))?;
//! let tls = tls::load_server_config(&config.tls.cert, &config.tls.key)?;
//! let ctx = RelayContext::new(config, tls)?;
//! // Cancel `ctx.shutdown` (on SIGTERM) to stop it gracefully.
//! kith_relay::server::run(ctx).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod config;
mod config_template;
pub mod context;
pub mod errors;
pub(crate) mod federation;
pub(crate) mod http;
pub mod imap;
pub mod limits;
pub mod loopback;
pub mod metrics;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tls;
