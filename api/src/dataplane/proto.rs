//! The wire types of the config API: the request envelope, every op's
//! arguments and answer, and the error reply. See `dataplane/API.md`.
//!
//! Every struct refuses unknown fields, so a misspelt field is an error that
//! names it rather than a silently ignored setting. Pure: serde types and the
//! conversions between them and the tables' own types.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::report::{
    ActionStats, ConntrackStats, DumpReply, FlowInfo, NodeInfo, PortStats, StatsReply, WorkerStats,
};
pub use super::values::{Backend, Mac, PeerId, PortId, PortRange, RouteTarget, VerdictSpec};
pub use crate::envelope::Speaker;
pub use crate::error::{ApiError, ErrorKind, error_chain};

/// The protocol version this build speaks; a request with another is refused.
pub const VERSION: u32 = 1;

/// The dataplane's socket, as the envelope names it in its answers.
pub const SPEAKER: Speaker = Speaker {
    name: "dataplane",
    version: VERSION,
};

/// A MAC address, written `02:00:00:00:00:01` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub Mac);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a MAC address like 02:00:00:00:00:01");
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut mac {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(mac))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The request envelope: `{"version":1,"request":{"<op>":{...}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Must be [`VERSION`].
    pub version: u32,
    /// The operation and its arguments.
    pub request: Request,
}

/// One operation with its arguments; on the wire `{"<op_name>":{...args...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Create a pod port (a tap in the pod's netns).
    PortAdd(PortAdd),
    /// Delete a pod port.
    PortRemove(NameArgs),
    /// List the pod ports.
    PortList(Empty),
    /// Add or replace a peer node.
    PeerSet(PeerSpec),
    /// Remove a peer node.
    PeerRemove(NameArgs),
    /// List the peer nodes.
    PeerList(Empty),
    /// Add or replace a static route (to the host or a blackhole).
    RouteSet(RouteSpec),
    /// Remove a static route.
    RouteRemove(PrefixArgs),
    /// List every route, pod and peer routes included.
    RouteList(Empty),
    /// Replace a pod's ingress and egress policy.
    PolicySet(PolicySet),
    /// Replace the policy of several pods at once (one publish, one save).
    PolicySetMany(PolicySetMany),
    /// Add, replace or remove native Services (one publish).
    ServiceSet(ServiceSet),
    /// Counters.
    Stats(Empty),
    /// Everything the dataplane holds, for debugging.
    Dump(Empty),
    /// Run a synthetic packet through the pipeline as a dry run.
    Trace(TraceRequest),
}

/// The operations, without their arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `port_add`.
    PortAdd,
    /// `port_remove`.
    PortRemove,
    /// `port_list`.
    PortList,
    /// `peer_set`.
    PeerSet,
    /// `peer_remove`.
    PeerRemove,
    /// `peer_list`.
    PeerList,
    /// `route_set`.
    RouteSet,
    /// `route_remove`.
    RouteRemove,
    /// `route_list`.
    RouteList,
    /// `policy_set`.
    PolicySet,
    /// `policy_set_many`.
    PolicySetMany,
    /// `service_set`.
    ServiceSet,
    /// `stats`.
    Stats,
    /// `dump`.
    Dump,
    /// `trace`.
    Trace,
}

impl Op {
    /// The op's wire name.
    pub fn name(self) -> &'static str {
        match self {
            Op::PortAdd => "port_add",
            Op::PortRemove => "port_remove",
            Op::PortList => "port_list",
            Op::PeerSet => "peer_set",
            Op::PeerRemove => "peer_remove",
            Op::PeerList => "peer_list",
            Op::RouteSet => "route_set",
            Op::RouteRemove => "route_remove",
            Op::RouteList => "route_list",
            Op::PolicySet => "policy_set",
            Op::PolicySetMany => "policy_set_many",
            Op::ServiceSet => "service_set",
            Op::Stats => "stats",
            Op::Dump => "dump",
            Op::Trace => "trace",
        }
    }
}

impl Request {
    /// Which operation this is.
    pub fn op(&self) -> Op {
        match self {
            Request::PortAdd(_) => Op::PortAdd,
            Request::PortRemove(_) => Op::PortRemove,
            Request::PortList(_) => Op::PortList,
            Request::PeerSet(_) => Op::PeerSet,
            Request::PeerRemove(_) => Op::PeerRemove,
            Request::PeerList(_) => Op::PeerList,
            Request::RouteSet(_) => Op::RouteSet,
            Request::RouteRemove(_) => Op::RouteRemove,
            Request::RouteList(_) => Op::RouteList,
            Request::PolicySet(_) => Op::PolicySet,
            Request::PolicySetMany(_) => Op::PolicySetMany,
            Request::ServiceSet(_) => Op::ServiceSet,
            Request::Stats(_) => Op::Stats,
            Request::Dump(_) => Op::Dump,
            Request::Trace(_) => Op::Trace,
        }
    }
}

/// No arguments: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Arguments naming a port (`NS/POD`) or peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    /// The port's or peer's name.
    pub name: String,
}

/// Arguments naming a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixArgs {
    /// The route's prefix.
    pub prefix: IpNet,
}

/// `port_add` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortAdd {
    /// `NAMESPACE/POD`.
    pub name: String,
    /// The pod's network namespace: `/run/netns/NAME` or `/proc/PID/ns/net`.
    pub netns: String,
    /// The interface name inside the pod, e.g. `eth0`.
    pub ifname: String,
    /// The pod's IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Addr>,
    /// The pod's IPv6 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// The pod interface's MAC; chosen by the dataplane when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The pod interface's MTU; the node's overlay MTU when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A pod port as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortInfo {
    /// The port's index in the endpoint table.
    pub id: PortId,
    /// `NAMESPACE/POD`.
    pub name: String,
    /// The pod's network namespace.
    pub netns: String,
    /// The interface name inside the pod.
    pub ifname: String,
    /// The pod interface's MAC.
    pub mac: MacAddr,
    /// The pod's IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// The pod's IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// The pod interface's MTU.
    pub mtu: u32,
}

/// `peer_set` arguments and a peer as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    /// The peer's node name.
    pub name: String,
    /// The pod subnets behind it.
    pub subnets: Vec<IpNet>,
    /// Its address on the underlay.
    pub underlay_ip: IpAddr,
    /// The MAC of its VTEP.
    pub vtep_mac: MacAddr,
    /// The encapsulation it speaks.
    pub backend: Backend,
    /// The UDP source ports it sends VXLAN from (a tweed node's
    /// `--vxlan-source-ports`); VXLAN from any other port is dropped. Absent:
    /// any source port (a kernel `vxlan` device's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ports: Option<PortRange>,
    /// It accepts VXLAN with inner checksums left partial (a tweed node
    /// that publishes it); absent: false, checksums are completed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial_checksums: bool,
}

/// Where a static route sends traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteVia {
    /// To the node itself (tweed0).
    Host,
    /// Dropped.
    Blackhole,
    /// The node's own address on the overlay (a single address on tweed0):
    /// to the node like `host`, and reachable from peers too.
    Node,
}

/// `route_set` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The destination prefix (no host bits).
    pub prefix: IpNet,
    /// Where it goes.
    pub via: RouteVia,
}

/// A route as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteInfo {
    /// The destination prefix.
    pub prefix: IpNet,
    /// Where it goes.
    pub next_hop: RouteTarget,
}

/// `policy_set` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    /// The pod's port name, `NAMESPACE/POD`.
    pub name: String,
    /// Policy for traffic arriving at the pod.
    pub ingress: RuleSetSpec,
    /// Policy for traffic leaving the pod.
    pub egress: RuleSetSpec,
}

/// `policy_set_many` arguments: every set is checked, and every port must
/// exist, before any changes; then all change in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySetMany {
    /// One `policy_set` per port; a port at most once.
    pub sets: Vec<PolicySet>,
}

/// `service_set`: native Services by name, each replacing that Service's
/// ports; a Service with no ports is removed. With `replace`, every Service
/// not named is removed too (a full sync). All or nothing, one publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSet {
    /// Remove the Services not named here.
    #[serde(default)]
    pub replace: bool,
    /// The Services changed, each named at most once.
    pub services: Vec<ServiceSpec>,
}

/// One Service's ports, as this node balances them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// `NAMESPACE/NAME`.
    pub name: String,
    /// Its ports with their frontends and endpoints; empty removes it.
    pub ports: Vec<super::service::ServicePort>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleActionSpec {
    /// Decide allow.
    Allow,
    /// Decide deny.
    Deny,
    /// Record and keep evaluating.
    Log,
    /// Skip the rest of the tier.
    Pass,
}

/// An inclusive destination port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRangeSpec {
    /// The first port.
    pub first: u16,
    /// The last port (inclusive).
    pub last: u16,
}

/// One policy rule (the dataplane's classifier gives it its meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique within the rule set; reported by trace and flow logs.
    pub id: u32,
    /// Evaluation tier, ascending.
    #[serde(default)]
    pub tier: u8,
    /// What the rule does.
    pub action: RuleActionSpec,
    /// Empty = any remote address.
    #[serde(default)]
    pub remote: Vec<IpNet>,
    /// Remote addresses excluded.
    #[serde(default)]
    pub remote_except: Vec<IpNet>,
    /// IP protocol number; absent or null = any.
    #[serde(default)]
    pub protocol: Option<u8>,
    /// Destination ports; only with TCP, UDP or SCTP.
    #[serde(default)]
    pub ports: Option<PortRangeSpec>,
    /// Where the rule comes from (e.g. `networkpolicy prod/web ingress[0]`),
    /// written in its flow-log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A rule set: rules in order and the verdict when none decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetSpec {
    /// The verdict when no rule decides.
    pub default: VerdictSpec,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl Default for RuleSetSpec {
    /// Allow everything: a pod without policy.
    fn default() -> Self {
        Self {
            default: VerdictSpec::Allow,
            rules: Vec::new(),
        }
    }
}

/// Where a traced packet enters the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TraceFrom {
    /// From a pod, by port name.
    Port(String),
    /// From the host port.
    Host(Empty),
    /// Encapsulated, from a peer, by name.
    Peer(String),
}

/// An IP protocol, by name (`tcp`, `udp`, `sctp`, `icmp`, `icmpv6`) or number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Protocol {
    /// A protocol number.
    Number(u8),
    /// A protocol name.
    Name(String),
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol name (tcp, udp, sctp, icmp, icmpv6) or number 0..=255")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Protocol, E> {
                u8::try_from(n)
                    .map(Protocol::Number)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(n), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Protocol, E> {
                u8::try_from(n)
                    .map(Protocol::Number)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Protocol, E> {
                Ok(Protocol::Name(s.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `trace` arguments: the synthetic packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// Where it enters.
    pub from: TraceFrom,
    /// Its source address.
    pub src: IpAddr,
    /// Its destination address.
    pub dst: IpAddr,
    /// Its protocol.
    pub protocol: Protocol,
    /// Source port (TCP/UDP/SCTP) or echo identifier (ICMP); 0 when absent.
    #[serde(default)]
    pub src_port: u16,
    /// Destination port; 0 when absent.
    #[serde(default)]
    pub dst_port: u16,
}

/// A successful answer, the `ok` field of a reply. Which variant an op
/// answers with is fixed (see [`ResponseBody::decode`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResponseBody {
    /// `{}`: the op changed what it was asked to.
    Empty(Empty),
    /// `port_add`.
    Port(PortReply),
    /// `port_list`.
    Ports(PortsReply),
    /// `peer_list`.
    Peers(PeersReply),
    /// `route_list`.
    Routes(RoutesReply),
    /// `stats`.
    Stats(StatsReply),
    /// `dump`.
    Dump(DumpReply),
    /// `trace`.
    Trace(super::trace::TraceReply),
}

impl ResponseBody {
    /// The empty answer.
    pub fn empty() -> Self {
        ResponseBody::Empty(Empty {})
    }

    /// Decodes the `ok` payload of a reply to `op`.
    pub fn decode(op: Op, value: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match op {
            Op::PortAdd => ResponseBody::Port(from_value(value)?),
            Op::PortList => ResponseBody::Ports(from_value(value)?),
            Op::PeerList => ResponseBody::Peers(from_value(value)?),
            Op::RouteList => ResponseBody::Routes(from_value(value)?),
            Op::Stats => ResponseBody::Stats(from_value(value)?),
            Op::Dump => ResponseBody::Dump(from_value(value)?),
            Op::Trace => ResponseBody::Trace(from_value(value)?),
            Op::PortRemove
            | Op::PeerSet
            | Op::PeerRemove
            | Op::RouteSet
            | Op::RouteRemove
            | Op::PolicySet
            | Op::PolicySetMany
            | Op::ServiceSet => ResponseBody::Empty(from_value(value)?),
        })
    }
}

/// `port_add` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortReply {
    /// The port created.
    pub port: PortInfo,
}

/// `port_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortsReply {
    /// Every port, by id.
    pub ports: Vec<PortInfo>,
}

/// `peer_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersReply {
    /// Every peer.
    pub peers: Vec<PeerSpec>,
}

/// `route_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesReply {
    /// Every route.
    pub routes: Vec<RouteInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_and_refuses_malformed_strings() {
        let mac: MacAddr = "02:00:0a:FF:00:01".parse().expect("valid");
        assert_eq!(mac.0, [2, 0, 0x0a, 0xff, 0, 1]);
        assert_eq!(mac.to_string(), "02:00:0a:ff:00:01");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02-00-00-00-00-01",
            "2:00:00:00:00:01",
            "0g:00:00:00:00:01",
            "+2:00:00:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&mac).expect("serialize");
        assert_eq!(json, "\"02:00:0a:ff:00:01\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).expect("parse"), mac);
    }

    #[test]
    fn route_target_round_trips() {
        for target in [
            RouteTarget::Port("default/web".into()),
            RouteTarget::Peer("node2".into()),
            RouteTarget::Host,
            RouteTarget::Node,
            RouteTarget::Blackhole,
        ] {
            let json = serde_json::to_string(&target).expect("serialize");
            assert_eq!(
                serde_json::from_str::<RouteTarget>(&json).expect("parse"),
                target
            );
        }
        assert!("nowhere".parse::<RouteTarget>().is_err());
        assert_eq!(
            serde_json::to_string(&RouteTarget::Node).expect("serialize"),
            r#""node""#
        );
    }

    #[test]
    fn a_node_route_has_its_wire_form() {
        let spec: RouteSpec =
            serde_json::from_str(r#"{"prefix":"10.244.1.1/32","via":"node"}"#).expect("parse");
        assert_eq!(spec.via, RouteVia::Node);
        assert_eq!(
            serde_json::to_string(&spec).expect("serialize"),
            r#"{"prefix":"10.244.1.1/32","via":"node"}"#
        );
    }

    #[test]
    fn request_wire_form_is_externally_tagged_snake_case() {
        let request = Request::PortRemove(NameArgs {
            name: "ns/pod".into(),
        });
        let json = serde_json::to_string(&request).expect("serialize");
        assert_eq!(json, r#"{"port_remove":{"name":"ns/pod"}}"#);
        let list = serde_json::to_string(&Request::PortList(Empty {})).expect("serialize");
        assert_eq!(list, r#"{"port_list":{}}"#);
    }

    #[test]
    fn every_response_body_decodes_back_by_op() {
        let port = PortInfo {
            id: PortId(0),
            name: "ns/pod".into(),
            netns: "/run/netns/x".into(),
            ifname: "eth0".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ipv4: Some(Ipv4Addr::new(10, 244, 1, 2)),
            ipv6: None,
            mtu: 1450,
        };
        let cases = [
            (
                Op::PortAdd,
                ResponseBody::Port(PortReply { port: port.clone() }),
            ),
            (
                Op::PortList,
                ResponseBody::Ports(PortsReply { ports: vec![port] }),
            ),
            (Op::PeerSet, ResponseBody::empty()),
            (
                Op::RouteList,
                ResponseBody::Routes(RoutesReply {
                    routes: vec![RouteInfo {
                        prefix: "0.0.0.0/0".parse().expect("cidr"),
                        next_hop: RouteTarget::Host,
                    }],
                }),
            ),
            (
                Op::Stats,
                ResponseBody::Stats(StatsReply {
                    workers: vec![WorkerStats {
                        id: 0,
                        rx: 1,
                        tx: 2,
                        underlay_rx: 0,
                        underlay_tx: 1,
                        io_errors: 0,
                    }],
                    ports: vec![],
                    drops: [("no_route".to_owned(), 0)].into_iter().collect(),
                    actions: ActionStats::default(),
                    conntrack: ConntrackStats::default(),
                    policy_drops: vec![],
                    io: None,
                }),
            ),
        ];
        for (op, body) in cases {
            let value = serde_json::to_value(&body).expect("serialize");
            assert_eq!(ResponseBody::decode(op, value).expect("decode"), body);
        }
    }
}
