//! The first step of `port_add`, decided without I/O: is the new port's name,
//! each of its addresses and its interface free, given the attached ports and
//! the adds in progress? Answers the [`Reservation`] to hold or the conflict.
//! (The start of a sans-IO planner for the control side: the caller holds the
//! lock, gathers the view and records the answer.)

use std::net::IpAddr;

use tweed_api::dataplane::proto::{ApiError, PortAdd};

/// What a `port_add` in progress has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reservation {
    pub(super) name: String,
    pub(super) ips: Vec<IpAddr>,
    pub(super) netns: String,
    pub(super) ifname: String,
}

/// What is taken: the attached ports' names, who owns an address, and the
/// adds in progress.
pub(super) struct Taken<'a, N, O> {
    /// Names of the attached ports.
    pub(super) port_names: N,
    /// The attached port that owns an address, if any.
    pub(super) owner_of: O,
    /// Reservations of the adds in progress.
    pub(super) reserved: &'a [&'a Reservation],
}

/// Checks `args` against `taken`; the reservation it would hold, or the
/// first conflict (a [`tweed_api::dataplane::proto::ErrorKind::Conflict`] naming the
/// holder).
pub(super) fn reservation<'a, N, O>(
    args: &PortAdd,
    taken: Taken<'_, N, O>,
) -> Result<Reservation, ApiError>
where
    N: IntoIterator<Item = &'a str>,
    O: Fn(IpAddr) -> Option<String>,
{
    let ips: Vec<IpAddr> = args
        .ipv4
        .map(IpAddr::V4)
        .into_iter()
        .chain(args.ipv6.map(IpAddr::V6))
        .collect();
    let taken_by_add = taken.reserved.iter().any(|r| r.name == args.name);
    if taken_by_add || taken.port_names.into_iter().any(|name| name == args.name) {
        return Err(ApiError::conflict(format!(
            "a port named {:?} already exists",
            args.name
        )));
    }
    for ip in &ips {
        if let Some(owner) = (taken.owner_of)(*ip) {
            return Err(ApiError::conflict(format!(
                "address {ip} already belongs to port {owner:?}"
            )));
        }
        if let Some(other) = taken.reserved.iter().find(|r| r.ips.contains(ip)) {
            return Err(ApiError::conflict(format!(
                "address {ip} is being given to port {:?}",
                other.name
            )));
        }
    }
    if let Some(other) = taken
        .reserved
        .iter()
        .find(|r| r.ifname == args.ifname && r.netns == args.netns)
    {
        return Err(ApiError::conflict(format!(
            "interface {:?} in netns {} is being created for port {:?}",
            args.ifname, args.netns, other.name
        )));
    }
    Ok(Reservation {
        name: args.name.clone(),
        ips,
        netns: args.netns.clone(),
        ifname: args.ifname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use tweed_api::dataplane::proto::ErrorKind;

    fn add(name: &str, ipv4: [u8; 4], ifname: &str) -> PortAdd {
        PortAdd {
            name: name.into(),
            netns: "/run/netns/pod".into(),
            ifname: ifname.into(),
            ipv4: Some(Ipv4Addr::from(ipv4)),
            ipv6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(ipv4[3]))),
            mac: None,
            mtu: None,
        }
    }

    /// Nothing attached, nothing in progress.
    type Nothing = Taken<'static, [&'static str; 0], fn(IpAddr) -> Option<String>>;

    /// One attached port `ns/a` at 10.0.0.1 and one add in progress, `ns/b`.
    fn check(args: &PortAdd) -> Result<Reservation, ApiError> {
        let in_progress = reservation(&add("ns/b", [10, 0, 0, 2], "eth0"), nothing()).unwrap();
        let owner_of = |ip: IpAddr| (ip == IpAddr::from([10, 0, 0, 1])).then(|| "ns/a".to_owned());
        reservation(
            args,
            Taken {
                port_names: ["ns/a"],
                owner_of,
                reserved: &[&in_progress],
            },
        )
    }

    fn nothing() -> Nothing {
        Taken {
            port_names: [],
            owner_of: |_| None,
            reserved: &[],
        }
    }

    fn conflict(result: Result<Reservation, ApiError>) -> String {
        let e = result.expect_err("a conflict");
        assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
        e.message
    }

    #[test]
    fn a_free_port_reserves_its_name_addresses_and_interface() {
        let args = add("ns/c", [10, 0, 0, 3], "eth1");
        let held = check(&args).unwrap();
        assert_eq!(held.name, "ns/c");
        assert_eq!(
            held.ips,
            [
                IpAddr::from([10, 0, 0, 3]),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3))
            ]
        );
        assert_eq!(
            (held.netns.as_str(), held.ifname.as_str()),
            ("/run/netns/pod", "eth1")
        );
    }

    #[test]
    fn each_kind_of_conflict_names_its_holder() {
        let cases = [
            (
                add("ns/a", [10, 0, 0, 3], "eth1"),
                "a port named \"ns/a\" already exists",
            ),
            (
                add("ns/b", [10, 0, 0, 3], "eth1"),
                "a port named \"ns/b\" already exists",
            ),
            (
                add("ns/c", [10, 0, 0, 1], "eth1"),
                "address 10.0.0.1 already belongs to port \"ns/a\"",
            ),
            (
                add("ns/c", [10, 0, 0, 2], "eth1"),
                "address 10.0.0.2 is being given to port \"ns/b\"",
            ),
            (
                add("ns/c", [10, 0, 0, 3], "eth0"),
                "interface \"eth0\" in netns /run/netns/pod is being created for port \"ns/b\"",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(conflict(check(&args)), want);
        }
    }

    #[test]
    fn the_same_interface_name_in_another_netns_is_free() {
        let mut args = add("ns/c", [10, 0, 0, 3], "eth0");
        args.netns = "/run/netns/other".into();
        check(&args).unwrap();
    }
}
