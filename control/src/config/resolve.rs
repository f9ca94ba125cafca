//! Merging flags over the config file, and filling in defaults.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::{Backend, DaemonArgs, DaemonConfig, overhead};
use crate::ipam::subnet::{DEFAULT_CLUSTER_V4, DEFAULT_SUBNET_LEN_V4, DEFAULT_SUBNET_LEN_V6};
use crate::ipam::{Family, IpamError, SubnetPlan};
use crate::store::{EtcdAuth, EtcdAuthError, EtcdAuthSettings};
use tweed_dataplane::daemon::worker::MAX_WORKERS;
use tweed_dataplane::wire::vxlan::MAX_VNI;

/// A configuration that cannot be used; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown or malformed key.
    #[error("parse the config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's error (names the key and line).
        source: toml::de::Error,
    },
    /// A cluster CIDR or subnet length is unusable.
    #[error("--cluster-cidr {cidr}: {source}")]
    Plan {
        /// The CIDR.
        cidr: IpNet,
        /// Why.
        source: IpamError,
    },
    /// More than one cluster CIDR of one family.
    #[error("--cluster-cidr: give at most one IPv4 and one IPv6 CIDR (got {0:?})")]
    TooManyCidrs(Vec<IpNet>),
    /// No usable underlay address.
    #[error("--underlay-ip: {0}")]
    Underlay(String),
    /// The etcd endpoints, TLS and user settings do not fit together.
    #[error("etcd settings")]
    Etcd(#[source] EtcdAuthError),
    /// A setting is out of range.
    #[error("--{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// What the machine says, looked up by the caller: the defaults that are not constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The hostname.
    pub hostname: String,
    /// The underlay address and its interface's MTU: the one given, or the default
    /// route's; an error message when it could not be found.
    pub underlay: Result<(IpAddr, u32), String>,
    /// Cores available.
    pub cores: usize,
    /// The directory of the running `tweed` executable.
    pub exe_dir: Option<PathBuf>,
}

/// Reads the TOML config file into flags-shaped settings.
pub fn load_file(path: &Path) -> Result<DaemonArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Flags over file: each flag the command line gave replaces the file's value.
pub fn merge(flags: DaemonArgs, file: DaemonArgs) -> DaemonArgs {
    DaemonArgs {
        config: flags.config,
        node_name: flags.node_name.or(file.node_name),
        cluster_cidr: flags.cluster_cidr.or(file.cluster_cidr),
        service_cidr: flags.service_cidr.or(file.service_cidr),
        subnet_len: flags.subnet_len.or(file.subnet_len),
        subnet_len_v6: flags.subnet_len_v6.or(file.subnet_len_v6),
        underlay_ip: flags.underlay_ip.or(file.underlay_ip),
        backend: flags.backend.or(file.backend),
        vxlan_port: flags.vxlan_port.or(file.vxlan_port),
        vxlan_source_ports: flags.vxlan_source_ports.or(file.vxlan_source_ports),
        udp_port: flags.udp_port.or(file.udp_port),
        vni: flags.vni.or(file.vni),
        mtu: flags.mtu.or(file.mtu),
        workers: flags.workers.or(file.workers),
        state_dir: flags.state_dir.or(file.state_dir),
        etcd_endpoints: flags.etcd_endpoints.or(file.etcd_endpoints),
        datasource: flags.datasource.or(file.datasource),
        kubeconfig: flags.kubeconfig.or(file.kubeconfig),
        etcd_ca: flags.etcd_ca.or(file.etcd_ca),
        etcd_cert: flags.etcd_cert.or(file.etcd_cert),
        etcd_key: flags.etcd_key.or(file.etcd_key),
        etcd_username: flags.etcd_username.or(file.etcd_username),
        etcd_password_file: flags.etcd_password_file.or(file.etcd_password_file),
        metrics_addr: flags.metrics_addr.or(file.metrics_addr),
        lease_ttl: flags.lease_ttl.or(file.lease_ttl),
        health_port: flags.health_port.or(file.health_port),
        no_masquerade: flags.no_masquerade || file.no_masquerade,
        native_services: flags.native_services || file.native_services,
        dataplane_bin: flags.dataplane_bin.or(file.dataplane_bin),
    }
}

/// The resolved configuration of merged settings on this machine.
pub fn resolve(args: DaemonArgs, machine: Machine) -> Result<DaemonConfig, ConfigError> {
    let backend = args.backend.unwrap_or(Backend::Vxlan);
    let plans = plans(
        args.cluster_cidr.unwrap_or_default(),
        args.subnet_len,
        args.subnet_len_v6,
    )?;
    let (underlay_ip, underlay_mtu) = machine.underlay.map_err(ConfigError::Underlay)?;
    if underlay_ip.is_unspecified() || underlay_ip.is_multicast() {
        return Err(ConfigError::Underlay(format!(
            "{underlay_ip} cannot be a node's address"
        )));
    }
    let mtu = match args.mtu {
        Some(mtu) => mtu,
        None => {
            // An IPv6 underlay's outer header is 20 bytes longer.
            let extra = if underlay_ip.is_ipv6() {
                crate::host::detect::IPV6_UNDERLAY_EXTRA
            } else {
                0
            };
            crate::host::detect::pod_mtu(underlay_mtu, overhead(backend) + extra)
        }
    };
    if mtu < 576 || (plans.iter().any(|p| p.family() == Family::V6) && mtu < 1280) {
        return Err(ConfigError::Invalid {
            flag: "mtu",
            reason: format!("{mtu} is too small (576 at least, 1280 with IPv6)"),
        });
    }
    let vni = args.vni.unwrap_or(1);
    let workers = match args.workers {
        Some(n) if n == 0 || n > MAX_WORKERS => {
            return Err(ConfigError::Invalid {
                flag: "workers",
                reason: format!("{n}: use 1 to {MAX_WORKERS}"),
            });
        }
        Some(n) => n,
        // One per core, up to the most the dataplane runs.
        None => machine.cores.clamp(1, MAX_WORKERS),
    };
    if vni > MAX_VNI {
        return Err(ConfigError::Invalid {
            flag: "vni",
            reason: format!("{vni}: a VNI has 24 bits (at most {MAX_VNI})"),
        });
    }
    let node_name = args.node_name.unwrap_or(machine.hostname);
    if node_name.is_empty() || node_name.len() > 253 || node_name.contains(['/', ' ', '\t']) {
        return Err(ConfigError::Invalid {
            flag: "node-name",
            reason: format!("{node_name:?} must be 1..=253 characters without '/' or spaces"),
        });
    }
    let lease_ttl = args.lease_ttl.unwrap_or(60);
    if lease_ttl < 2 {
        return Err(ConfigError::Invalid {
            flag: "lease-ttl",
            reason: format!("{lease_ttl} s is too short (2 at least)"),
        });
    }
    let service_cidrs: Vec<IpNet> = args
        .service_cidr
        .unwrap_or_default()
        .iter()
        .map(IpNet::trunc)
        .collect();
    let v4 = service_cidrs
        .iter()
        .filter(|c| matches!(c, IpNet::V4(_)))
        .count();
    if v4 > 1 || service_cidrs.len() - v4 > 1 {
        return Err(ConfigError::Invalid {
            flag: "service-cidr",
            reason: format!("give at most one IPv4 and one IPv6 range (got {service_cidrs:?})"),
        });
    }
    if let Some((svc, cluster)) = service_cidrs.iter().find_map(|s| {
        plans
            .iter()
            .map(SubnetPlan::cluster)
            .find(|c| c.contains(&s.network()) || s.contains(&c.network()))
            .map(|c| (*s, c))
    }) {
        return Err(ConfigError::Invalid {
            flag: "service-cidr",
            reason: format!("{svc} overlaps the cluster CIDR {cluster}"),
        });
    }
    if let Some(svc) = service_cidrs.iter().find(|s| {
        !plans
            .iter()
            .any(|p| p.cluster().network().is_ipv4() == s.network().is_ipv4())
    }) {
        return Err(ConfigError::Invalid {
            flag: "service-cidr",
            reason: format!(
                "{svc} has no cluster CIDR of its family: pods could not use those Services (drop it, or add a cluster-cidr of its family)"
            ),
        });
    }
    let vxlan_source_ports = args
        .vxlan_source_ports
        .unwrap_or(super::DEFAULT_VXLAN_SOURCE_PORTS);
    if vxlan_source_ports.len() > tweed_dataplane::daemon::config::MAX_VXLAN_SOURCE_PORTS {
        return Err(ConfigError::Invalid {
            flag: "vxlan-source-ports",
            reason: format!(
                "{vxlan_source_ports} holds {} ports; give at most {}",
                vxlan_source_ports.len(),
                tweed_dataplane::daemon::config::MAX_VXLAN_SOURCE_PORTS
            ),
        });
    }
    let etcd_endpoints = args.etcd_endpoints.unwrap_or_default();
    let datasource =
        super::datasource::resolve(args.datasource, etcd_endpoints.clone(), args.kubeconfig)?;
    let etcd_auth = EtcdAuth::check(
        &etcd_endpoints,
        EtcdAuthSettings {
            ca: args.etcd_ca,
            cert: args.etcd_cert,
            key: args.etcd_key,
            username: args.etcd_username,
            password_file: args.etcd_password_file,
        },
    )
    .map_err(ConfigError::Etcd)?;
    let dataplane_bin = args.dataplane_bin.unwrap_or_else(|| {
        machine
            .exe_dir
            .map(|dir| dir.join("tweed-dataplane"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("tweed-dataplane"))
    });
    Ok(DaemonConfig {
        node_name,
        plans,
        underlay_ip,
        backend,
        vxlan_port: args.vxlan_port.unwrap_or(4789),
        vxlan_source_ports,
        service_cidrs,
        udp_port: args.udp_port.unwrap_or(8285),
        vni,
        mtu,
        workers,
        state_dir: args
            .state_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/tweed")),
        run_dir: PathBuf::from(crate::api::DEFAULT_RUN_DIR),
        etcd_endpoints,
        datasource,
        etcd_auth,
        metrics_addr: args.metrics_addr,
        lease_ttl: Duration::from_secs(lease_ttl),
        health_port: args.health_port.unwrap_or(9098),
        masquerade: !args.no_masquerade,
        native_services: args.native_services,
        dataplane_bin,
    })
}

fn plans(
    cidrs: Vec<IpNet>,
    len_v4: Option<u8>,
    len_v6: Option<u8>,
) -> Result<Vec<SubnetPlan>, ConfigError> {
    let cidrs = if cidrs.is_empty() {
        vec![DEFAULT_CLUSTER_V4.parse().expect("the default CIDR parses")]
    } else {
        cidrs
    };
    let v4 = cidrs.iter().filter(|c| matches!(c, IpNet::V4(_))).count();
    if v4 > 1 || cidrs.len() - v4 > 1 {
        return Err(ConfigError::TooManyCidrs(cidrs));
    }
    let mut plans: Vec<SubnetPlan> = cidrs
        .into_iter()
        .map(|cidr| {
            let len = match cidr {
                IpNet::V4(_) => len_v4.unwrap_or(DEFAULT_SUBNET_LEN_V4),
                IpNet::V6(_) => len_v6.unwrap_or(DEFAULT_SUBNET_LEN_V6),
            };
            SubnetPlan::new(cidr, len).map_err(|source| ConfigError::Plan { cidr, source })
        })
        .collect::<Result<_, _>>()?;
    plans.sort_by_key(|p| p.family() == Family::V6);
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            hostname: "host-a".into(),
            underlay: Ok(("192.168.1.10".parse().unwrap(), 1500)),
            cores: 2,
            exe_dir: None,
        }
    }

    #[test]
    fn defaults_follow_the_machine() {
        let config = resolve(DaemonArgs::default(), machine()).unwrap();
        assert_eq!(config.node_name, "host-a");
        assert_eq!(config.mtu, 1450);
        assert_eq!(config.workers, 2);
        assert_eq!(
            config.cluster_cidrs(),
            vec!["10.244.0.0/16".parse().unwrap()]
        );
        assert_eq!(config.plans[0].subnet_len(), 24);
        assert_eq!(
            config.control_socket(),
            PathBuf::from("/run/tweed/control.sock")
        );
        assert!(config.masquerade);
        assert_eq!(config.lease_ttl, Duration::from_secs(60));
    }

    #[test]
    fn a_service_cidr_needs_a_cluster_cidr_of_its_family() {
        let args = |service: &str| DaemonArgs {
            service_cidr: Some(vec![service.parse().unwrap()]),
            ..Default::default()
        };
        assert!(resolve(args("10.96.0.0/12"), machine()).is_ok());
        let e = resolve(args("fd00:96::/108"), machine()).unwrap_err();
        assert!(
            e.to_string()
                .contains("fd00:96::/108 has no cluster CIDR of its family"),
            "{e}"
        );
    }

    #[test]
    fn udp_backend_and_loopback_underlay_give_their_mtu() {
        let args = DaemonArgs {
            backend: Some(Backend::Udp),
            ..Default::default()
        };
        assert_eq!(resolve(args, machine()).unwrap().mtu, 1472);
        let mut m = machine();
        m.underlay = Ok(("127.0.0.1".parse().unwrap(), 65536));
        assert_eq!(resolve(DaemonArgs::default(), m).unwrap().mtu, 65485);
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: DaemonArgs = toml::from_str(
            "node-name = \"from-file\"\nvni = 7\ncluster-cidr = [\"10.1.0.0/16\", \"fd00::/48\"]\nno-masquerade = true\n",
        )
        .unwrap();
        let flags = DaemonArgs {
            node_name: Some("from-flag".into()),
            ..Default::default()
        };
        let config = resolve(merge(flags, file), machine()).unwrap();
        assert_eq!(config.node_name, "from-flag");
        assert_eq!(config.vni, 7);
        assert!(!config.masquerade);
        assert_eq!(config.plans.len(), 2);
        assert_eq!(config.plans[1].subnet_len(), 64);
    }

    #[test]
    fn vxlan_source_ports_come_from_the_file_or_default_and_are_bounded() {
        let default = resolve(DaemonArgs::default(), machine()).unwrap();
        assert_eq!(
            default.vxlan_source_ports.to_string(),
            "61000-61007",
            "above Linux's default ephemeral range"
        );
        let file: DaemonArgs = toml::from_str("vxlan-source-ports = \"50000-50003\"\n").unwrap();
        let config = resolve(file, machine()).unwrap();
        assert_eq!(config.vxlan_source_ports.to_string(), "50000-50003");
        let err = toml::from_str::<DaemonArgs>("vxlan-source-ports = \"5-1\"").unwrap_err();
        assert!(err.to_string().contains("ends before it starts"), "{err}");
        let wide = DaemonArgs {
            vxlan_source_ports: Some("50000-50064".parse().unwrap()),
            ..Default::default()
        };
        let err = resolve(wide, machine()).unwrap_err();
        assert!(err.to_string().contains("at most 64"), "{err}");
    }

    #[test]
    fn an_unknown_file_key_names_itself() {
        let err = toml::from_str::<DaemonArgs>("cluster-cdir = []").unwrap_err();
        assert!(err.to_string().contains("cluster-cdir"), "{err}");
    }

    #[test]
    fn bad_settings_say_what_to_fix() {
        let two_v4 = DaemonArgs {
            cluster_cidr: Some(vec![
                "10.1.0.0/16".parse().unwrap(),
                "10.2.0.0/16".parse().unwrap(),
            ]),
            ..Default::default()
        };
        assert!(matches!(
            resolve(two_v4, machine()),
            Err(ConfigError::TooManyCidrs(_))
        ));
        let long = DaemonArgs {
            subnet_len: Some(31),
            ..Default::default()
        };
        let err = resolve(long, machine()).unwrap_err().to_string();
        assert!(err.starts_with("--cluster-cidr 10.244.0.0/16"), "{err}");
        let mut m = machine();
        m.underlay = Err("no default route: pass --underlay-ip".into());
        let err = resolve(DaemonArgs::default(), m).unwrap_err().to_string();
        assert_eq!(err, "--underlay-ip: no default route: pass --underlay-ip");
        let tiny = DaemonArgs {
            mtu: Some(500),
            ..Default::default()
        };
        assert!(matches!(
            resolve(tiny, machine()),
            Err(ConfigError::Invalid { flag: "mtu", .. })
        ));
        for (args, flag) in [
            (
                DaemonArgs {
                    workers: Some(65),
                    ..Default::default()
                },
                "workers",
            ),
            (
                DaemonArgs {
                    vni: Some(1 << 24),
                    ..Default::default()
                },
                "vni",
            ),
        ] {
            let err = resolve(args, machine()).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { flag: f, .. } if f == flag),
                "{err}"
            );
        }
    }

    #[test]
    fn etcd_tls_and_user_come_from_the_file_and_are_checked() {
        let file: DaemonArgs = toml::from_str(concat!(
            "etcd-endpoints = [\"https://10.0.0.1:2379\"]\n",
            "etcd-ca = \"/etc/kubernetes/pki/etcd/ca.crt\"\n",
            "etcd-cert = \"/etc/tweed/etcd.crt\"\n",
            "etcd-key = \"/etc/tweed/etcd.key\"\n",
            "etcd-username = \"tweed\"\n",
            "etcd-password-file = \"/etc/tweed/etcd-password\"\n",
        ))
        .unwrap();
        let config = resolve(file.clone(), machine()).unwrap();
        assert_eq!(
            config.etcd_auth.describe(),
            "tls, client cert, user tweed",
            "{config:?}"
        );
        let flags = DaemonArgs {
            etcd_endpoints: Some(vec!["http://10.0.0.1:2379".into()]),
            ..Default::default()
        };
        let err = resolve(merge(flags, file), machine()).unwrap_err();
        assert!(
            matches!(err, ConfigError::Etcd(EtcdAuthError::TlsOverHttp { .. })),
            "{err}"
        );
        let err = toml::from_str::<DaemonArgs>("etcd-password = \"x\"").unwrap_err();
        assert!(
            err.to_string().contains("etcd-password"),
            "no such key: {err}"
        );
    }

    #[test]
    fn a_machine_with_many_cores_gets_the_most_workers_the_dataplane_runs() {
        let mut m = machine();
        m.cores = 192;
        let config = resolve(DaemonArgs::default(), m).unwrap();
        assert_eq!(config.workers, MAX_WORKERS);
    }

    #[test]
    fn a_bad_config_file_names_the_file_and_chains_tomls_error() {
        let path =
            std::env::temp_dir().join(format!("tweed-config-test-{}.toml", std::process::id()));
        std::fs::write(&path, "workerz = 2\n").unwrap();
        let result = load_file(&path);
        std::fs::remove_file(&path).unwrap();
        let e = result.expect_err("an unknown key");
        assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("parse the config file {}", path.display())
        );
        let chain = tweed_api::error::error_chain(&e);
        assert!(chain.contains("workerz"), "{chain}");
    }
}
