//! The envelope: the RFC 5322 PGP/MIME message that relays see, and the relay's check.
//!
//! Every Kith message on the wire is an RFC 5322 message whose body is a PGP/MIME
//! (RFC 3156) `multipart/encrypted` message. [`check_envelope`] is the structural filter a
//! relay runs on every message it accepts or stores: the same rule as chatmail's
//! filtermail (PKESK/SKESK packets, then exactly one SEIPD packet that ends the payload).
//! [`seal`] and [`open`] build and read envelopes for the three key kinds; [`find_key`]
//! and [`hint_matches`] read the per-message hint. See PROTOCOL.md sections 5 to 7.
//!
//! ```
//! use kith_crypto::envelope::{check_envelope, open, seal, OpenKey, SealKey, SymmetricKey, SymmetricKind};
//! use kith_crypto::frame::{Frame, FrameKind};
//! let key = SymmetricKey::new(SymmetricKind::Epoch, [7; 32]);
//! let frame = Frame { kind: FrameKind::Mls, payload: b"mls bytes".to_vec() };
//! let mail = seal(&frame, SealKey::Symmetric(&key), "a1b2@relay.example", 1_800_000_000,
//!                 &mut rand::rngs::OsRng).unwrap();
//! check_envelope(&mail).unwrap();
//! assert_eq!(open(&mail, OpenKey::Symmetric(&key)).unwrap(), frame);
//! ```

pub(crate) mod check;
mod errors;
mod hint;
mod keys;
mod mime;
pub(crate) mod open;
pub(crate) mod seal;

pub use check::{check_envelope, envelope_layout, envelope_packets, EnvelopeLayout, PacketSummary};
pub use errors::EnvelopeError;
pub use hint::{find_key, hint_matches, HINT_NONCE_LEN, HINT_TAG_LEN};
pub use keys::{DeviceKeypair, DevicePublicKey, OpenKey, SealKey, SymmetricKey, SymmetricKind};
pub use open::open;
pub use seal::seal;
pub(crate) mod vectors;
