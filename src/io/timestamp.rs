//! Timestamps.

use std::time::SystemTime;

/// Formats a time as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Now, as RFC 3339 in UTC.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}
