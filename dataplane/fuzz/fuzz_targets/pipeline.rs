//! Arbitrary bytes through the whole forwarding decision, as pod frames, host
//! frames and underlay packets (VXLAN and flannel UDP), then through the
//! splitting a worker does for oversized frames. Nothing may panic.
//!
//! The first input byte picks where the bytes come from; the rest is the frame.
//! The node is [`tweed_fuzz::world`].

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use tweed_dataplane::frame::Frame;
use tweed_dataplane::offload::{fragment, gso};
use tweed_dataplane::pipeline::{Action, Counters, Ingress, Pipeline, Split};
use tweed_dataplane::table::nexthop::PortId;
use tweed_dataplane::table::peers::Backend;
use tweed_fuzz::{VX_SOURCE_PORTS, world};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let world = world();
    let ingress = match selector % 5 {
        0 => Ingress::Port(PortId(0)),
        1 => Ingress::Host,
        2 => Ingress::Underlay {
            backend: Backend::Vxlan,
            src: SocketAddr::from(([192, 168, 0, 2], VX_SOURCE_PORTS.first)),
        },
        3 => Ingress::Underlay {
            backend: Backend::Udp,
            src: SocketAddr::from(([192, 168, 0, 3], 8285)),
        },
        _ => Ingress::Port(PortId(7)),
    };
    let mut frame = Frame::from_bytes(bytes);
    let mut counters = Counters::default();
    let now = u64::from(selector) * 1000;
    let action = Pipeline::new(&world.tables, &world.conntrack, now).process(
        ingress,
        &mut frame,
        &mut counters,
    );
    if let Action::EncapSplit(_, split) = action {
        let mut scratch = Vec::new();
        let eth = frame.data().get(10..).unwrap_or(&[]);
        match split {
            Split::Segment(hdr) => {
                let _ = gso::segment_each(eth, &hdr, &mut scratch, |segment| {
                    assert!(!segment.is_empty())
                });
            }
            Split::Fragment(mtu) => {
                let ip = eth.get(14..).unwrap_or(&[]);
                let _ = fragment::fragment_ipv4(ip, mtu, &mut scratch, |part| {
                    assert!(part.len() <= usize::from(mtu))
                });
            }
        }
    }
});
