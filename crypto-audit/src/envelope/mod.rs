//! The envelope: the RFC 5322 PGP/MIME message that relays see, and the relay's check.
//!
//! Every Kith message on the wire is an RFC 5322 message whose body is a PGP/MIME
//! (RFC 3156) `multipart/encrypted` message. [`check_envelope`] is the structural filter a
//! relay runs on every message it accepts or stores: the same rule as chatmail's
//! filtermail (PKESK/SKESK packets, then exactly one SEIPD packet that ends the payload).
//! See PROTOCOL.md sections 5 and 7.

mod check;
mod errors;

pub use check::{check_envelope, envelope_packets, PacketSummary};
pub use errors::EnvelopeError;
