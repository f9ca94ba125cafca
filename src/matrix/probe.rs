//! What one cell sends: a protocol and a destination port (`tcp/80`), and the
//! selectors expectations pick probes with (`*`, `udp/*`, `tcp/80-443`).

use std::fmt;
use std::str::FromStr;

/// The transport a probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// A TCP connect.
    Tcp,
    /// A UDP datagram and its echo.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IP protocol number (6, 17), as policy rules name it.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// One probe: a protocol and a destination port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Probe {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The destination port.
    pub port: u16,
}

impl Probe {
    /// A TCP connect to `port`.
    pub const fn tcp(port: u16) -> Self {
        Self {
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// A UDP echo on `port`.
    pub const fn udp(port: u16) -> Self {
        Self {
            protocol: Protocol::Udp,
            port,
        }
    }
}

/// The probes a matrix sends unless told otherwise: three TCP ports (one of
/// them outside the privileged range) and two UDP ports.
pub const DEFAULT_PROBES: [Probe; 5] = [
    Probe::tcp(80),
    Probe::tcp(443),
    Probe::tcp(8080),
    Probe::udp(53),
    Probe::udp(5353),
];

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol.name(), self.port)
    }
}

impl FromStr for Probe {
    type Err = String;

    /// `tcp/80` or `udp/53`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (proto, port) = text
            .split_once('/')
            .ok_or_else(|| format!("probe {text:?} is not PROTO/PORT"))?;
        Ok(Self {
            protocol: Protocol::parse(proto)
                .ok_or_else(|| format!("probe {text:?}: protocol is not tcp or udp"))?,
            port: port
                .parse()
                .map_err(|e| format!("probe {text:?}: port: {e}"))?,
        })
    }
}

/// A set of probes: `*`, `tcp/*`, `udp/53` or `tcp/80-443` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSelector {
    protocol: Option<Protocol>,
    ports: Option<(u16, u16)>,
}

impl ProbeSelector {
    /// Parses a selector; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self {
                protocol: None,
                ports: None,
            });
        }
        let bad = |why: &str| {
            format!("probe selector {text:?}: {why} (try *, tcp/*, udp/53, tcp/80-443)")
        };
        let (proto, ports) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let protocol = Protocol::parse(proto).ok_or_else(|| bad("protocol is not tcp or udp"))?;
        let port = |p: &str| p.parse::<u16>().map_err(|_| bad("not a port"));
        let ports = match ports {
            "*" => None,
            range => {
                let (first, last) = range.split_once('-').unwrap_or((range, range));
                let (first, last) = (port(first)?, port(last)?);
                if first > last {
                    return Err(bad("the range is empty"));
                }
                Some((first, last))
            }
        };
        Ok(Self {
            protocol: Some(protocol),
            ports,
        })
    }

    /// Whether `probe` is in the set.
    pub fn matches(&self, probe: Probe) -> bool {
        self.protocol.is_none_or(|p| p == probe.protocol)
            && self
                .ports
                .is_none_or(|(first, last)| (first..=last).contains(&probe.port))
    }
}

#[cfg(test)]
mod tests {
    use super::{Probe, ProbeSelector};

    #[test]
    fn probes_print_and_parse_as_proto_slash_port() {
        assert_eq!(Probe::tcp(80).to_string(), "tcp/80");
        assert_eq!("udp/5353".parse::<Probe>(), Ok(Probe::udp(5353)));
        assert!("icmp/1".parse::<Probe>().is_err());
        assert!("tcp".parse::<Probe>().is_err());
    }

    #[test]
    fn selectors_take_any_a_protocol_a_port_or_an_inclusive_range() {
        let sel = |t: &str| ProbeSelector::parse(t).unwrap();
        assert!(sel("*").matches(Probe::udp(53)));
        assert!(sel("tcp/*").matches(Probe::tcp(1)));
        assert!(!sel("tcp/*").matches(Probe::udp(1)));
        assert!(sel("udp/53").matches(Probe::udp(53)));
        assert!(!sel("udp/53").matches(Probe::udp(54)));
        assert!(sel("tcp/443-8080").matches(Probe::tcp(443)));
        assert!(sel("tcp/443-8080").matches(Probe::tcp(8080)));
        assert!(!sel("tcp/443-8080").matches(Probe::tcp(80)));
        for bad in ["tcp", "sctp/1", "tcp/x", "tcp/9-1", "tcp/70000"] {
            assert!(ProbeSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
