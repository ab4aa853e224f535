//! Integration tests of kith-crypto's identity, certificate, MLS, channel, invite and media
//! APIs, as core uses them (one binary; each area in `tests/keys/`).

/// Two members with Kith's MLS configuration, each over its own SQLite file: create, add,
/// Welcome, a commit as PublicMessage, application messages as PrivateMessage, a reload
/// from disk, and the certificate check on every leaf.
mod mls_groups;

/// Property tests: certificate, channel and invite round trips, flipped bits, wrong keys.
mod properties;

/// RFC 9420 interoperability vectors against the MLS stack we ship.
mod rfc9420;
