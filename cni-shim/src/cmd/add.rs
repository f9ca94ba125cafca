//! ADD: attach the pod through the daemon and build the result.
//!
//! The netns is checked first so a missing one is error 4 naming
//! `CNI_NETNS`, not a dataplane failure; the result is built from the
//! daemon's answer (and `prevResult`, already checked by `config::parse`), so
//! nothing can fail between the allocation and the answer.

use std::io;
use std::path::Path;

use serde_json::Value;
use tweed_control::api::pod::PodAdd;
use tweed_control::api::{Request, ResponseBody};

use super::{attached, daemon, unexpected};
use crate::spec::result::add_result;
use crate::spec::{CniError, Env, NetConf, code};

/// Runs ADD; returns the result to print.
pub fn add(env: &Env, conf: &NetConf) -> Result<Value, CniError> {
    let netns = env.netns()?;
    if let Err(e) = std::fs::metadata(Path::new(netns)) {
        return Err(if e.kind() == io::ErrorKind::NotFound {
            CniError::new(
                code::INVALID_ENV,
                format!(
                    "CNI_NETNS={netns}: no such file; the pod's network namespace must exist \
                     before ADD"
                ),
            )
        } else {
            CniError::new(code::IO, format!("CNI_NETNS={netns}: {e}"))
        });
    }
    let request = Request::PodAdd(PodAdd {
        container_id: env.container_id()?.to_owned(),
        netns: netns.to_owned(),
        ifname: env.ifname()?.to_owned(),
        namespace: env.pod_namespace.clone(),
        name: env.pod_name.clone(),
        labels: conf.labels.clone(),
        mtu: conf.mtu,
    });
    let info = match daemon::call(&conf.socket, request)? {
        ResponseBody::Pod(info) => info,
        other => return Err(unexpected("pod_add", &other)),
    };
    Ok(add_result(
        conf.version,
        &attached(&info),
        conf.dns.as_ref(),
        conf.prev_result.as_ref(),
    ))
}
