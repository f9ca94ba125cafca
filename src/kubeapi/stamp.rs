//! What the server makes up for a new object: a uid, a creation time and a
//! `generateName` suffix. Made by the caller and handed to the store, so the
//! store itself stays deterministic under test.

use std::time::{SystemTime, UNIX_EPOCH};

/// Server-made values for one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// `metadata.uid` for a created object (UUID form).
    pub uid: String,
    /// `metadata.creationTimestamp` (RFC 3339, seconds, UTC).
    pub now: String,
    /// Five characters appended to `metadata.generateName`.
    pub suffix: String,
}

impl Stamp {
    /// A fresh random uid and suffix, and the current time.
    pub fn fresh() -> Self {
        let bits: u128 = rand::random();
        let hex = format!("{bits:032x}");
        let uid = format!(
            "{}-{}-4{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[16..20],
            &hex[20..32]
        );
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let suffix = (0..5)
            .map(|i| ALPHABET[((bits >> (i * 8)) % ALPHABET.len() as u128) as usize] as char)
            .collect();
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            uid,
            now: rfc3339(secs),
            suffix,
        }
    }
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_469_245), "2026-12-05T11:14:05Z");
    }

    #[test]
    fn uid_has_uuid_form() {
        let s = Stamp::fresh();
        let parts: Vec<_> = s.uid.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(s.suffix.len(), 5);
    }
}
