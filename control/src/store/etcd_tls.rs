//! The files of an [`EtcdAuth`] read into etcd-client's [`ConnectOptions`], and the
//! failures of connecting with them told apart.
//!
//! TLS is rustls (etcd-client's `tls` feature, ring underneath, as kube uses), never
//! OpenSSL. The files are read once, when the store connects: a renewed client
//! certificate takes a daemon restart (kubeadm renews its certificates yearly).
//! With a user, etcd-client authenticates while connecting and again whenever etcd
//! says the token expired (`with_auto_token_refresh`).

use std::error::Error;
use std::path::Path;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use super::etcd_auth::{EtcdAuth, EtcdAuthError, Pem, check_pem, password};

/// `options` with the TLS settings and the user of `auth`, its files read.
pub(super) fn apply(
    auth: &EtcdAuth,
    mut options: ConnectOptions,
) -> Result<ConnectOptions, EtcdAuthError> {
    if let Some(ca) = &auth.ca {
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem(
            "etcd-ca",
            ca,
            Pem::Certificate,
        )?));
        if let Some(client) = &auth.client_cert {
            let cert = read_pem("etcd-cert", &client.cert, Pem::Certificate)?;
            let key = read_pem("etcd-key", &client.key, Pem::PrivateKey)?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        options = options.with_tls(tls);
    }
    if let Some(user) = &auth.user {
        let text =
            std::fs::read_to_string(&user.password_file).map_err(|source| EtcdAuthError::Read {
                flag: "etcd-password-file",
                path: user.password_file.clone(),
                source,
            })?;
        let password = password(&text).ok_or_else(|| EtcdAuthError::Content {
            flag: "etcd-password-file",
            path: user.password_file.clone(),
            reason: "is empty",
        })?;
        options = options
            .with_user(user.name.clone(), password)
            .with_auto_token_refresh(true);
    }
    Ok(options)
}

fn read_pem(flag: &'static str, path: &Path, kind: Pem) -> Result<Vec<u8>, EtcdAuthError> {
    let bytes = std::fs::read(path).map_err(|source| EtcdAuthError::Read {
        flag,
        path: path.to_owned(),
        source,
    })?;
    check_pem(flag, path, &bytes, kind)?;
    Ok(bytes)
}

/// The TLS failure behind `e`, if it is one: a certificate that does not verify, or
/// an alert from etcd such as "bad certificate". `tls`: the connection is TLS, so an
/// "invalid data" I/O error in the chain is TLS's too (rustls reports some alerts
/// only as such an error's text).
///
/// etcd-client's error names no `source()`, so its transport error or gRPC status is
/// opened here and its chain searched.
pub(super) fn tls_cause(e: &etcd_client::Error, tls: bool) -> Option<Box<dyn Error + Send + Sync>> {
    use etcd_client::Error as E;
    let first: &(dyn Error + 'static) = match e {
        E::TransportError(e) => e,
        E::GRpcStatus(status) => status,
        E::IoError(e) => e,
        _ => return None,
    };
    in_chain(first, tls)
}

/// A TLS failure that reached us only as text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TlsText(String);

/// The first rustls error in `e`'s chain (or, `tls`, invalid-data I/O error).
fn in_chain(e: &(dyn Error + 'static), tls: bool) -> Option<Box<dyn Error + Send + Sync>> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(cause) = e.downcast_ref::<rustls::Error>() {
            return Some(Box::new(cause.clone()));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An `io::Error` made from another error hides it from `source()`.
            if let Some(cause) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(Box::new(cause.clone()));
            }
            if tls && io.kind() == std::io::ErrorKind::InvalidData {
                return Some(Box::new(TlsText(io.to_string())));
            }
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rustls_error_is_found_inside_io_errors_and_chains() {
        #[derive(Debug, thiserror::Error)]
        #[error("transport")]
        struct Outer(#[source] std::io::Error);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, alert);
        let found = in_chain(&Outer(io), false).expect("found");
        assert!(found.is::<rustls::Error>(), "{found}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(in_chain(&Outer(refused), true).is_none());
        let io = std::io::Error::other(rustls::Error::DecryptError);
        assert!(tls_cause(&etcd_client::Error::IoError(io), false).is_some());
        // rustls turns some alerts into text only: TLS's when the connection is.
        let text = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "received fatal alert: BadCertificate",
            )
        };
        assert!(in_chain(&Outer(text()), false).is_none());
        let found = in_chain(&Outer(text()), true).expect("found");
        assert_eq!(found.to_string(), "received fatal alert: BadCertificate");
    }

    #[test]
    fn missing_files_name_their_flag_and_path() {
        let auth = EtcdAuth {
            ca: Some("/nonexistent/tweed-ca.crt".into()),
            ..Default::default()
        };
        let err = apply(&auth, ConnectOptions::new()).unwrap_err();
        assert_eq!(err.to_string(), "read --etcd-ca /nonexistent/tweed-ca.crt");
        assert!(
            err.source()
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        );
    }
}
