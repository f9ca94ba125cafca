//! Why a frame was dropped. Every drop has a reason and every reason is counted.

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// Why the pipeline dropped a frame.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// The reason's stable snake_case name, as shown in stats and metrics.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// A one-line explanation for humans.
            pub fn describe(self) -> &'static str {
                match self { $(DropReason::$variant => $doc,)* }
            }
        }
    };
}

drop_reasons! {
    Truncated => "truncated": "the frame ends before its headers do",
    BadVnetHeader => "bad_vnet_header": "the virtio-net header is inconsistent with the frame",
    UnknownEthertype => "unknown_ethertype": "neither ARP, IPv4 nor IPv6",
    MalformedArp => "malformed_arp": "an ARP packet that is not Ethernet/IPv4 or is cut short",
    ArpIgnored => "arp_ignored": "an ARP packet that needs no answer (a reply, an announcement, a probe for the sender itself)",
    MalformedIp => "malformed_ip": "an IP header with a bad version, header length or a length field that lies",
    MalformedL4 => "malformed_l4": "a TCP, UDP or ICMP header that is cut short or whose lengths lie",
    Fragment => "fragment": "a later fragment whose datagram's first fragment did not come within 2 s (or more were waiting than a worker holds)",
    SpoofedMac => "spoofed_mac": "a pod sent from a MAC that is not its own",
    SpoofedIp => "spoofed_ip": "a pod sent from an IP address that is not its own",
    UnknownPort => "unknown_port": "the frame came from a port with no endpoint",
    Broadcast => "broadcast": "a broadcast or multicast frame that tweed does not forward",
    NdIgnored => "nd_ignored": "an IPv6 neighbour-discovery or MLD message that needs no answer",
    ToGateway => "to_gateway": "a packet to the gateway address other than ping, or to the hairpin address outside a hairpin flow",
    TtlExceeded => "ttl_exceeded": "TTL or hop limit ran out (answered with ICMP time exceeded)",
    NoRoute => "no_route": "no route to the destination (answered with ICMP unreachable)",
    TooBig => "too_big": "larger than the path MTU with fragmentation forbidden (answered with ICMP)",
    Blackhole => "blackhole": "routed to a blackhole",
    HostLoop => "host_loop": "a packet from the host routed back to the host",
    PolicyEgress => "policy_egress": "denied by the sending pod's egress policy",
    PolicyIngress => "policy_ingress": "denied by the receiving pod's ingress policy",
    UnknownPeer => "unknown_peer": "an encapsulated packet from an address that is no known peer",
    BadVxlan => "bad_vxlan": "a VXLAN header without the valid-VNI flag",
    WrongVni => "wrong_vni": "a VXLAN packet for another VNI",
    WrongInnerMac => "wrong_inner_mac": "a VXLAN frame whose inner destination MAC is not this node's VTEP",
    DecapSpoofed => "decap_spoofed": "an encapsulated packet whose inner source is not in the sending peer's subnets",
    DecapNotLocal => "decap_not_local": "an encapsulated packet for a destination that is not a pod on this node",
    WrongBackend => "wrong_backend": "an encapsulated packet in a format the sending peer does not use",
    GsoTooSmall => "gso_too_small": "a GSO super-frame whose segment size is below 88 bytes (Linux's smallest TCP MSS), which would split into thousands of packets",
    TunnelPort => "tunnel_port": "UDP from a pod to a node's tunnel port (VXLAN or UDP encapsulation), which would inject overlay packets",
    WrongSourcePort => "wrong_source_port": "an encapsulated packet from a source port the sending peer does not send from",
    ServiceNoEndpoint => "service_no_endpoint": "to a native Service without a usable endpoint (answered with ICMP port unreachable, as kube-proxy rejects)",
    ServiceNoLocalEndpoint => "service_no_local_endpoint": "to a native Service whose Local traffic policy leaves no endpoint on this node",
    ServiceNoSource => "service_no_source": "from outside the cluster to a native Service under the Cluster traffic policy, with no source to masquerade to (no overlay address of the client's family on this node, or every port tried taken)",
    ServiceTableFull => "service_table_full": "a new connection to a native Service while the translation table was full",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_dense() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
        }
    }
}
