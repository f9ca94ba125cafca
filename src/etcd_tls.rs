//! TLS and authentication for a test's etcd, made with the tools an operator
//! uses: certificates from the `openssl` CLI, users and roles from `etcdctl`
//! (Debian's `etcd-client`).
//!
//! [`Pki::create`] writes, into a directory of the test's own, a CA, a server
//! certificate for etcd naming its IP, a client certificate signed by the CA,
//! and a second CA that signed nothing here (for a "wrong CA" test). Keys are
//! EC P-256: openssl makes each in milliseconds. The server certificate is
//! for client authentication too: etcd's HTTP gateway dials its own client
//! port with it. The certificates live two
//! days, so a clock a little off does not matter.
//!
//! [`AUTH_SETUP`] is the `etcdctl` sequence that turns authentication on: a
//! root user (etcd needs one first), a `tweed` role with read-write on one
//! prefix, a `tweed` user holding it.
//!
//! Only `std` here: `control/tests/store_suite.rs` includes this file as a
//! module of its own, having no access to this crate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's `openssl` CLI.
pub const OPENSSL: &str = "/usr/bin/openssl";
/// Debian's `etcdctl` (package `etcd-client`).
pub const ETCDCTL: &str = "/usr/bin/etcdctl";
/// The user tweed authenticates as.
pub const USER: &str = "tweed";
/// Its password, as its password file holds it (with a newline, as `echo` writes).
pub const PASSWORD_FILE_TEXT: &str = "tweed-test-secret\n";
/// etcd's root user's password (etcdctl only uses it before auth is on).
const ROOT_PASSWORD: &str = "tweed-test-root";

/// A CA, etcd's server certificate, a client certificate, and an unrelated CA,
/// as PEM files in one directory (the caller's, which it removes).
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// The openssl config for the CA (its extensions) and the requests (none).
const OPENSSL_CNF: &str = "[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
";

impl Pki {
    /// Makes everything in `dir` (created if missing) for an etcd listening on
    /// `server_ip`. Panics with openssl's output if a step fails.
    pub fn create(dir: &Path, server_ip: IpAddr) -> Self {
        assert!(
            Path::new(OPENSSL).is_file(),
            "{OPENSSL} is not installed (apt-get install openssl)"
        );
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let pki = Pki {
            dir: dir.to_owned(),
        };
        write(&pki.file("openssl.cnf"), OPENSSL_CNF);
        pki.make_ca("ca", "tweed-test-ca");
        pki.make_ca("other-ca", "tweed-test-other-ca");
        pki.issue(
            "server",
            "etcd",
            &format!(
                "subjectAltName = IP:{server_ip}\nextendedKeyUsage = serverAuth,clientAuth\nkeyUsage = critical,digitalSignature\n"
            ),
            2,
        );
        pki.issue(
            "client",
            "tweed-test-client",
            "extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature\n",
            3,
        );
        write(&pki.password_file(), PASSWORD_FILE_TEXT);
        write(&pki.file("wrong-password"), "not-the-password\n");
        pki
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn path(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }

    fn make_ca(&self, name: &str, cn: &str) {
        let (key, crt) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.crt")),
        );
        let subject = format!("/CN={cn}");
        let cnf = self.path("openssl.cnf");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-noenc",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subject,
            "-config",
            &cnf,
            "-extensions",
            "ca",
        ]);
    }

    /// A key and a certificate `name.{key,crt}` with `extensions`, signed by the CA.
    fn issue(&self, name: &str, cn: &str, extensions: &str, serial: u32) {
        let (key, crt) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.crt")),
        );
        let (csr, ext) = (
            self.path(&format!("{name}.csr")),
            self.path(&format!("{name}.ext")),
        );
        write(Path::new(&ext), extensions);
        let subject = format!("/CN={cn}");
        let cnf = self.path("openssl.cnf");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-noenc",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
            "-config",
            &cnf,
        ]);
        let (ca, ca_key, serial) = (self.path("ca.crt"), self.path("ca.key"), serial.to_string());
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ]);
    }

    /// The CA that signed etcd's and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.file("ca.crt")
    }

    /// A CA that signed neither.
    pub fn other_ca(&self) -> PathBuf {
        self.file("other-ca.crt")
    }

    /// The client certificate.
    pub fn client_cert(&self) -> PathBuf {
        self.file("client.crt")
    }

    /// The client certificate's key.
    pub fn client_key(&self) -> PathBuf {
        self.file("client.key")
    }

    /// A file holding [`USER`]'s password.
    pub fn password_file(&self) -> PathBuf {
        self.file("password")
    }

    /// A file holding another password.
    pub fn wrong_password_file(&self) -> PathBuf {
        self.file("wrong-password")
    }

    /// etcd's flags for TLS on its client URLs with client certificates required.
    pub fn etcd_server_args(&self) -> Vec<String> {
        [
            ("--cert-file", self.file("server.crt")),
            ("--key-file", self.file("server.key")),
            ("--trusted-ca-file", self.ca()),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
        .chain(["--client-cert-auth".to_owned()])
        .collect()
    }

    /// `etcdctl`'s flags to reach that etcd with the client certificate.
    pub fn etcdctl_args(&self, endpoint: &str) -> Vec<String> {
        [
            ("--endpoints", endpoint.to_owned()),
            ("--cacert", self.ca().display().to_string()),
            ("--cert", self.client_cert().display().to_string()),
            ("--key", self.client_key().display().to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    /// tweed's daemon flags for that etcd: CA, client certificate, user.
    pub fn tweed_args(&self) -> Vec<String> {
        [
            ("--etcd-ca", self.ca().display().to_string()),
            ("--etcd-cert", self.client_cert().display().to_string()),
            ("--etcd-key", self.client_key().display().to_string()),
            ("--etcd-username", USER.to_owned()),
            (
                "--etcd-password-file",
                self.password_file().display().to_string(),
            ),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }
}

/// The `etcdctl` commands (after its connection flags) that turn on
/// authentication with a `tweed` user allowed to read and write keys under
/// `prefix` only; an empty `prefix` allows every key (`--from-key ""`).
pub fn auth_setup(prefix: &str) -> Vec<Vec<String>> {
    let password = PASSWORD_FILE_TEXT.trim_end();
    let range = if prefix.is_empty() {
        "--from-key"
    } else {
        "--prefix=true"
    };
    [
        vec![
            "user",
            "add",
            &format!("root:{ROOT_PASSWORD}"),
            "--interactive=false",
        ],
        vec!["user", "grant-role", "root", "root"],
        vec!["role", "add", USER],
        vec!["role", "grant-permission", USER, range, "readwrite", prefix],
        vec![
            "user",
            "add",
            &format!("{USER}:{password}"),
            "--interactive=false",
        ],
        vec!["user", "grant-role", USER, USER],
        vec!["auth", "enable"],
    ]
    .into_iter()
    .map(|command| command.into_iter().map(str::to_owned).collect())
    .collect()
}

fn openssl(args: &[&str]) {
    let output = Command::new(OPENSSL)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {OPENSSL}: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
