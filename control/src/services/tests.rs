use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tweed_dataplane::table::service::{
    Affinity, FrontendKind, ServiceEndpoint, ServicePort, ServiceTable, TrafficPolicy,
};

use super::*;

pub(super) fn here() -> Here {
    Here {
        node: "node-a".into(),
        addresses: vec!["192.168.50.1".parse().unwrap(), "fd50::1".parse().unwrap()],
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A dual-stack NodePort Service as `kubectl get -o yaml` prints it.
const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {namespace: shop, name: web, uid: u1, resourceVersion: "12"}
spec:
  type: NodePort
  clusterIP: 10.96.0.11
  clusterIPs: [10.96.0.11, "fd96::11"]
  ipFamilies: [IPv4, IPv6]
  externalIPs: [203.0.113.9]
  internalTrafficPolicy: Local
  externalTrafficPolicy: Cluster
  sessionAffinity: ClientIP
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30080}
  - {name: dns, protocol: UDP, port: 53, targetPort: 5353}
"#;

/// Its IPv4 slice: one ready local endpoint, one terminating serving remote
/// one, one with no conditions (ready) and two addresses.
const WEB_V4: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: shop
  name: web-abc12
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, protocol: TCP, port: 8080}
- {name: dns, protocol: UDP, port: 5353}
endpoints:
- addresses: [10.244.0.5]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-a
- addresses: [10.244.1.6]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-b
- addresses: [10.244.1.7, 10.244.1.70]
  nodeName: node-b
"#;

const WEB_V6: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: shop
  name: web-v6
  labels: {kubernetes.io/service-name: web}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ["fd44::5"], nodeName: node-a}]
"#;

/// A slice of another Service, and one of a same-named Service elsewhere.
const OTHERS: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: shop, name: api-1, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.9.9]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: other, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.9.8]}]
"#;

fn service(yaml: &str) -> Service {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn slices(yamls: &[&str]) -> Vec<EndpointSlice> {
    yamls
        .iter()
        .flat_map(|y| y.split("\n---\n"))
        .map(|doc| serde_yaml_ng::from_str(doc).unwrap())
        .collect()
}

fn by_name<'a>(ports: &'a [ServicePort], name: &str) -> &'a ServicePort {
    ports
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name} in {ports:?}"))
}

#[test]
fn a_dual_stack_node_port_service_gives_a_port_per_family_with_all_its_frontends() {
    let ports = service_ports(&service(WEB), &slices(&[WEB_V4, WEB_V6, OTHERS]), &here()).unwrap();
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "shop/web:http",
            "shop/web:http/v6",
            "shop/web:dns",
            "shop/web:dns/v6"
        ]
    );

    let http = by_name(&ports, "shop/web:http");
    let frontends: Vec<(String, FrontendKind)> = http
        .frontends
        .iter()
        .map(|f| {
            (
                format!("{}:{}/{}", f.key.ip, f.key.port, f.key.protocol),
                f.kind,
            )
        })
        .collect();
    assert_eq!(
        frontends,
        [
            ("10.96.0.11:80/6".to_owned(), FrontendKind::ClusterIp),
            ("203.0.113.9:80/6".to_owned(), FrontendKind::External),
            ("192.168.50.1:30080/6".to_owned(), FrontendKind::External),
        ]
    );
    assert_eq!(http.internal, TrafficPolicy::Local);
    assert_eq!(http.external, TrafficPolicy::Cluster);
    assert_eq!(http.affinity, Affinity::ClientIp);
    let endpoint = |ip_text: &str, local, ready, serving, terminating| ServiceEndpoint {
        ip: ip(ip_text),
        port: 8080,
        local,
        ready,
        serving,
        terminating,
    };
    assert_eq!(
        http.endpoints,
        [
            endpoint("10.244.0.5", true, true, true, false),
            endpoint("10.244.1.6", false, false, true, true),
            endpoint("10.244.1.7", false, true, true, false),
        ],
        "the first address of each, no other Service's or namespace's"
    );

    let dns = by_name(&ports, "shop/web:dns");
    assert!(
        dns.frontends
            .iter()
            .all(|f| f.key.protocol == 17 && f.key.port == 53)
    );
    assert!(dns.endpoints.iter().all(|e| e.port == 5353));
    assert_eq!(
        by_name(&ports, "shop/web:http/v6").endpoints[0].ip,
        ip("fd44::5")
    );
    assert!(
        by_name(&ports, "shop/web:dns/v6").endpoints.is_empty(),
        "the v6 slice has no dns port"
    );

    ServiceTable::build(&ports).expect("the table takes what the translation gives");
}

#[test]
fn cluster_ip_headless_and_external_name_services() {
    let plain = service(
        "metadata: {namespace: kube-system, name: kube-dns}\n\
         spec: {clusterIP: 10.96.0.10, ports: [{name: dns, protocol: UDP, port: 53, nodePort: 31000}]}",
    );
    let ports = service_ports(&plain, &[], &here()).unwrap();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(
        ports[0].frontends.len(),
        1,
        "a ClusterIP Service opens no node port"
    );
    assert!(ports[0].endpoints.is_empty());

    for yaml in [
        "metadata: {name: h}\nspec: {clusterIP: None, ports: [{port: 80}]}",
        "metadata: {name: x}\nspec: {type: ExternalName, externalName: example.com}",
        "metadata: {name: empty}",
    ] {
        assert_eq!(
            service_ports(&service(yaml), &[], &here()).unwrap(),
            [],
            "{yaml}"
        );
    }
}

#[test]
fn bad_fields_are_named() {
    let cases = [
        (
            "spec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}",
            "clusterIPs \"10.96.0.300\" is not an IP address",
        ),
        (
            "spec: {clusterIP: 10.96.0.3, ports: [{port: 70000}]}",
            "port 70000 is not a port",
        ),
        (
            "spec: {clusterIP: 10.96.0.3, ports: [{port: 80, protocol: ICMP}]}",
            "protocol \"ICMP\"",
        ),
        (
            "spec: {clusterIP: 10.96.0.3, internalTrafficPolicy: Nearby, ports: [{port: 80}]}",
            "internalTrafficPolicy \"Nearby\"",
        ),
        (
            "spec: {clusterIP: 10.96.0.3, sessionAffinity: Cookie, ports: [{port: 80}]}",
            "sessionAffinity \"Cookie\"",
        ),
    ];
    for (spec, want) in cases {
        let svc = service(&format!("metadata: {{namespace: ns, name: s}}\n{spec}"));
        let err = service_ports(&svc, &[], &here()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("service ns/s: ") && text.contains(want),
            "{text}"
        );
    }
    let err = service_ports(
        &service("metadata: {name: s}\nspec: {clusterIP: x, ports: [{port: 1}]}"),
        &[],
        &here(),
    )
    .unwrap_err();
    assert!(
        std::error::Error::source(&err).is_some(),
        "the parse error is chained"
    );
}
