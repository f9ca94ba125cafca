//! Both APIs bound what their clients can take: thousands of half-sent
//! requests cost the dataplane at most its connection cap in threads (the
//! rest are refused at once, the admitted ones answered and closed when
//! their request does not arrive in time), and large requests, over the
//! line limit or just under it, are answered without the memory growing
//! with them. Peak RSS (`VmHWM`) before and after is printed for the notes.
//!
//! Each test has its own prefix; namespaces and processes go with their
//! guards, also on failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use tweed_suite::control::SingleNode;
use tweed_suite::node::Node;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;

/// Half-open connections the test opens.
const CONNECTIONS: usize = 2000;

/// A `/proc/PID/status` field, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process");
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} of {pid}"))
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the process's threads")
        .count()
}

/// A request line of about `bytes` bytes whose bulk is an array of numbers
/// in a field the server does not know: a JSON tree of it would cost many
/// times its size, a reader that skips it nothing.
fn padded_request(bytes: usize) -> String {
    let head = r#"{"version":1,"request":{"port_list":{}},"pad":["#;
    let mut line = String::with_capacity(bytes + 64);
    line.push_str(head);
    while line.len() + 2 < bytes {
        line.push_str("1,");
    }
    line.push_str("1]}");
    line
}

/// Sends `count` copies of `line` at once on their own connections and
/// returns each reply line (empty if the server closed without one).
fn send_at_once(socket: &Path, line: &str, count: usize) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .map(|_| {
                s.spawn(|| {
                    let stream = UnixStream::connect(socket).expect("connect");
                    stream
                        .set_read_timeout(Some(Duration::from_secs(60)))
                        .expect("timeout");
                    let mut writer = stream.try_clone().expect("clone");
                    // The server may refuse and close before the line ends.
                    let _ = writer.write_all(line.as_bytes());
                    let _ = writer.write_all(b"\n");
                    let mut reply = String::new();
                    let _ = BufReader::new(stream).read_line(&mut reply);
                    reply
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender"))
            .collect()
    })
}

fn error_message(reply: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(reply.trim_end())
        .unwrap_or_else(|e| panic!("a JSON reply ({e}): {reply:?}"));
    value["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn half_open_connections_cost_the_dataplane_a_bounded_number_of_threads() {
    if !require_root() {
        return;
    }
    let node = Node::standalone("abt", "192.168.214.1", &[]);
    let pid = node.pid().expect("the dataplane runs");
    let cap = tweed_dataplane::api::LIMITS.max_connections;
    let before = threads(pid);
    let mut streams: Vec<UnixStream> = (0..CONNECTIONS)
        .map(|_| {
            let mut s = UnixStream::connect(node.api.socket()).expect("connect");
            // Half a request, never finished.
            let _ = s.write_all(br#"{"version":1,"request":"#);
            s
        })
        .collect();
    // Every connection is answered: at once over the cap, after the request
    // timeout under it; meanwhile the thread count is sampled.
    let mut replies: Vec<Option<String>> = vec![None; CONNECTIONS];
    let mut read: Vec<Vec<u8>> = vec![Vec::new(); CONNECTIONS];
    let mut most = before;
    for s in &streams {
        s.set_nonblocking(true).expect("non-blocking");
    }
    let answered = poll::wait(Duration::from_secs(60), || {
        most = most.max(threads(pid));
        for (i, s) in streams.iter_mut().enumerate() {
            // Until the server closes it (the reply may come first).
            if replies[i].is_none() && s.read_to_end(&mut read[i]).is_ok() {
                replies[i] = Some(String::from_utf8_lossy(&read[i]).into_owned());
            }
        }
        replies.iter().all(Option::is_some)
    });
    eprintln!(
        "{CONNECTIONS} half-open connections: threads {before} before, at most {most} meanwhile"
    );
    assert!(
        most <= before + cap,
        "at most {cap} connection threads: {before} before, {most} meanwhile"
    );
    let unanswered = replies.iter().filter(|r| r.is_none()).count();
    assert!(answered, "{unanswered} connections got no answer");
    let refused = replies
        .iter()
        .flatten()
        .filter(|r| error_message(r).contains(&format!("at most {cap} connections")))
        .count();
    let too_slow = replies
        .iter()
        .flatten()
        .filter(|r| error_message(r).contains("did not arrive whole"))
        .count();
    eprintln!("{refused} refused over the cap, {too_slow} answered when their request timed out");
    assert_eq!(
        refused + too_slow,
        CONNECTIONS,
        "every one got a clear error"
    );
    assert!(too_slow <= cap, "{too_slow} were served");
    drop(streams);
    let ok = poll::wait(Duration::from_secs(10), || {
        node.api
            .raw(r#"{"version":1,"request":{"port_list":{}}}"#)
            .is_ok_and(|r| r.contains("\"ok\""))
    });
    assert!(ok, "the API answers afterwards");
}

#[test]
fn large_requests_do_not_grow_the_dataplanes_memory_with_them() {
    if !require_root() {
        return;
    }
    let node = Node::standalone("abm", "192.168.215.1", &[]);
    let pid = node.pid().expect("the dataplane runs");
    let max = tweed_dataplane::api::MAX_LINE;
    let before = status_kb(pid, "VmHWM:");

    let under = send_at_once(node.api.socket(), &padded_request(max - 1024), 4);
    let over = send_at_once(node.api.socket(), &padded_request(4 * max), 4);
    let after = status_kb(pid, "VmHWM:");
    eprintln!("dataplane peak RSS: {before} kB before, {after} kB after");
    assert!(
        after - before < 256 << 10,
        "peak RSS grew by {} kB",
        after - before
    );
    for reply in &under {
        assert!(
            error_message(reply).contains("unknown field `pad`"),
            "read whole, then refused for its field: {reply}"
        );
    }
    for reply in &over {
        assert!(
            error_message(reply).contains(&format!("longer than {max} bytes")),
            "{reply}"
        );
    }
}

#[test]
fn large_requests_do_not_grow_the_daemons_memory_with_them() {
    if !require_root() {
        return;
    }
    let node = SingleNode::start("abc", "10.97.65", &[]);
    let pid = node.daemon().pid().expect("the daemon runs");
    let max = tweed_control::api::MAX_LINE;
    let socket = node.daemon().control_socket();
    let before = status_kb(pid, "VmHWM:");
    let over = send_at_once(&socket, &padded_request(max + (1 << 20)), 4);
    let under = send_at_once(&socket, &padded_request(max - 1024), 4);
    for reply in over.iter().chain(&under) {
        let message = error_message(reply);
        assert!(
            message.contains("longer than")
                || message.contains("unknown field `pad`")
                || message.contains("busy"),
            "a clear refusal: {reply}"
        );
    }
    let after = status_kb(pid, "VmHWM:");
    eprintln!(
        "daemon peak RSS: {before} kB before, {after} kB after four {} MiB lines and four {} MiB lines",
        (max + (1 << 20)) >> 20,
        max >> 20
    );
    assert!(
        after - before < 256 << 10,
        "peak RSS grew by {} kB",
        after - before
    );
}
