//! The RFC 5322 / RFC 3156 text of an envelope (PROTOCOL.md §5.1–5.2).

/// The MIME boundary. Fixed: it never occurs in base64 armor, and a random one would only
/// add noise to the size.
pub(crate) const BOUNDARY: &str = "kith-envelope";

/// The outer headers of an envelope: everything a relay sees besides the size.
pub(crate) struct Headers<'a> {
    /// The sender device's address.
    pub(crate) from: &'a str,
    /// The Message-ID without angle brackets (hint ‖ "@" ‖ domain).
    pub(crate) message_id: &'a str,
    /// Current time; shown rounded down to the hour.
    pub(crate) now_unix: u64,
}

/// Renders the whole message with CRLF line ends.
pub(crate) fn render(headers: &Headers<'_>, armored: &str) -> Vec<u8> {
    let date = rfc5322_hour(headers.now_unix);
    let mut lines = vec![
        format!("From: {}", headers.from),
        "To: undisclosed-recipients:;".to_owned(),
        "Subject: [...]".to_owned(),
        format!("Date: {date}"),
        format!("Message-ID: <{}>", headers.message_id),
        "MIME-Version: 1.0".to_owned(),
        format!(
            "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; \
             boundary=\"{BOUNDARY}\""
        ),
        String::new(),
        format!("--{BOUNDARY}"),
        "Content-Type: application/pgp-encrypted".to_owned(),
        String::new(),
        "Version: 1".to_owned(),
        String::new(),
        format!("--{BOUNDARY}"),
        "Content-Type: application/octet-stream".to_owned(),
        String::new(),
    ];
    lines.extend(armored.lines().map(str::to_owned));
    lines.push(String::new());
    lines.push(format!("--{BOUNDARY}--"));
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text.into_bytes()
}

/// An RFC 5322 date for `unix` rounded down to the hour, in UTC, with a two-digit day
/// (so every Date header has the same length): `Sun, 01 Nov 2026 18:00:00 +0000`.
pub(crate) fn rfc5322_hour(unix: u64) -> String {
    let hour_start = unix - unix % 3600;
    let dt = mail_parser::DateTime::from_timestamp(i64::try_from(hour_start).unwrap_or(0));
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[((hour_start / 86_400 + 4) % 7) as usize];
    let month = MONTHS[usize::from(dt.month.clamp(1, 12)) - 1];
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:00:00 +0000",
        dt.day, dt.year, dt.hour
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_rounded_to_the_hour_with_two_digit_day() {
        // 2026-11-01 18:59:59 UTC.
        assert_eq!(
            rfc5322_hour(1_793_559_599),
            "Sun, 01 Nov 2026 18:00:00 +0000"
        );
        assert_eq!(rfc5322_hour(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    }
}
