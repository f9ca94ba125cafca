//! `tweed service ...`: native Services from Service and EndpointSlice
//! YAML, the requests they make and how their answers print. Pure but for
//! reading the file.

use std::path::PathBuf;

use clap::Subcommand;

use super::CliError;
use super::policy::read_file;
use super::table::Table;
use crate::api::proto::{Empty, Request};
use crate::api::service::{ServiceApply, ServiceDelete, ServicesApplied, ServicesReply};

/// `tweed service ...`.
#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create or replace the Services and EndpointSlices of a YAML or JSON
    /// file (`-` for stdin), as `kubectl get -o yaml` prints them.
    Apply {
        /// The file: Service and EndpointSlice documents.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a Service and its EndpointSlices.
    Delete {
        /// The Service, `NAMESPACE/NAME`.
        service: String,
    },
    /// List every Service port as this node balances it.
    List,
}

/// The request a `tweed service` command makes.
pub fn service_request(command: &ServiceCommand) -> Result<Request, CliError> {
    Ok(match command {
        ServiceCommand::Apply { file } => Request::ServiceApply(ServiceApply {
            text: read_file(file)?,
        }),
        ServiceCommand::Delete { service } => {
            let (namespace, name) = service
                .split_once('/')
                .ok_or_else(|| CliError::Usage(format!("{service:?} is not NAMESPACE/NAME")))?;
            Request::ServiceDelete(ServiceDelete {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        }
        ServiceCommand::List => Request::ServiceList(Empty {}),
    })
}

/// `service apply`'s answer.
pub fn render_applied(reply: &ServicesApplied) -> String {
    let mut out: String = reply
        .applied
        .iter()
        .map(|what| format!("{what} applied\n"))
        .collect();
    if !reply.native {
        out.push_str(
            "note: this node does not balance Services (start the daemon with --native-services)\n",
        );
    }
    out
}

/// `service list`'s answer: one row per Service port.
pub fn render_services(reply: &ServicesReply) -> String {
    let mut table = Table::new(["SERVICE", "FRONTENDS", "ENDPOINTS"]);
    for port in &reply.ports {
        let endpoints = if port.endpoints.is_empty() {
            "none".to_owned()
        } else {
            port.endpoints.join(", ")
        };
        table.row(vec![
            port.name.clone(),
            port.frontends.join(", "),
            endpoints,
        ]);
    }
    let mut out = if reply.ports.is_empty() {
        "no Services\n".to_owned()
    } else {
        table.render()
    };
    for refused in &reply.refused {
        out.push_str(&format!("not balanced: {refused}\n"));
    }
    if !reply.native {
        out.push_str("note: this node does not balance Services (--native-services is off)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::service::ServicePortInfo;

    #[test]
    fn delete_needs_a_namespace_and_a_name() {
        let request = service_request(&ServiceCommand::Delete {
            service: "shop/web".into(),
        })
        .unwrap();
        assert_eq!(
            request,
            Request::ServiceDelete(ServiceDelete {
                namespace: "shop".into(),
                name: "web".into()
            })
        );
        assert!(
            service_request(&ServiceCommand::Delete {
                service: "web".into()
            })
            .is_err()
        );
    }

    #[test]
    fn the_list_shows_frontends_endpoints_and_what_was_refused() {
        let reply = ServicesReply {
            native: true,
            ports: vec![ServicePortInfo {
                name: "shop/web:http".into(),
                frontends: vec!["10.96.0.11:80/tcp".into()],
                endpoints: vec!["10.244.0.5:8080 (local)".into(), "10.244.1.6:8080".into()],
            }],
            refused: vec!["service shop/bad: spec.clusterIP \"x\" is not an IP address".into()],
        };
        assert_eq!(
            render_services(&reply),
            "\
SERVICE        FRONTENDS          ENDPOINTS
shop/web:http  10.96.0.11:80/tcp  10.244.0.5:8080 (local), 10.244.1.6:8080
not balanced: service shop/bad: spec.clusterIP \"x\" is not an IP address
"
        );
        let off = ServicesReply {
            native: false,
            ports: vec![],
            refused: vec![],
        };
        assert!(render_services(&off).contains("--native-services"));
    }
}
