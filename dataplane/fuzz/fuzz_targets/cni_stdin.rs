//! What a container runtime hands `tweed-cni`: the `CNI_*` environment and
//! the network configuration on stdin, decoded and checked by the plugin's
//! `spec` module as `main` and `cmd` do before they talk to the daemon.
//!
//! Input: environment lines `KEY=VALUE` up to the first NUL byte, then the
//! stdin bytes. Without a NUL, the whole input is stdin and the environment
//! is a fixed ADD.
//!
//! Beyond "nothing panics":
//! - an error is the spec's error JSON (`code`, `msg`) in the version
//!   stdin names;
//! - a configuration that parses gives an ADD result (tweed's attachment
//!   appended to any `prevResult`) in its version, and CHECK, given that
//!   result back as `prevResult`, finds no difference with the attachment:
//!   tweed never fails its own result (unless an earlier plugin of the
//!   chain reported an interface of the same name, where ADD conflicts).

#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tweed_cni::spec::check::diff_prev_result;
use tweed_cni::spec::result::add_result;
use tweed_cni::spec::{Attached, CniError, CniVersion, Command, Env, config};

const ADD_ENV: &str = "CNI_COMMAND=ADD\nCNI_CONTAINERID=c0ffee\nCNI_NETNS=/run/netns/pod\nCNI_IFNAME=eth0\nCNI_ARGS=K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web";

fn attached(ifname: &str, netns: &str) -> Attached {
    Attached {
        ifname: ifname.to_owned(),
        netns: netns.to_owned(),
        mac: "0a:58:0a:f4:01:02".to_owned(),
        mtu: 1450,
        ipv4: Some(Ipv4Addr::new(10, 244, 1, 2)),
        ipv6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        gateway_v4: Some(Ipv4Addr::new(169, 254, 1, 1)),
        gateway_v6: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
    }
}

/// Whether `prev` has an interface CHECK could take for `mine` (its name,
/// in its sandbox or in none).
fn named_like(prev: Option<&serde_json::Map<String, serde_json::Value>>, mine: &Attached) -> bool {
    let Some(interfaces) = prev.and_then(|p| p.get("interfaces")?.as_array().cloned()) else {
        return false;
    };
    interfaces.iter().any(|i| {
        i.get("name").and_then(|n| n.as_str()) == Some(mine.ifname.as_str())
            && i.get("sandbox")
                .and_then(|s| s.as_str())
                .is_none_or(|s| s == mine.netns)
    })
}

fn check_error(e: &CniError, version: CniVersion) {
    let json = e.to_json(version);
    assert_eq!(json["code"].as_u64(), Some(u64::from(e.code)), "{json}");
    assert!(json["msg"].is_string(), "{json}");
    serde_json::from_str::<serde_json::Value>(&json.to_string()).expect("error JSON re-reads");
}

fuzz_target!(|data: &[u8]| {
    let (env_text, stdin) = match data.iter().position(|&b| b == 0) {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (ADD_ENV.to_owned(), data),
    };
    let vars: HashMap<&str, &str> = env_text.lines().filter_map(|l| l.split_once('=')).collect();
    let version = config::peek_version(stdin).unwrap_or(CniVersion::LATEST);
    let env = match Env::parse(|k| vars.get(k).map(|v| (*v).to_owned())) {
        Ok(env) => env,
        Err(e) => return check_error(&e, version),
    };
    if env.command == Command::Add {
        for got in [env.container_id(), env.netns(), env.ifname()] {
            assert!(got.is_ok_and(|v| !v.is_empty()), "ADD has what it needs");
        }
        assert!(
            env.netns().is_ok_and(|n| n.starts_with('/')),
            "an absolute netns"
        );
    }
    let conf = match config::parse(stdin) {
        Ok(conf) => conf,
        Err(e) => return check_error(&e, version),
    };
    assert_eq!(
        conf.version, version,
        "the version errors use is the config's"
    );
    let ifname = env.ifname().unwrap_or("eth0");
    let netns = env.netns().unwrap_or("/run/netns/pod");
    let mine = attached(ifname, netns);
    let result = add_result(
        conf.version,
        &mine,
        conf.dns.as_ref(),
        conf.prev_result.as_ref(),
    );
    assert_eq!(result["cniVersion"].as_str(), Some(conf.version.as_str()));
    let result = result.as_object().expect("a result is an object");
    if named_like(conf.prev_result.as_ref(), &mine) {
        // A chained plugin already made an interface of our name: ADD
        // conflicts in the netns (code 100) and no result is given.
        return;
    }
    let differences = diff_prev_result(&mine, result);
    assert!(
        differences.is_empty(),
        "CHECK fails tweed's own result: {differences:?}\n{}",
        serde_json::Value::Object(result.clone())
    );
    if let Some(prev) = &conf.prev_result {
        let _ = diff_prev_result(&mine, prev);
    }
});
