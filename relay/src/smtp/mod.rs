//! SMTP: submission from clients and inbound delivery from other relays.
//!
//! The protocol is a sans-IO state machine ([`Session`]) fed by a thin tokio edge
//! (`edge`), one task per connection.
mod commands;
pub(crate) mod edge;
pub(crate) mod envelope;
mod headers;
mod reply;
mod session;

pub use headers::strip_trace_headers;
pub use reply::Reply;
pub use session::{Action, ListenerKind, LoginResult, Session, SessionConfig};

#[cfg(test)]
mod tests;
