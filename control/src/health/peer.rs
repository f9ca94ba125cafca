//! [`PeerHealth`]: the public read model of one peer's reachability, as the metrics,
//! the CLI and the API show it.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One peer's reachability through the overlay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerHealth {
    /// The peer's node name.
    pub name: String,
    /// Its health port: its overlay address and the health port number.
    pub target: SocketAddr,
    /// `Some(true)` once a probe succeeded, `Some(false)` after the failure threshold,
    /// `None` while neither happened since the peer was added (not probed yet).
    pub reachable: Option<bool>,
    /// Time to connect, from the latest successful probe; only while reachable.
    #[serde(rename = "rtt_ms", with = "rtt_ms", default)]
    pub rtt: Option<Duration>,
    /// Why the latest probe failed; `None` when it succeeded or none ran.
    pub last_error: Option<String>,
}

/// `Option<Duration>` as fractional milliseconds (`rtt_ms: 1.25`).
mod rtt_ms {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rtt: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match rtt {
            Some(rtt) => s.serialize_some(&(rtt.as_nanos() as f64 / 1e6)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(ms) = Option::<f64>::deserialize(d)? else {
            return Ok(None);
        };
        let nanos = (ms * 1e6).round();
        if !(0.0..=u64::MAX as f64).contains(&nanos) {
            return Err(D::Error::custom(format!("rtt_ms {ms} is not a duration")));
        }
        // In range, checked above; the cast saturates at the top anyway.
        Ok(Some(Duration::from_nanos(nanos as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rtt: Option<Duration>) -> PeerHealth {
        PeerHealth {
            name: "node-b".into(),
            target: "10.244.1.1:9901".parse().expect("literal address"),
            reachable: Some(true),
            rtt,
            last_error: None,
        }
    }

    #[test]
    fn rtt_is_written_as_fractional_milliseconds() {
        let json = serde_json::to_value(sample(Some(Duration::from_micros(1250)))).expect("json");
        assert_eq!(json["rtt_ms"], serde_json::json!(1.25));
        assert_eq!(json["target"], serde_json::json!("10.244.1.1:9901"));
        assert!(json.get("rtt").is_none());
        let none = serde_json::to_value(sample(None)).expect("json");
        assert_eq!(none["rtt_ms"], serde_json::Value::Null);
    }

    #[test]
    fn round_trips_through_json() {
        for rtt in [
            None,
            Some(Duration::from_micros(1250)),
            Some(Duration::ZERO),
        ] {
            let peer = sample(rtt);
            let text = serde_json::to_string(&peer).expect("json");
            let back: PeerHealth = serde_json::from_str(&text).expect("parse back");
            assert_eq!(back, peer, "{text}");
        }
    }

    #[test]
    fn a_negative_rtt_is_refused() {
        let text = r#"{"name":"n","target":"10.0.0.1:1","reachable":true,"rtt_ms":-1.0,"last_error":null}"#;
        let err = serde_json::from_str::<PeerHealth>(text).expect_err("negative");
        assert!(err.to_string().contains("rtt_ms"), "{err}");
    }
}
