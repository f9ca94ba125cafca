//! DNS for the Service tests: dnsmasq (Debian's) in a pod answering one name,
//! and a query for an A record over UDP, as a pod's resolver sends it.

use std::net::IpAddr;
use std::process::Child;
use std::time::Duration;

use crate::netns::Netns;
use crate::process::Bounded;

/// Asks ADDR:53 for NAME's A record over UDP (five tries) and prints the
/// address. Args: ADDR NAME.
const QUERY: &str = r#"
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack("!HHHHHH", 0x7477, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
q += struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(5):
    s.sendto(q, (server, 53))
    try:
        r, _ = s.recvfrom(4096)
        break
    except socket.timeout:
        continue
else:
    sys.exit("no answer from %s" % server)
if struct.unpack("!H", r[6:8])[0] == 0:
    sys.exit("no answer record")
print(socket.inet_ntoa(r[-4:]))
"#;

/// A dnsmasq listening on `listen`:53 in `netns` that answers `name` with
/// `answer`; killed on drop.
#[derive(Debug)]
pub struct Dnsmasq(Child);

impl Dnsmasq {
    /// Starts it (it binds before it answers; [`query`] retries meanwhile).
    pub fn start(netns: &Netns, listen: IpAddr, name: &str, answer: IpAddr) -> Self {
        let address = format!("--address=/{name}/{answer}");
        let listen = format!("--listen-address={listen}");
        Self(netns.spawn(
            "dnsmasq",
            &[
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--except-interface=lo",
                &listen,
                "--port=53",
                "--pid-file=",
                "--user=root",
                "--conf-file=/dev/null",
                &address,
            ],
        ))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks `server`:53, from `netns`, for `name`'s A record; its stdout is the
/// address on success.
pub fn query(netns: &Netns, server: IpAddr, name: &str) -> Bounded {
    netns.exec_bounded(
        "python3",
        &["-c", QUERY, &server.to_string(), name],
        Duration::from_secs(15),
    )
}
