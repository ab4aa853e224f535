//! kith-relay: a zero-knowledge, chatmail-style relay that stores and forwards encrypted
//! envelopes over a trimmed SMTP/IMAP transport.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod context;
pub mod errors;
pub mod imap;
pub mod limits;
pub mod metrics;
pub mod store;
pub mod tls;
