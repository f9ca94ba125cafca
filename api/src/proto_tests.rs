use super::*;
use crate::fixtures;
use crate::node::NodeKind;

#[test]
fn request_wire_form_is_externally_tagged_snake_case() {
    let json = serde_json::to_string(&Request::PodList(Empty {})).expect("serialize");
    assert_eq!(json, r#"{"pod_list":{}}"#);
    let json = serde_json::to_string(&Request::PeerRemove(NameArgs {
        name: "edge".into(),
    }))
    .expect("serialize");
    assert_eq!(json, r#"{"peer_remove":{"name":"edge"}}"#);
}

#[test]
fn every_op_name_matches_its_wire_tag() {
    let requests = fixtures::requests();
    assert_eq!(requests.len(), 13, "one request per op");
    for request in requests {
        let value = serde_json::to_value(&request).expect("serialize");
        let tag = value
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .expect("tagged");
        assert_eq!(tag, request.op().name());
    }
}

#[test]
fn node_kind_and_backend_are_lowercase() {
    let node = fixtures::static_peer();
    let value = serde_json::to_value(&node).expect("serialize");
    assert_eq!(value["kind"], "static");
    assert_eq!(value["backend"], "udp");
    assert_eq!(NodeKind::This.name(), "this");
}

#[test]
fn every_response_body_decodes_back_by_op() {
    use crate::node::{NodesReply, PeersReply};
    use crate::pod::{PodsReply, ReleasedReply};
    let cases = [
        (Op::Status, ResponseBody::Status(fixtures::status())),
        (Op::PodAdd, ResponseBody::Pod(fixtures::pod())),
        (Op::PodGet, ResponseBody::Pod(fixtures::pod())),
        (
            Op::PodDel,
            ResponseBody::Released(ReleasedReply {
                released: vec![fixtures::pod()],
            }),
        ),
        (
            Op::Gc,
            ResponseBody::Released(ReleasedReply { released: vec![] }),
        ),
        (
            Op::PodList,
            ResponseBody::Pods(PodsReply {
                pods: vec![fixtures::pod()],
            }),
        ),
        (
            Op::NodeList,
            ResponseBody::Nodes(NodesReply {
                nodes: vec![fixtures::this_node(), fixtures::other_node()],
            }),
        ),
        (
            Op::RouteList,
            ResponseBody::Routes(RoutesReply {
                routes: fixtures::routes(),
            }),
        ),
        (
            Op::PeerList,
            ResponseBody::Peers(PeersReply {
                peers: vec![fixtures::static_peer()],
            }),
        ),
        (Op::Stats, ResponseBody::Stats(fixtures::stats())),
        (Op::Trace, ResponseBody::Trace(fixtures::trace())),
        (Op::PeerAdd, ResponseBody::empty()),
        (Op::PeerRemove, ResponseBody::empty()),
    ];
    for (op, body) in cases {
        let value = body.to_value();
        assert_eq!(
            ResponseBody::decode(op, value).expect("decode"),
            body,
            "{op:?}"
        );
    }
}

#[test]
fn a_body_of_the_wrong_op_does_not_decode() {
    let value = ResponseBody::Pod(fixtures::pod()).to_value();
    assert!(ResponseBody::decode(Op::Status, value.clone()).is_err());
    assert!(ResponseBody::decode(Op::PeerAdd, value).is_err());
}
