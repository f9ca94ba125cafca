//! Bytes on `control.sock`, as the CNI plugin or the CLI sends them: split
//! into lines as the daemon's server does, each line decoded (the shared
//! strict envelope and the control API's request types), checked as the
//! server checks before its handler, and answered.
//!
//! Beyond "nothing panics":
//! - a request that decodes encodes to a line that decodes to the same
//!   request; an error reply is one line a client decodes to the same error;
//! - a `pod_add` the daemon accepts is not refused by the dataplane for a
//!   stateless reason (the promise of `control/src/api/validate.rs`): the
//!   `port_add` the daemon would send for it, on a dual-stack node, passes
//!   the dataplane's checks;
//! - `policy_apply` text goes on to the policy parser, as the handler does;
//! - the same line read as a reply by a client does not panic either.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tweed_control::api::pod::PodAdd;
use tweed_control::api::proto::SPEAKER;
use tweed_control::api::{ApiError, MAX_LINE, Op, Request, codec, validate};
use tweed_control::ipam::lease::Allocation;
use tweed_control::pods::record::{self, pod_mac};
use tweed_api::envelope;
use tweed_api::dataplane::proto::PortAdd;
use tweed_dataplane::api::validate as dp;

const OPS: [Op; 19] = [
    Op::Status,
    Op::PodAdd,
    Op::PodDel,
    Op::PodGet,
    Op::PodList,
    Op::Gc,
    Op::NodeList,
    Op::RouteList,
    Op::PeerAdd,
    Op::PeerRemove,
    Op::PeerList,
    Op::Stats,
    Op::Trace,
    Op::PolicyApply,
    Op::PolicyDelete,
    Op::PolicyList,
    Op::PolicyExplain,
    Op::LabelPod,
    Op::LabelNamespace,
];

/// The overlay MTU of the node the daemon runs on.
const NODE_MTU: u16 = 1450;

/// The dataplane request `Pods::add` makes for `add`, with a dual-stack
/// allocation and the longest port name it can pick (the name taken), or
/// `None` where `Pods::add` refuses the pod before that.
fn port_add_for(add: &PodAdd) -> Option<PortAdd> {
    let allocation = Allocation {
        ipv4: Some(Ipv4Addr::new(10, 244, 1, 2)),
        ipv6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
    };
    let mtu = add.mtu.unwrap_or(NODE_MTU);
    record::check_mtu(mtu, &allocation).ok()?;
    let namespace = add.namespace.clone().unwrap_or_else(|| "default".into());
    let name = add
        .name
        .clone()
        .unwrap_or_else(|| add.container_id.chars().take(12).collect());
    Some(PortAdd {
        name: record::port_name(&namespace, &name, &add.ifname, &add.container_id, |_| true),
        netns: add.netns.clone(),
        ifname: add.ifname.clone(),
        ipv4: allocation.ipv4,
        ipv6: allocation.ipv6,
        mac: Some(pod_mac(&allocation)),
        mtu: Some(u32::from(mtu)),
    })
}

fn answer(line: &[u8]) {
    let op = OPS[line.len() % OPS.len()];
    if let Ok(text) = std::str::from_utf8(line) {
        let _ = codec::decode_response(op, text);
    }
    let decoded: Result<Request, ApiError> = envelope::decode_request_bytes(line, SPEAKER);
    let checked = decoded.and_then(|request| {
        validate::request(&request)?;
        Ok(request)
    });
    let request = match checked {
        Ok(request) => request,
        Err(error) => {
            let reply = codec::encode_response(&Err(error.clone()));
            assert!(!reply.contains('\n'), "a reply is one line: {reply}");
            let back = codec::decode_response(Op::Status, &reply).expect("our reply decodes");
            assert_eq!(back, Err(error));
            return;
        }
    };
    let again = codec::encode_request(&request);
    assert!(!again.contains('\n'));
    let back = codec::decode_request(&again).expect("an encoded request decodes");
    assert_eq!(back, request, "round trip through {again}");
    match &request {
        Request::PodAdd(add) => {
            if let Some(port_add) = port_add_for(add)
                && let Err(e) = dp::port_add(&port_add)
            {
                panic!("the daemon accepts {add:?} but the dataplane refuses its port: {e}");
            }
        }
        Request::PolicyApply(args) => {
            let _ = tweed_control::policy::parse_documents(&args.text);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    tweed_fuzz::lines(data, MAX_LINE, answer);
});
