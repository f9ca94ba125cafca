//! The CNI spec versions tweed answers to, and what changes between them.
//!
//! A result is written in the version the configuration asks for: 0.3.x and
//! 0.4.0 results carry `"version":"4"|"6"` on each IP, 1.0.0 dropped it, and
//! 1.1.0 added the interface `mtu`. CHECK exists from 0.4.0, STATUS and GC from
//! 1.1.0.

use std::fmt;

/// A supported `cniVersion`, in spec order (so `<` means "older").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// 0.3.0.
    V0_3_0,
    /// 0.3.1.
    V0_3_1,
    /// 0.4.0: adds CHECK.
    V0_4_0,
    /// 1.0.0: drops the IP `version` field.
    V1_0_0,
    /// 1.1.0: adds STATUS, GC and the interface `mtu`.
    V1_1_0,
}

impl CniVersion {
    /// Every supported version, oldest first (VERSION's `supportedVersions`).
    pub const ALL: [CniVersion; 5] = [
        CniVersion::V0_3_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];

    /// The newest version, used when the input names none we know.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// The version string, e.g. `"1.1.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// The supported version spelt `s`, if any.
    pub fn parse(s: &str) -> Option<CniVersion> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Every supported version string, for messages and VERSION.
    pub fn supported() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }

    /// Whether each IP of a result carries `"version":"4"|"6"` (before 1.0.0).
    pub fn ip_has_version_field(self) -> bool {
        self < CniVersion::V1_0_0
    }

    /// Whether a result's interface carries `mtu` (1.1.0).
    pub fn interface_has_mtu(self) -> bool {
        self >= CniVersion::V1_1_0
    }

    /// Whether CHECK exists (0.4.0 and later).
    pub fn allows_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// Whether STATUS and GC exist (1.1.0).
    pub fn allows_status_and_gc(self) -> bool {
        self >= CniVersion::V1_1_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_order() {
        for v in CniVersion::ALL {
            assert_eq!(CniVersion::parse(v.as_str()), Some(v));
        }
        assert_eq!(CniVersion::parse("0.2.0"), None);
        assert_eq!(CniVersion::parse("1.1"), None);
        assert!(CniVersion::V0_4_0 < CniVersion::V1_0_0);
        assert_eq!(
            CniVersion::supported(),
            ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        );
    }

    #[test]
    fn features_follow_the_spec_history() {
        assert!(CniVersion::V0_4_0.ip_has_version_field());
        assert!(!CniVersion::V1_0_0.ip_has_version_field());
        assert!(!CniVersion::V0_3_1.allows_check());
        assert!(CniVersion::V0_4_0.allows_check());
        assert!(!CniVersion::V1_0_0.allows_status_and_gc());
        assert!(CniVersion::V1_1_0.allows_status_and_gc());
        assert!(CniVersion::V1_1_0.interface_has_mtu());
        assert!(!CniVersion::V1_0_0.interface_has_mtu());
    }
}
