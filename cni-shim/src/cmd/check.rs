//! CHECK: the daemon's record is the truth; `prevResult` and the pod's netns
//! must agree with it. Every difference is listed in one error (code 101), so
//! the runtime's log says all that is wrong at once.

use std::path::Path;

use tweed_api::pod::PodKey;
use tweed_api::{Request, ResponseBody};

use super::{attached, daemon, unexpected};
use crate::netns::{self, NetnsError};
use crate::spec::check::{diff_netns, diff_prev_result};
use crate::spec::{CniError, Env, NetConf, code};

/// Runs CHECK.
pub fn check(env: &Env, conf: &NetConf) -> Result<(), CniError> {
    if !conf.version.allows_check() {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "CHECK exists from cniVersion 0.4.0; this configuration has {}",
                conf.version
            ),
        ));
    }
    let prev = conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "prevResult is missing: CHECK compares the attachment with the result of ADD, \
             which the runtime must pass as prevResult",
        )
    })?;
    let (container_id, ifname, netns) = (env.container_id()?, env.ifname()?, env.netns()?);
    let request = Request::PodGet(PodKey {
        container_id: container_id.to_owned(),
        ifname: ifname.to_owned(),
    });
    let info = match daemon::call(&conf.socket, request)? {
        ResponseBody::Pod(info) => info,
        other => return Err(unexpected("pod_get", &other)),
    };
    let expected = attached(&info);
    let mut diffs = Vec::new();
    if info.netns != netns {
        diffs.push(format!(
            "the daemon attached it in netns {}, CNI_NETNS is {netns}",
            info.netns
        ));
    }
    diffs.extend(diff_prev_result(&expected, prev));
    match netns::observe(Path::new(netns), ifname) {
        Ok(link) => diffs.extend(diff_netns(&expected, link.as_ref())),
        Err(NetnsError::Open { source, .. }) => {
            diffs.push(format!("netns {netns} cannot be opened: {source}"));
        }
        Err(e) => return Err(CniError::new(code::IO, tweed_api::error::error_chain(&e))),
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(CniError::new(
        code::CHECK_MISMATCH,
        format!(
            "CHECK: interface {ifname} of container {container_id} differs from the daemon's \
             record: {}",
            diffs.join("; ")
        ),
    ))
}
