//! ADD: attach the pod through the daemon and build the result.
//!
//! The netns is opened here, in the runtime's mount namespace where
//! `CNI_NETNS` names it (podman under `ip netns exec` keeps its netns bind
//! mounts in a mount namespace of its own), and checked to be a network
//! namespace; a path that is missing or wrong is error 4 with the kernel's
//! cause. The open descriptor is handed to the daemon (`netns_fd`, read as
//! `/proc/PID/fd/N`) and kept open until it answers. The result is built from
//! the daemon's answer (and `prevResult`, already checked by `config::parse`),
//! so nothing can fail between the allocation and the answer.

use std::os::fd::AsRawFd;
use std::path::Path;

use serde_json::Value;
use tweed_api::pod::PodAdd;
use tweed_api::{Request, ResponseBody};
use tweed_sys::netns::{NetNs, NetnsFileError};

use super::{attached, daemon, unexpected};
use crate::spec::result::add_result;
use crate::spec::wanted::{Asked, wanted};
use crate::spec::{CniError, Env, NetConf, code};

/// Runs ADD; returns the result to print.
pub fn add(env: &Env, conf: &NetConf) -> Result<Value, CniError> {
    let netns = env.netns()?;
    let wanted = wanted(Asked {
        arg_ip: env.arg_ip.as_deref(),
        arg_mac: env.arg_mac.as_deref(),
        cap_ips: &conf.runtime_ips,
        cap_mac: conf.runtime_mac.as_deref(),
    })?;
    let ns = NetNs::open_checked(Path::new(netns)).map_err(|e| netns_error(netns, &e))?;
    let request = Request::PodAdd(PodAdd {
        container_id: env.container_id()?.to_owned(),
        netns: netns.to_owned(),
        ifname: env.ifname()?.to_owned(),
        namespace: env.pod_namespace.clone(),
        name: env.pod_name.clone(),
        labels: conf.labels.clone(),
        mtu: conf.mtu,
        ips: wanted.ips.clone(),
        mac: wanted.mac,
        netns_fd: Some(ns.as_raw_fd()),
    });
    let reply = daemon::call(&conf.socket, request);
    drop(ns);
    let info = match reply? {
        ResponseBody::Pod(info) => info,
        other => return Err(unexpected("pod_add", &other)),
    };
    let attached = attached(&info);
    // Never report success with something other than what was asked.
    let given: Vec<std::net::IpAddr> = attached.addresses().iter().map(|(a, _)| *a).collect();
    let mut wrong = None;
    if let Some(missing) = wanted.ips.iter().find(|ip| !given.contains(ip)) {
        wrong = Some(format!(
            "the tweed daemon attached the pod without the address asked for, {missing}"
        ));
    }
    if let Some(mac) = wanted.mac
        && mac != info.mac
    {
        wrong = Some(format!(
            "the tweed daemon gave the pod MAC {}, not {mac} as asked",
            info.mac
        ));
    }
    if let Some(msg) = wrong {
        let _ = super::del(env, conf);
        return Err(CniError::new(code::IO, msg)
            .with_details("tweed-cni and the tweed daemon may be different versions"));
    }
    Ok(add_result(
        conf.version,
        &attached,
        conf.dns.as_ref(),
        conf.prev_result.as_ref(),
    ))
}

/// `CNI_NETNS` cannot be used: error 4 with the kernel's cause.
fn netns_error(netns: &str, e: &NetnsFileError) -> CniError {
    let msg = match e {
        NetnsFileError::Open { source, .. } => format!(
            "CNI_NETNS={netns}: cannot open it: {source}; the pod's network namespace must \
             exist before ADD"
        ),
        NetnsFileError::NotNetns { what, .. } => {
            format!("CNI_NETNS={netns} is not a network namespace ({what})")
        }
    };
    CniError::new(code::INVALID_ENV, msg)
}
