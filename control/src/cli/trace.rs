//! `tweed trace`'s arguments: where the packet enters (`--from`) and, when
//! `--src` is not given, the source address looked up from the pod list.
//! Pure: the lookup is given the pods.

use std::net::IpAddr;

use crate::api::pod::PodInfo;
use crate::api::proto::{Empty, Protocol, TraceFrom};

/// Parses `--from`: `NAMESPACE/POD`, `host` or `peer:NAME`.
pub fn parse_from(value: &str) -> Result<TraceFrom, String> {
    if value == "host" {
        return Ok(TraceFrom::Host(Empty {}));
    }
    if let Some(peer) = value.strip_prefix("peer:") {
        if peer.is_empty() {
            return Err("peer:NAME needs a peer name".to_owned());
        }
        return Ok(TraceFrom::Peer(peer.to_owned()));
    }
    match value.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() => {
            Ok(TraceFrom::Port(value.to_owned()))
        }
        _ => Err(format!(
            "{value:?} is not NAMESPACE/POD, `host` or `peer:NAME`"
        )),
    }
}

/// Parses `--proto`: a protocol number or name (checked by the daemon).
pub fn parse_protocol(value: &str) -> Result<Protocol, String> {
    if value.is_empty() {
        return Err("give a protocol name (tcp, udp, sctp, icmp, icmpv6) or number".to_owned());
    }
    Ok(match value.parse::<u8>() {
        Ok(n) => Protocol::Number(n),
        Err(_) => Protocol::Name(value.to_owned()),
    })
}

/// The source of a trace without `--src`: the address of the pod it starts
/// from, of `to`'s IP version.
pub fn pod_source(from: &TraceFrom, to: IpAddr, pods: &[PodInfo]) -> Result<IpAddr, String> {
    let port = match from {
        TraceFrom::Port(port) => port,
        TraceFrom::Host(_) => return Err("a trace --from host needs --src".to_owned()),
        TraceFrom::Peer(peer) => {
            return Err(format!("a trace --from peer:{peer} needs --src"));
        }
    };
    let pod = pods
        .iter()
        .find(|pod| pod.port_name() == *port)
        .ok_or_else(|| format!("no pod {port} on this node; check `tweed pods` or give --src"))?;
    let source = match to {
        IpAddr::V4(_) => pod.ipv4.map(IpAddr::V4),
        IpAddr::V6(_) => pod.ipv6.map(IpAddr::V6),
    };
    source.ok_or_else(|| {
        let family = if to.is_ipv4() { "IPv4" } else { "IPv6" };
        format!("pod {port} has no {family} address to trace to {to} from; give --src")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures;

    #[test]
    fn from_accepts_pods_host_and_peers() {
        assert_eq!(parse_from("host"), Ok(TraceFrom::Host(Empty {})));
        assert_eq!(
            parse_from("peer:node2"),
            Ok(TraceFrom::Peer("node2".into()))
        );
        assert_eq!(
            parse_from("default/web"),
            Ok(TraceFrom::Port("default/web".into()))
        );
        for bad in ["web", "/web", "default/", "peer:", ""] {
            assert!(parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn protocols_are_numbers_or_names() {
        assert_eq!(parse_protocol("6"), Ok(Protocol::Number(6)));
        assert_eq!(parse_protocol("udp"), Ok(Protocol::Name("udp".into())));
        assert_eq!(parse_protocol("300"), Ok(Protocol::Name("300".into())));
        assert!(parse_protocol("").is_err());
    }

    #[test]
    fn the_source_is_the_pods_address_of_the_destinations_family() {
        let pods = [fixtures::pod()];
        let from = TraceFrom::Port("default/web".into());
        let v4: IpAddr = "10.244.2.3".parse().expect("ip");
        let v6: IpAddr = "fd00:2::3".parse().expect("ip");
        assert_eq!(
            pod_source(&from, v4, &pods),
            Ok("10.244.1.2".parse().expect("ip"))
        );
        assert_eq!(
            pod_source(&from, v6, &pods),
            Ok("fd00:1::2".parse().expect("ip"))
        );
        let mut v4_only = fixtures::pod();
        v4_only.ipv6 = None;
        let err = pod_source(&from, v6, &[v4_only]).expect_err("no v6");
        assert!(err.contains("no IPv6 address"), "{err}");
        let err = pod_source(&TraceFrom::Port("default/db".into()), v4, &pods).expect_err("absent");
        assert!(err.contains("no pod default/db"), "{err}");
        let err = pod_source(&TraceFrom::Host(Empty {}), v4, &pods).expect_err("host");
        assert!(err.contains("--src"), "{err}");
    }
}
