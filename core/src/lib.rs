//! kith-core: the client core library every Kith client is a thin shell over.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod account;
pub mod db;
pub mod events;
pub mod transport;
