//! message-protection.
