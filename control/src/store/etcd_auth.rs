//! How the daemon proves itself to etcd, and checks etcd: TLS (the CA that signed
//! etcd's server certificate, and optionally a client certificate) and an etcd user.
//!
//! [`EtcdAuth::check`] decides, without touching a file, whether the settings make
//! sense together with the endpoints; [`super::etcd_tls`] reads the files when the
//! store connects. The rules:
//!
//! - every endpoint names its scheme, and all share one: `http://` or `https://`;
//! - `https://` needs `--etcd-ca`: etcd clusters sign their server certificates with
//!   a private CA (kubeadm's is `/etc/kubernetes/pki/etcd/ca.crt`), so the system's
//!   roots would never verify one, and trusting them would let any public certificate
//!   for that name stand in for etcd;
//! - `--etcd-ca`, `--etcd-cert` and `--etcd-key` need `https://`, and the certificate
//!   and its key come together;
//! - `--etcd-username` and `--etcd-password-file` come together; the password is only
//!   ever read from a file, so it shows in no process list, shell history or unit file.
//!
//! A user over plain `http://` is allowed (etcd accepts it), but the password then
//! crosses the network in clear text: the README says to use `https://`.

use std::path::{Path, PathBuf};

/// The settings as given (flags or config-file keys), before [`EtcdAuth::check`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdAuthSettings {
    /// `--etcd-ca`.
    pub ca: Option<PathBuf>,
    /// `--etcd-cert`.
    pub cert: Option<PathBuf>,
    /// `--etcd-key`.
    pub key: Option<PathBuf>,
    /// `--etcd-username`.
    pub username: Option<String>,
    /// `--etcd-password-file`.
    pub password_file: Option<PathBuf>,
}

/// Checked TLS and user settings for etcd; the default is none (plain `http://`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdAuth {
    /// The CA that signed etcd's server certificate (PEM); set exactly when the
    /// endpoints are `https://`.
    pub ca: Option<PathBuf>,
    /// The client certificate and its key, for an etcd run with `--client-cert-auth`.
    pub client_cert: Option<ClientCert>,
    /// The etcd user, for an etcd with authentication enabled.
    pub user: Option<EtcdUser>,
}

/// A client certificate and its private key (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate (`--etcd-cert`).
    pub cert: PathBuf,
    /// Its private key (`--etcd-key`).
    pub key: PathBuf,
}

/// An etcd user and where its password is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdUser {
    /// The name (`--etcd-username`).
    pub name: String,
    /// The file whose content is the password (`--etcd-password-file`).
    pub password_file: PathBuf,
}

/// Settings for etcd that cannot be used; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EtcdAuthError {
    /// An etcd setting without any etcd.
    #[error("--{flag} is a setting for etcd, but no --etcd-endpoints are given")]
    NoEndpoints {
        /// The flag given.
        flag: &'static str,
    },
    /// An endpoint without `http://` or `https://`.
    #[error("etcd endpoint {endpoint:?}: write the scheme, http://HOST:PORT or https://HOST:PORT")]
    NoScheme {
        /// The endpoint.
        endpoint: String,
    },
    /// Some endpoints are `http://`, others `https://`.
    #[error(
        "--etcd-endpoints mix http:// ({http}) and https:// ({https}): one etcd cluster speaks one of them"
    )]
    MixedSchemes {
        /// An `http://` endpoint.
        http: String,
        /// An `https://` endpoint.
        https: String,
    },
    /// TLS settings for plain-HTTP endpoints.
    #[error(
        "--{flag} is for TLS, but the etcd endpoint {endpoint} is plain http://: write https:// or drop --{flag}"
    )]
    TlsOverHttp {
        /// The TLS flag given.
        flag: &'static str,
        /// The first endpoint.
        endpoint: String,
    },
    /// `https://` endpoints and no CA to check etcd's certificate with.
    #[error(
        "the etcd endpoint {endpoint} is https://: give --etcd-ca, the CA that signed etcd's server certificate (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)"
    )]
    HttpsWithoutCa {
        /// The first endpoint.
        endpoint: String,
    },
    /// A certificate without its key, or a key without its certificate.
    #[error("--{given} needs --{missing}: the client certificate and its private key go together")]
    HalfAClientCert {
        /// The flag given.
        given: &'static str,
        /// The flag missing.
        missing: &'static str,
    },
    /// A user without a password file, or a password file without a user.
    #[error("--{given} needs --{missing}")]
    HalfAUser {
        /// The flag given.
        given: &'static str,
        /// The flag missing.
        missing: &'static str,
    },
    /// `--etcd-username ""`.
    #[error("--etcd-username is empty")]
    EmptyUsername,
    /// A file could not be read.
    #[error("read --{flag} {}", path.display())]
    Read {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what its flag takes.
    #[error("--{flag} {}: {reason}", path.display())]
    Content {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

const HTTP: &str = "http://";
const HTTPS: &str = "https://";

impl EtcdAuth {
    /// Checks `settings` against `endpoints` (empty: no etcd).
    pub fn check(
        endpoints: &[String],
        settings: EtcdAuthSettings,
    ) -> Result<EtcdAuth, EtcdAuthError> {
        let EtcdAuthSettings {
            ca,
            cert,
            key,
            username,
            password_file,
        } = settings;
        let tls_flag = [
            (ca.is_some(), "etcd-ca"),
            (cert.is_some(), "etcd-cert"),
            (key.is_some(), "etcd-key"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        let user_flag = [
            (username.is_some(), "etcd-username"),
            (password_file.is_some(), "etcd-password-file"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        let Some(first) = endpoints.first() else {
            return match tls_flag.or(user_flag) {
                Some(flag) => Err(EtcdAuthError::NoEndpoints { flag }),
                None => Ok(EtcdAuth::default()),
            };
        };
        let https = uses_https(endpoints)?;
        let client_cert = match (cert, key) {
            (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(half_cert("etcd-cert", "etcd-key")),
            (None, Some(_)) => return Err(half_cert("etcd-key", "etcd-cert")),
        };
        if !https && let Some(flag) = tls_flag {
            return Err(EtcdAuthError::TlsOverHttp {
                flag,
                endpoint: first.clone(),
            });
        }
        if https && ca.is_none() {
            return Err(EtcdAuthError::HttpsWithoutCa {
                endpoint: first.clone(),
            });
        }
        let user = match (username, password_file) {
            (Some(name), _) if name.is_empty() => return Err(EtcdAuthError::EmptyUsername),
            (Some(name), Some(password_file)) => Some(EtcdUser {
                name,
                password_file,
            }),
            (None, None) => None,
            (Some(_), None) => return Err(half_user("etcd-username", "etcd-password-file")),
            (None, Some(_)) => return Err(half_user("etcd-password-file", "etcd-username")),
        };
        Ok(EtcdAuth {
            ca,
            client_cert,
            user,
        })
    }

    /// Whether the connection is TLS.
    pub fn uses_tls(&self) -> bool {
        self.ca.is_some()
    }

    /// A one-line summary for logs and `tweed status`: `tls, client cert, user tweed`.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.uses_tls() { "tls" } else { "plain http" }.to_owned()];
        if self.client_cert.is_some() {
            parts.push("client cert".to_owned());
        }
        if let Some(user) = &self.user {
            parts.push(format!("user {}", user.name));
        }
        parts.join(", ")
    }
}

/// Whether the endpoints are `https://` (all of them) or `http://` (all of them).
fn uses_https(endpoints: &[String]) -> Result<bool, EtcdAuthError> {
    let mut http = None;
    let mut https = None;
    for endpoint in endpoints {
        if endpoint.starts_with(HTTPS) {
            https.get_or_insert(endpoint);
        } else if endpoint.starts_with(HTTP) {
            http.get_or_insert(endpoint);
        } else {
            return Err(EtcdAuthError::NoScheme {
                endpoint: endpoint.clone(),
            });
        }
    }
    match (http, https) {
        (Some(http), Some(https)) => Err(EtcdAuthError::MixedSchemes {
            http: http.clone(),
            https: https.clone(),
        }),
        (_, https) => Ok(https.is_some()),
    }
}

fn half_cert(given: &'static str, missing: &'static str) -> EtcdAuthError {
    EtcdAuthError::HalfAClientCert { given, missing }
}

fn half_user(given: &'static str, missing: &'static str) -> EtcdAuthError {
    EtcdAuthError::HalfAUser { given, missing }
}

/// The PEM block a file must hold, by its flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pem {
    /// At least one `CERTIFICATE` (`--etcd-ca`, `--etcd-cert`).
    Certificate,
    /// A `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` (`--etcd-key`).
    PrivateKey,
}

/// Checks that `text`, read from `path` for `flag`, holds the PEM block `kind`: a
/// wrong file (a key given as the certificate, a DER file) is named at start-up
/// instead of failing the TLS handshake later with a vaguer message.
pub(super) fn check_pem(
    flag: &'static str,
    path: &Path,
    text: &[u8],
    kind: Pem,
) -> Result<(), EtcdAuthError> {
    let text = String::from_utf8_lossy(text);
    let found = text.lines().any(|line| {
        let Some(label) = line
            .trim_end()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            return false;
        };
        match kind {
            Pem::Certificate => label == "CERTIFICATE",
            Pem::PrivateKey => label.ends_with("PRIVATE KEY") && !label.contains("ENCRYPTED"),
        }
    });
    if found {
        return Ok(());
    }
    let reason = match kind {
        Pem::Certificate => "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        Pem::PrivateKey if text.contains("ENCRYPTED PRIVATE KEY") => {
            "the private key is encrypted: give an unencrypted PEM key"
        }
        Pem::PrivateKey => "holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
    };
    Err(EtcdAuthError::Content {
        flag,
        path: path.to_owned(),
        reason,
    })
}

/// The password in a password file's `text`: all of it but one trailing newline
/// (`\n` or `\r\n`, as editors and `echo` leave); `None` if that is empty.
pub(super) fn password(text: &str) -> Option<&str> {
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(urls: &[&str]) -> Vec<String> {
        urls.iter().map(|u| (*u).to_owned()).collect()
    }

    fn tls() -> EtcdAuthSettings {
        EtcdAuthSettings {
            ca: Some("/pki/ca.crt".into()),
            cert: Some("/pki/client.crt".into()),
            key: Some("/pki/client.key".into()),
            username: Some("tweed".into()),
            password_file: Some("/etc/tweed/etcd-password".into()),
        }
    }

    #[test]
    fn nothing_given_is_plain_http_or_no_etcd() {
        let none = EtcdAuth::check(&[], EtcdAuthSettings::default()).unwrap();
        assert_eq!(none, EtcdAuth::default());
        let plain = EtcdAuth::check(
            &endpoints(&["http://a:2379", "http://b:2379"]),
            EtcdAuthSettings::default(),
        )
        .unwrap();
        assert!(!plain.uses_tls());
        assert_eq!(plain.describe(), "plain http");
    }

    #[test]
    fn https_with_everything_keeps_everything() {
        let auth = EtcdAuth::check(&endpoints(&["https://10.0.0.1:2379"]), tls()).unwrap();
        assert_eq!(auth.ca, Some(PathBuf::from("/pki/ca.crt")));
        assert_eq!(
            auth.client_cert,
            Some(ClientCert {
                cert: "/pki/client.crt".into(),
                key: "/pki/client.key".into()
            })
        );
        assert_eq!(auth.user.as_ref().unwrap().name, "tweed");
        assert_eq!(auth.describe(), "tls, client cert, user tweed");
        let ca_only = EtcdAuthSettings {
            ca: Some("/pki/ca.crt".into()),
            ..Default::default()
        };
        let auth = EtcdAuth::check(&endpoints(&["https://e:2379"]), ca_only).unwrap();
        assert_eq!(auth.describe(), "tls");
    }

    #[test]
    fn a_user_over_plain_http_is_allowed() {
        let user = EtcdAuthSettings {
            username: Some("tweed".into()),
            password_file: Some("/p".into()),
            ..Default::default()
        };
        let auth = EtcdAuth::check(&endpoints(&["http://e:2379"]), user).unwrap();
        assert_eq!(auth.describe(), "plain http, user tweed");
    }

    #[test]
    fn endpoints_need_one_explicit_scheme() {
        let err = EtcdAuth::check(&endpoints(&["10.0.0.1:2379"]), Default::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "etcd endpoint \"10.0.0.1:2379\": write the scheme, http://HOST:PORT or https://HOST:PORT"
        );
        let err =
            EtcdAuth::check(&endpoints(&["https://a:2379", "http://b:2379"]), tls()).unwrap_err();
        assert!(
            matches!(err, EtcdAuthError::MixedSchemes { ref http, .. } if http == "http://b:2379"),
            "{err}"
        );
    }

    #[test]
    fn tls_settings_over_http_name_the_flag_and_the_endpoint() {
        for (settings, flag) in [
            (tls(), "etcd-ca"),
            (
                EtcdAuthSettings {
                    cert: Some("c".into()),
                    key: Some("k".into()),
                    ..Default::default()
                },
                "etcd-cert",
            ),
        ] {
            let err = EtcdAuth::check(&endpoints(&["http://e:2379"]), settings).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "--{flag} is for TLS, but the etcd endpoint http://e:2379 is plain http://: write https:// or drop --{flag}"
                )
            );
        }
    }

    #[test]
    fn https_without_a_ca_points_at_kubeadms() {
        let settings = EtcdAuthSettings { ca: None, ..tls() };
        let err = EtcdAuth::check(&endpoints(&["https://e:2379"]), settings).unwrap_err();
        assert!(matches!(err, EtcdAuthError::HttpsWithoutCa { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("--etcd-ca, the CA that signed etcd's server certificate"),
            "{err}"
        );
    }

    #[test]
    fn halves_name_what_is_missing() {
        let https = endpoints(&["https://e:2379"]);
        let cases = [
            (
                EtcdAuthSettings { key: None, ..tls() },
                "--etcd-cert needs --etcd-key",
            ),
            (
                EtcdAuthSettings {
                    cert: None,
                    ..tls()
                },
                "--etcd-key needs --etcd-cert",
            ),
            (
                EtcdAuthSettings {
                    password_file: None,
                    ..tls()
                },
                "--etcd-username needs --etcd-password-file",
            ),
            (
                EtcdAuthSettings {
                    username: None,
                    ..tls()
                },
                "--etcd-password-file needs --etcd-username",
            ),
            (
                EtcdAuthSettings {
                    username: Some(String::new()),
                    ..tls()
                },
                "--etcd-username is empty",
            ),
        ];
        for (settings, message) in cases {
            let err = EtcdAuth::check(&https, settings).unwrap_err();
            assert!(err.to_string().starts_with(message), "{err}");
        }
    }

    #[test]
    fn etcd_settings_without_endpoints_are_refused() {
        let err = EtcdAuth::check(&[], tls()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--etcd-ca is a setting for etcd, but no --etcd-endpoints are given"
        );
        let user_only = EtcdAuthSettings {
            username: Some("u".into()),
            ..Default::default()
        };
        assert!(matches!(
            EtcdAuth::check(&[], user_only),
            Err(EtcdAuthError::NoEndpoints {
                flag: "etcd-username"
            })
        ));
    }

    #[test]
    fn pem_files_are_checked_for_their_block() {
        let cert = b"subject=CN=x\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = b"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
        let p = Path::new("/f");
        assert!(check_pem("etcd-ca", p, cert, Pem::Certificate).is_ok());
        assert!(check_pem("etcd-key", p, key, Pem::PrivateKey).is_ok());
        assert!(
            check_pem(
                "etcd-key",
                p,
                b"-----BEGIN PRIVATE KEY-----\r\n",
                Pem::PrivateKey
            )
            .is_ok()
        );
        let err = check_pem("etcd-cert", p, key, Pem::Certificate).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--etcd-cert /f: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        let err = check_pem("etcd-key", p, cert, Pem::PrivateKey).unwrap_err();
        assert!(err.to_string().contains("no PEM private key"), "{err}");
        let encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n";
        let err = check_pem("etcd-key", p, encrypted, Pem::PrivateKey).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
        let der = [0x30, 0x82, 0x01, 0x0a];
        assert!(check_pem("etcd-ca", p, &der, Pem::Certificate).is_err());
    }

    #[test]
    fn a_password_file_loses_one_trailing_newline() {
        assert_eq!(password("s3cret\n"), Some("s3cret"));
        assert_eq!(password("s3cret\r\n"), Some("s3cret"));
        assert_eq!(password("s3cret"), Some("s3cret"));
        assert_eq!(password(" two words \n\n"), Some(" two words \n"));
        assert_eq!(password("\n"), None);
        assert_eq!(password(""), None);
    }
}
