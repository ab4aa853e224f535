//! kith-crypto: every cryptographic construction Kith uses, in one crate an auditor can read.
//!
//! Core and relay call this crate; neither contains cryptography of its own. No I/O, no
//! async, no unsafe. See `PROTOCOL.md` and `THREAT_MODEL.md` beside this crate.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod account_password;
pub mod backup;
pub mod certificate;
pub mod channel;
pub mod envelope;
pub mod fingerprint;
pub mod frame;
pub mod identity;
pub mod invite;
pub mod kat;
pub mod media;
pub mod mls;
pub mod padding;
pub mod recovery_code;
pub mod vectors;
