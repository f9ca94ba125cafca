//! Ethernet II: the header length and the EtherTypes tweed looks at (the one
//! place they are defined; parse, GRO and GSO all read them from here).

/// Length of an Ethernet II header (two MACs and the EtherType).
pub const ETH_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
