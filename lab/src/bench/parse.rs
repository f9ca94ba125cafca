//! Reading what the tools print: iperf3's JSON, sockperf's summary, the
//! connection-rate client's line and `/proc/net/{tcp,udp}`. Pure.

use serde_json::Value;

/// TCP throughput the receiver saw, in bit/s, from `iperf3 -J`.
pub fn iperf3_tcp(json: &str) -> Result<f64, String> {
    let end = iperf3_end(json)?;
    number(
        &end["sum_received"]["bits_per_second"],
        "end.sum_received.bits_per_second",
    )
}

/// Datagrams the server received per second, from `iperf3 -u -l LEN -J`
/// (the server's count, which iperf3 reports back as `sum_received`; some
/// versions put it in `sum`).
pub fn iperf3_udp(json: &str, len: u64) -> Result<f64, String> {
    let end = iperf3_end(json)?;
    let recv = if end["sum_received"].is_object() {
        &end["sum_received"]
    } else {
        &end["sum"]
    };
    let packets = number(&recv["packets"], "packets")?;
    let lost = number(&recv["lost_packets"], "lost_packets")?;
    let bytes = number(&recv["bytes"], "bytes")?;
    let seconds = number(&recv["seconds"], "seconds")?;
    let mut received = packets - lost;
    // Counts from the two ends can disagree; the bytes that arrived decide.
    if bytes > 0.0 && (received * len as f64 - bytes).abs() > 0.5 {
        received = (bytes / len as f64).floor();
    }
    if seconds <= 0.0 {
        return Err("iperf3 reported a run of 0 seconds".to_owned());
    }
    Ok(received / seconds)
}

fn iperf3_end(json: &str) -> Result<Value, String> {
    if json.trim().is_empty() {
        return Err("iperf3 printed nothing".to_owned());
    }
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("iperf3's output is not JSON: {e}"))?;
    if let Some(error) = doc["error"].as_str() {
        return Err(format!("iperf3: {error}"));
    }
    Ok(doc["end"].clone())
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("iperf3's output has no number at {what}"))
}

/// The 50th and 99th percentile round trips in µs from `sockperf
/// ping-pong --full-rtt`.
pub fn sockperf_percentiles(text: &str) -> Result<(f64, f64), String> {
    let find = |p: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| {
                let rest = l.split("---> percentile ").nth(1)?;
                let (pct, value) = rest.split_once('=')?;
                (pct.trim() == p).then(|| value.trim().parse::<f64>().ok())?
            })
            .ok_or_else(|| format!("sockperf printed no percentile {p}"))
    };
    Ok((find("50.000")?, find("99.000")?))
}

/// What the connection-rate client prints at the end:
/// `connections N seconds S failures F connect_p99_us P`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnReport {
    /// Connections that completed their exchange.
    pub connections: u64,
    /// How long it ran.
    pub seconds: f64,
    /// Connections that failed.
    pub failures: u64,
    /// The 99th percentile of the completed connections' connect time, µs.
    pub connect_p99_us: f64,
}

impl ConnReport {
    /// The line.
    pub fn line(&self) -> String {
        format!(
            "connections {} seconds {:.3} failures {} connect_p99_us {:.0}",
            self.connections, self.seconds, self.failures, self.connect_p99_us
        )
    }

    /// What the table should say when connections failed: each one held
    /// its client thread up to the connect or read timeout (1 s), which the
    /// rate does not show.
    pub fn failures_note(&self) -> Option<String> {
        (self.failures > 0).then(|| {
            format!(
                "{} of {} connections failed (each held a client up to 1 s)",
                self.failures,
                self.connections + self.failures
            )
        })
    }

    /// Completed connections per second.
    pub fn rate(&self) -> Result<f64, String> {
        if self.connections == 0 || self.seconds <= 0.0 {
            return Err(format!(
                "no connection completed ({} failed)",
                self.failures
            ));
        }
        Ok(self.connections as f64 / self.seconds)
    }

    /// Reads the last such line of `text`.
    pub fn parse(text: &str) -> Result<ConnReport, String> {
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with("connections "))
            .ok_or("the connection client printed no result")?;
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [
                "connections",
                n,
                "seconds",
                s,
                "failures",
                f,
                "connect_p99_us",
                p,
            ] => Ok(ConnReport {
                connections: n.parse().map_err(|_| format!("bad count in {line:?}"))?,
                seconds: s.parse().map_err(|_| format!("bad seconds in {line:?}"))?,
                failures: f.parse().map_err(|_| format!("bad failures in {line:?}"))?,
                connect_p99_us: p
                    .parse()
                    .map_err(|_| format!("bad connect p99 in {line:?}"))?,
            }),
            _ => Err(format!("unexpected result line {line:?}")),
        }
    }
}

/// Whether `/proc/net/tcp` (listening: state `0A`) or `/proc/net/udp`
/// (bound: state `07`) text shows a socket on local port `port`.
pub fn proc_net_has_port(text: &str, port: u16, tcp: bool) -> bool {
    let state = if tcp { "0A" } else { "07" };
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3
            && f[3] == state
            && f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_tcp_reads_the_receivers_rate() {
        let v = iperf3_tcp(include_str!("fixtures/iperf3-tcp.json")).unwrap();
        assert!(v > 1e6, "{v}");
        assert!(iperf3_tcp("").is_err());
        let e = iperf3_tcp(r#"{"start":{},"end":{},"error":"unable to connect"}"#);
        assert_eq!(e.unwrap_err(), "iperf3: unable to connect");
    }

    #[test]
    fn iperf3_udp_counts_what_arrived() {
        let v = iperf3_udp(include_str!("fixtures/iperf3-udp.json"), 64).unwrap();
        // 9,049,792 bytes of 64 in 1.007507 s
        assert!((v - 9_049_792.0 / 64.0 / 1.007_507).abs() < 1.0, "{v}");
        let json = r#"{"end":{"sum_received":{"packets":100,"lost_packets":10,"bytes":5760,"seconds":2.0}}}"#;
        assert_eq!(iperf3_udp(json, 64).unwrap(), 45.0);
    }

    #[test]
    fn sockperf_gives_p50_and_p99() {
        let (p50, p99) =
            sockperf_percentiles(include_str!("fixtures/sockperf-ping-pong.txt")).unwrap();
        assert_eq!((p50, p99), (3.730, 46.462));
        assert!(sockperf_percentiles("sockperf: nothing").is_err());
    }

    #[test]
    fn the_connection_report_round_trips() {
        let r = ConnReport {
            connections: 1234,
            seconds: 2.0,
            failures: 1,
            connect_p99_us: 310.0,
        };
        let text = format!("noise\n{}\n", r.line());
        assert_eq!(ConnReport::parse(&text).unwrap(), r);
        assert_eq!(r.rate().unwrap(), 617.0);
        assert!(ConnReport::parse("connections x").is_err());
        assert_eq!(
            r.failures_note().as_deref(),
            Some("1 of 1235 connections failed (each held a client up to 1 s)")
        );
        assert_eq!(ConnReport { failures: 0, ..r }.failures_note(), None);
        assert!(
            ConnReport {
                connections: 0,
                ..r
            }
            .rate()
            .is_err()
        );
    }

    #[test]
    fn proc_net_finds_listeners() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue\n   \
                   0: 0201F40A:1451 00000000:0000 0A 00000000:00000000 00:00000000\n   \
                   1: 0201F40A:8F2A 0301F40A:1451 01 00000000:00000000 00:00000000\n";
        assert!(proc_net_has_port(tcp, 5201, true));
        assert!(!proc_net_has_port(tcp, 36650, true));
        assert!(!proc_net_has_port(tcp, 5201, false));
    }
}
