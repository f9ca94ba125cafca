#!/usr/bin/env python3
"""Writes the decap_gro target's seeds: UDP_GRO reads of encapsulated TCP
segments and fragments, for the node of tweed_fuzz::world (see the target's
module doc for the input layout). Run from dataplane/fuzz."""

import struct

OUT = "seeds/decap_gro/"
VTEP_MAC = bytes([2, 0, 0, 0, 0, 1])


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src, dst, proto, payload, ident=1, df=True, frag_off=0, mf=False):
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | frag_off
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0,
                      bytes(src), bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ip6(src, dst, proto, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64, src, dst) + payload


def tcp(src_ip, dst_ip, sport, dport, seq, ack, payload, flags=0x10, v6=False):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 502, 0, 0)
    seg = hdr + payload
    if v6:
        pseudo = bytes(src_ip) + bytes(dst_ip) + struct.pack("!I3xB", len(seg), 6)
    else:
        pseudo = bytes(src_ip) + bytes(dst_ip) + struct.pack("!xBH", 6, len(seg))
    c = csum(pseudo + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def vxlan(inner_ip, v6=False, vni=1):
    eth = VTEP_MAC + bytes([2, 0, 0, 0, 2, 2]) + struct.pack("!H", 0x86DD if v6 else 0x0800)
    return struct.pack("!BxxxI", 0x08, vni << 8) + eth + inner_ip


def seed(name, selector, segment, port, datagrams):
    with open(OUT + name, "wb") as f:
        f.write(bytes([selector]) + struct.pack("<HH", segment, port) + b"".join(datagrams))


def tcp_train(src, dst, n, mss, last, v6=False, wrap=lambda p: p):
    out, seq = [], 1000
    for i in range(n):
        size = mss if i < n - 1 else last
        data = bytes((seq + j) & 0xFF for j in range(size))
        seg = tcp(src, dst, 40000, 8080, seq, 77, data, v6=v6)
        pkt = ip6(src, dst, 6, seg) if v6 else ip4(src, dst, 6, seg, ident=100 + i)
        out.append(wrap(pkt))
        seq += size
    return out


v4 = lambda *a: bytes(a)
v6 = lambda last, net: bytes([0xFD, 0, 0, net] + [0] * 11 + [last]) if net else bytes([0xFD] + [0] * 14 + [last])

# Peer vx (selector 0): VXLAN from a published source port, four segments, a short tail.
train = tcp_train(v4(10, 244, 2, 5), v4(10, 244, 1, 2), 4, 100, 40, wrap=vxlan)
seed("vx_tcp_train", 0, len(train[0]), 49152, train)
# Peer vx, IPv6 inside VXLAN.
train = tcp_train(v6(5, 2), v6(2, 0), 3, 120, 120, v6=True, wrap=lambda p: vxlan(p, v6=True))
seed("vx_tcp6_train", 0, len(train[0]), 49160, train)
# Peer udp (selector 1): flannel UDP, bare IPv4 packets from port 8285.
train = tcp_train(v4(10, 244, 3, 9), v4(10, 244, 1, 3), 3, 64, 64)
seed("udp_tcp_train", 1, len(train[0]), 8285, train)
# Peer udp: a later fragment before its first one, in one read.
body = tcp(v4(10, 244, 3, 9), v4(10, 244, 1, 2), 41000, 80, 5, 0, bytes(108), flags=0x18)
first = ip4(v4(10, 244, 3, 9), v4(10, 244, 1, 2), 6, body[:64], ident=7, df=False, mf=True)
later = ip4(v4(10, 244, 3, 9), v4(10, 244, 1, 2), 6, body[64:], ident=7, df=False, frag_off=8)
seed("udp_fragments", 1, len(later), 8285, [later, first])
# Peer kvx (selector 2): a kernel vxlan device, any source port, one datagram, no segment size.
one = vxlan(ip4(v4(10, 244, 4, 1), v4(10, 244, 1, 2), 6,
                tcp(v4(10, 244, 4, 1), v4(10, 244, 1, 2), 33000, 22, 1, 1, b"hi", flags=0x18)))
seed("kvx_single", 2, 0, 51234, [one])
# A spoofed inner source (not the peer's subnet) and an unknown sender (selector 3).
spoof = vxlan(ip4(v4(10, 244, 1, 3), v4(10, 244, 1, 2), 6,
                  tcp(v4(10, 244, 1, 3), v4(10, 244, 1, 2), 1, 2, 0, 0, b"x")))
seed("vx_spoofed", 0, 0, 49152, [spoof])
seed("unknown_sender", 3, 0, 4789, [one])
