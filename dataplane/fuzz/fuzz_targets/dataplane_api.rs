//! Bytes on `dataplane.sock`, as a client sends them: split into lines as
//! the server does, each line decoded (the strict envelope and request
//! decoder: no JSON tree, repeated keys refused), checked as the server
//! checks before its handler, and answered.
//!
//! Beyond "nothing panics":
//! - a request that decodes encodes to a line that decodes to the same
//!   request;
//! - an error reply is one line that a client decodes to the same error;
//! - a policy that passes the checks compiles to a classifier that agrees
//!   with the reference walk (`classify_linear`) at probe packets;
//! - the same line read as a reply by a client (for the op named by its
//!   length) does not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tweed_api::dataplane::codec;
use tweed_api::dataplane::proto::{ApiError, Op, Request, SPEAKER};
use tweed_api::envelope;
use tweed_dataplane::api::{MAX_LINE, validate};

const OPS: [Op; 14] = [
    Op::PortAdd,
    Op::PortRemove,
    Op::PortList,
    Op::PeerSet,
    Op::PeerRemove,
    Op::PeerList,
    Op::RouteSet,
    Op::RouteRemove,
    Op::RouteList,
    Op::PolicySet,
    Op::PolicySetMany,
    Op::Stats,
    Op::Dump,
    Op::Trace,
];

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
            let back = codec::decode_response(Op::Stats, &reply).expect("our reply decodes");
            assert_eq!(back, Err(error));
            return;
        }
    };
    let again = codec::encode_request(&request);
    assert!(!again.contains('\n'));
    let back = codec::decode_request(&again).expect("an encoded request decodes");
    assert_eq!(back, request, "round trip through {again}");
    match &request {
        Request::PolicySet(args) => {
            let (ingress, egress) = validate::policy(args).expect("checked");
            let _ = tweed_fuzz::check_classifier(&ingress);
            let _ = tweed_fuzz::check_classifier(&egress);
        }
        Request::PolicySetMany(args) => {
            for set in args.sets.iter().take(4) {
                for spec in [&set.ingress, &set.egress] {
                    let rules = validate::rule_set("x", spec).expect("checked");
                    let _ = tweed_fuzz::check_classifier(&rules);
                }
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    tweed_fuzz::lines(data, MAX_LINE, answer);
});
