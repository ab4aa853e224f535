//! kith-core: the client core library every Kith client is a thin shell over.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod content;
pub mod group;
