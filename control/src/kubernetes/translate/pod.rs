//! Pod → its labels (under `pod-labels/NS/NAME`, which take the place of the
//! labels a pod was attached with: in a cluster the CNI gets none) and, for a
//! pod of another node, a record with its addresses (what this node's policy
//! needs of a peer). Host-network pods are not tweed's and give nothing;
//! finished pods give no addresses (theirs may already be reused).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use tweed_api::dataplane::proto::MacAddr;

use super::{Context, Entry, Translate, encode};
use crate::cluster::keys;
use crate::pods::PodRecord;

/// The container id a remote pod's record is filed under (`k8s-UID`).
pub fn remote_id(uid: &str) -> String {
    format!("k8s-{uid}")
}

impl Translate for Pod {
    fn entries(&self, context: &Context) -> Result<Vec<Entry>, String> {
        let spec = self.spec.as_ref();
        if spec.and_then(|s| s.host_network).unwrap_or(false) {
            return Ok(Vec::new());
        }
        let meta = &self.metadata;
        let (Some(namespace), Some(name)) = (&meta.namespace, &meta.name) else {
            return Err("a pod without a namespace or name".into());
        };
        let labels = meta.labels.clone().unwrap_or_default();
        let mut out = vec![(keys::pod_labels(namespace, name), encode(&labels))];
        let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
        let status = self.status.as_ref();
        let finished = matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if node.is_empty() || node == context.node || finished {
            return Ok(out);
        }
        let mut ips: Vec<IpAddr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| ips.iter().filter_map(|ip| ip.ip.parse().ok()).collect())
            .unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) = status.and_then(|s| s.pod_ip.as_ref())
            && let Ok(ip) = ip.parse()
        {
            ips.push(ip);
        }
        if ips.is_empty() {
            return Ok(out);
        }
        let uid = meta.uid.as_deref().unwrap_or(name);
        let record = PodRecord {
            container_id: remote_id(uid),
            ifname: "eth0".into(),
            namespace: namespace.clone(),
            name: name.clone(),
            netns: String::new(),
            dataplane_netns: None,
            port: String::new(),
            ipv4: ips.iter().find_map(|ip| match ip {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            }),
            ipv6: ips.iter().find_map(|ip| match ip {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            }),
            mac: MacAddr([0; 6]),
            mtu: 0,
            labels,
        };
        out.push((
            keys::pod(node, &record.container_id, "eth0"),
            encode(&record),
        ));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn here() -> Context {
        Context { node: "a".into() }
    }

    #[test]
    fn a_local_pod_gives_only_its_labels() {
        let p = pod(serde_json::json!({
            "metadata": {"namespace": "prod", "name": "web-1", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "a", "containers": []},
            "status": {"podIPs": [{"ip": "10.244.1.5"}]},
        }));
        let entries = p.entries(&here()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, keys::pod_labels("prod", "web-1"));
        assert_eq!(entries[0].1, br#"{"app":"web"}"#);
    }

    #[test]
    fn a_remote_pod_gives_a_record_with_both_families() {
        let p = pod(serde_json::json!({
            "metadata": {"namespace": "prod", "name": "db-1", "uid": "u2", "labels": {"app": "db"}},
            "spec": {"nodeName": "b", "containers": []},
            "status": {"podIPs": [{"ip": "fd00::5"}, {"ip": "10.244.2.5"}]},
        }));
        let entries = p.entries(&here()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0, keys::pod("b", "k8s-u2", "eth0"));
        let record: PodRecord = serde_json::from_slice(&entries[1].1).unwrap();
        assert_eq!(record.ipv4, Some("10.244.2.5".parse().unwrap()));
        assert_eq!(record.ipv6, Some("fd00::5".parse().unwrap()));
        assert_eq!(record.labels["app"], "db");
    }

    #[test]
    fn host_network_finished_and_unscheduled_pods_give_no_record() {
        let host = pod(serde_json::json!({
            "metadata": {"namespace": "kube-system", "name": "proxy"},
            "spec": {"nodeName": "b", "hostNetwork": true, "containers": []},
            "status": {"podIP": "192.168.0.2"},
        }));
        assert!(host.entries(&here()).unwrap().is_empty());
        let done = pod(serde_json::json!({
            "metadata": {"namespace": "prod", "name": "job"},
            "spec": {"nodeName": "b", "containers": []},
            "status": {"phase": "Succeeded", "podIP": "10.244.2.9"},
        }));
        assert_eq!(done.entries(&here()).unwrap().len(), 1);
        let pending = pod(serde_json::json!({
            "metadata": {"namespace": "prod", "name": "new"},
            "spec": {"containers": []},
        }));
        assert_eq!(pending.entries(&here()).unwrap().len(), 1);
    }
}
