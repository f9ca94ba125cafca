//! The programs that run inside the namespaces: a probe server per served
//! address, a prober per source and round, and a held-open connection.
//!
//! All three are python3 programs (as in [`crate::traffic`]), so the kernel's
//! own sockets are both ends. They are started with `ip netns exec`, which
//! execs python3 itself, so the child's pid is the program's; every guard kills
//! and reaps its child on drop (a panicking test too), and the long-lived ones
//! also exit when their stdin (a pipe from this process) closes, so not even a
//! killed test leaves them behind for long.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::probe::Probe;
use super::table::Outcome;
use crate::netns::Netns;
use crate::process;
use crate::traffic::lines_of;

/// How long a server or connection may take to say it is up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a prober may overrun its own timeout before it is killed.
const PROBER_SLACK: Duration = Duration::from_secs(10);

/// Serves every probe on one address: TCP listeners that echo what they get,
/// UDP sockets that echo every datagram. Prints `ready` once all are bound;
/// exits when stdin closes. Args: ADDR PROBE... (`tcp/80`).
const SERVE: &str = r#"
import selectors, socket, sys
addr = sys.argv[1]
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
sel = selectors.DefaultSelector()
for probe in sys.argv[2:]:
    proto, port = probe.split("/")
    if proto == "tcp":
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, int(port)))
        s.listen(128)
        kind = "listen"
    else:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((addr, int(port)))
        kind = "udp"
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, kind)
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s, kind = key.fileobj, key.data
        if kind == "stdin":
            if not sys.stdin.readline():
                sys.exit(0)
            continue
        try:
            if kind == "listen":
                c, _ = s.accept()
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, "conn")
            elif kind == "udp":
                b, peer = s.recvfrom(65535)
                s.sendto(b, peer)
            else:
                b = s.recv(65536)
                if b:
                    s.send(b)
                else:
                    sel.unregister(s)
                    s.close()
        except BlockingIOError:
            pass
        except OSError:
            if kind == "conn":
                sel.unregister(s)
                s.close()
"#;

/// Sends every probe at once, each from its own source port, and prints
/// `INDEX OUTCOME` for each once it is decided or the timeout passed. TCP:
/// a non-blocking connect; UDP: a random token, sent again halfway through
/// the timeout, that must come back. Args: TIMEOUT_S (PROTO,ADDR,PORT,SPORT)...
const PROBE: &str = r#"
import errno, os, selectors, socket, sys, time
timeout = float(sys.argv[1])
jobs = [a.split(",") for a in sys.argv[2:]]
sel = selectors.DefaultSelector()
out, tokens = {}, {}
def failed(e):
    return "refused" if e == errno.ECONNREFUSED else "error:" + errno.errorcode.get(e, str(e))
for i, (proto, addr, port, sport) in enumerate(jobs):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setblocking(False)
    try:
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(sport)))
        if proto == "tcp":
            e = s.connect_ex((addr, int(port)))
            if e not in (0, errno.EINPROGRESS):
                raise OSError(e, os.strerror(e))
            sel.register(s, selectors.EVENT_WRITE, i)
        else:
            s.connect((addr, int(port)))
            tokens[i] = (s, os.urandom(16))
            s.send(tokens[i][1])
            sel.register(s, selectors.EVENT_READ, i)
    except OSError as e:
        out[i] = failed(e.errno)
        s.close()
start = time.monotonic()
resend, deadline = start + timeout / 2, start + timeout
while sel.get_map():
    now = time.monotonic()
    if now >= deadline:
        break
    if resend is not None and now >= resend:
        resend = None
        for i, (s, token) in tokens.items():
            if i not in out:
                try:
                    s.send(token)
                except OSError:
                    pass
    for key, _ in sel.select((deadline if resend is None else resend) - now):
        s, i = key.fileobj, key.data
        if jobs[i][0] == "tcp":
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            out[i] = "connected" if e == 0 else failed(e)
        else:
            try:
                if s.recv(65535) != tokens[i][1]:
                    continue
                out[i] = "echoed"
            except BlockingIOError:
                continue
            except OSError as e:
                out[i] = failed(e.errno)
        sel.unregister(s)
        s.close()
for i in range(len(jobs)):
    print(i, out.get(i, "timeout"))
"#;

/// Connects once and prints `connected`; then for each stdin line sends a
/// random token and prints `echoed` when it comes back within the timeout,
/// else `timeout`, `closed` or `error:EX`. Args: ADDR PORT TIMEOUT_S.
const HOLD: &str = r#"
import errno, os, socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    c = socket.create_connection((addr, port), timeout=timeout)
except OSError as e:
    sys.exit("connect: %s" % e)
print("connected", flush=True)
for line in sys.stdin:
    token, got = os.urandom(16), b""
    try:
        c.sendall(token)
        while len(got) < len(token):
            b = c.recv(len(token) - len(got))
            if not b:
                break
            got += b
        print("echoed" if got == token else "closed" if not got else "garbled", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    except OSError as e:
        print("error:" + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
"#;

/// A python3 program in a namespace with its stdin and stdout piped, killed
/// and reaped on drop.
#[derive(Debug)]
struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
}

impl Agent {
    /// Starts `python3 -c script args` in `ns` and waits for its first line
    /// to be `first`; panics with its stderr otherwise.
    fn start(ns: &Netns, script: &str, args: &[String], first: &str, what: String) -> Self {
        let mut agent = Self::spawn(ns, script, args, what);
        agent.wait_for(first);
        agent
    }

    /// Starts `python3 -c script args` in `ns`.
    fn spawn(ns: &Netns, script: &str, args: &[String], what: String) -> Self {
        let mut full = vec!["-u", "-c", script];
        full.extend(args.iter().map(String::as_str));
        let mut child = ns
            .command("python3", &full)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stdin = child.stdin.take();
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        Self {
            child,
            stdin,
            lines,
            what,
        }
    }

    /// Waits for the program's next line to be `line`; panics with its
    /// stderr otherwise.
    fn wait_for(&mut self, line: &str) {
        match self.lines.recv_timeout(START_TIMEOUT) {
            Ok(got) if got == line => {}
            other => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("{} did not start ({other:?}): {err}", self.what);
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A probe server on one address in a namespace, stopped on drop.
#[derive(Debug)]
pub(super) struct Server {
    _agent: Agent,
}

impl Server {
    /// Serves `probes` on each `(namespace, address)`, all starting at
    /// once; returns once every socket of every server is bound.
    pub(super) fn start_all(at: &[(&Netns, IpAddr)], probes: &[Probe]) -> Vec<Self> {
        let mut agents: Vec<Agent> = at
            .iter()
            .map(|(ns, addr)| {
                let mut args = vec![addr.to_string()];
                args.extend(probes.iter().map(Probe::to_string));
                let what = format!("probe server on {addr} in {}", ns.name());
                Agent::spawn(ns, SERVE, &args, what)
            })
            .collect();
        for agent in &mut agents {
            agent.wait_for("ready");
        }
        agents.into_iter().map(|a| Self { _agent: a }).collect()
    }
}

/// One probe a prober sends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    /// Where to.
    pub to: IpAddr,
    /// What.
    pub probe: Probe,
    /// From which local port.
    pub sport: u16,
}

/// A prober started in a namespace; [`Prober::finish`] collects its outcomes.
#[derive(Debug)]
pub(super) struct Prober {
    child: Option<Child>,
    jobs: usize,
    timeout: Duration,
    what: String,
}

impl Prober {
    /// Starts sending `jobs` from `ns`, each given `timeout`.
    pub(super) fn start(ns: &Netns, jobs: &[Job], timeout: Duration) -> Self {
        let mut args = vec![timeout.as_secs_f64().to_string()];
        args.extend(jobs.iter().map(|j| {
            let proto = j.probe.protocol.name();
            format!("{proto},{},{},{}", j.to, j.probe.port, j.sport)
        }));
        let mut full = vec!["-c", PROBE];
        full.extend(args.iter().map(String::as_str));
        let what = format!("prober in {}", ns.name());
        let child = ns
            .command("python3", &full)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        Self {
            child: Some(child),
            jobs: jobs.len(),
            timeout,
            what,
        }
    }

    /// Waits for the prober and returns one outcome per job, in job order;
    /// panics if it failed or printed something else.
    pub(super) fn finish(mut self) -> Vec<Outcome> {
        let child = self.child.take().expect("finished once");
        let out = process::finish(child, self.timeout + PROBER_SLACK);
        assert!(out.success(), "{} failed: {out}", self.what);
        let mut outcomes = vec![None; self.jobs];
        for line in out.stdout.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(i, word)| Some((i.parse::<usize>().ok()?, Outcome::parse(word)?)));
            match parsed {
                Some((i, outcome)) if i < self.jobs && outcomes[i].is_none() => {
                    outcomes[i] = Some(outcome);
                }
                _ => panic!("{} printed {line:?}: {out}", self.what),
            }
        }
        outcomes
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                o.unwrap_or_else(|| panic!("{} said nothing of job {i}: {out}", self.what))
            })
            .collect()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP connection held open from one namespace to a probe server, to send
/// round trips over the same flow while policy changes; closed on drop.
///
/// After a round trip that did not come back the stream is out of step (a
/// late echo would answer the next one), so the caller should stop there.
#[derive(Debug)]
pub struct Connection {
    agent: Agent,
    timeout: Duration,
}

impl Connection {
    /// Connects from `ns` to `to:port` (a TCP probe port a server echoes on);
    /// panics if the connection cannot be made within `timeout`.
    pub fn open(ns: &Netns, to: IpAddr, port: u16, timeout: Duration) -> Self {
        let args = [
            to.to_string(),
            port.to_string(),
            timeout.as_secs_f64().to_string(),
        ];
        let what = format!("connection from {} to {to}:{port}", ns.name());
        Self {
            agent: Agent::start(ns, HOLD, &args, "connected", what),
            timeout,
        }
    }

    /// Sends a token and waits for its echo: `Ok(())` when it came back,
    /// else what happened (`timeout`, `closed`, `error:EX`).
    pub fn round_trip(&mut self) -> Result<(), String> {
        let stdin = self.agent.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{}: write: {e}", self.agent.what))?;
        match self.agent.lines.recv_timeout(self.timeout + PROBER_SLACK) {
            Ok(line) if line == "echoed" => Ok(()),
            Ok(line) => Err(line),
            Err(e) => Err(format!("{}: no answer: {e}", self.agent.what)),
        }
    }
}
