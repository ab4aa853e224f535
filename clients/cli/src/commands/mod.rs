//! Commands in files of their own (the contact commands), and the exit codes.
pub(crate) mod contacts;

/// The exit code for an error (see the crate documentation).
pub(crate) fn exit_code(error: &anyhow::Error) -> i32 {
    use kith_core::client::ClientError;
    use kith_core::contacts::ContactError;
    if error.downcast_ref::<contacts::Refused>().is_some() {
        return 5;
    }
    if error.downcast_ref::<contacts::Pending>().is_some() {
        return 7;
    }
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::Contact(ContactError::Link(_) | ContactError::WrongKind(_)))
        | Some(ClientError::Contact(ContactError::OwnInvite)) => 3,
        Some(ClientError::Contact(ContactError::Expired { .. })) => 4,
        Some(ClientError::Contact(ContactError::UnknownContact(_))) => 6,
        _ => 1,
    }
}
