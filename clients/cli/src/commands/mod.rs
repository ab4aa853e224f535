//! The commands beyond `init`, one file per area; helpers they share.
pub(crate) mod contacts;

use anyhow::{Context, Result};
use kith_core::group::GroupId;

/// A group id from its hex form.
pub(crate) fn group_id(hex_id: &str) -> Result<GroupId> {
    Ok(GroupId(
        hex::decode(hex_id.trim()).context("the group id is not hex")?,
    ))
}

/// Prints `value` as one line of JSON, or `text`.
pub(crate) fn print(json: bool, value: &serde_json::Value, text: &str) -> Result<()> {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(())
}
