//! The peer and port shapes shared by Kubernetes and ordered policies
//! (`NetworkPolicyPeer`, `IPBlock`, `NetworkPolicyPort`).

use std::fmt;

use ipnet::IpNet;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::selector::LabelSelector;
use crate::policy::serde_util::null_default;

/// One entry of a rule's `from` or `to`: an `ipBlock`, or pod and/or namespace selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peer {
    /// Pods (of the policy's namespace, unless `namespace_selector` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces whose pods (matching `pod_selector`, if given) are selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// A range of addresses; never together with the selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

/// `cidr` minus every `except`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpBlock {
    /// The range, as written (host bits are kept here and cleared when compiled).
    pub cidr: Cidr,
    /// Sub-ranges of `cidr` that are not selected.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except: Vec<Cidr>,
}

/// A CIDR in `ipBlock`, read from a string such as `10.0.0.0/16` or `fd00::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// The network with host bits cleared, as the dataplane wants it.
    pub fn network(&self) -> IpNet {
        self.0.trunc()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CidrVisitor;
        impl Visitor<'_> for CidrVisitor {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CIDR string such as \"10.0.0.0/16\" or \"fd00::/64\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Cidr, E> {
                text.parse().map(Cidr).map_err(|_| {
                    E::custom(format!(
                        "{text:?} is not a CIDR: write an address and a prefix length, \
                         such as \"10.0.0.0/16\" or \"fd00::/64\""
                    ))
                })
            }
        }
        deserializer.deserialize_str(CidrVisitor)
    }
}

/// One entry of a rule's `ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// `None` = TCP (the Kubernetes default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// A number or a named container port; `None` = every port of the protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortValue>,
    /// The last port of a range starting at a numeric `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

impl Port {
    /// The protocol, defaulted to TCP.
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or(Protocol::Tcp)
    }
}

/// The protocols a Kubernetes port names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// TCP, protocol 6.
    Tcp,
    /// UDP, protocol 17.
    Udp,
    /// SCTP, protocol 132.
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        use tweed_dataplane::table::acl::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};
        match self {
            Protocol::Tcp => PROTO_TCP,
            Protocol::Udp => PROTO_UDP,
            Protocol::Sctp => PROTO_SCTP,
        }
    }
}

/// Kubernetes' `IntOrString` for a port: a number, or a container port's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortValue {
    /// A port number (checked to be 1..=65535 when parsed).
    Number(i64),
    /// A named container port: tweed cannot resolve these, so they match nothing.
    Name(String),
}

impl Serialize for PortValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PortValue::Number(n) => serializer.serialize_i64(*n),
            PortValue::Name(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = PortValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1..=65535) or a port name")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PortValue, E> {
                Ok(PortValue::Number(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PortValue, E> {
                Ok(PortValue::Number(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<PortValue, E> {
                Ok(PortValue::Name(name.to_owned()))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}
