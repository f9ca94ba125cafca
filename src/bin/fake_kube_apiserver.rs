//! `fake-kube-apiserver`: the test suite's stand-in for kube-apiserver (see
//! `tweed_suite::kubeapi`).
//!
//! ```text
//! fake-kube-apiserver [--listen ADDR:PORT] [--socket PATH] [--bookmark-interval-ms MS]
//! ```
//!
//! `--listen` serves the API over TCP (plain HTTP, no auth) for daemons and
//! kubectl; `--socket` serves the same API and the admin routes
//! (`/fake/drop-watches`, `/fake/compact`, `/fake/down?seconds=N`,
//! `/fake/stats`) on a unix socket. It prints `ready` on stdout once both
//! are bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tweed_suite::kubeapi::http;
use tweed_suite::kubeapi::server::{Config, Server};

const USAGE: &str =
    "usage: fake-kube-apiserver [--listen ADDR:PORT] [--socket PATH] [--bookmark-interval-ms MS]";

struct Args {
    listen: Option<SocketAddr>,
    socket: Option<PathBuf>,
    bookmark: Duration,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        listen: None,
        socket: None,
        bookmark: Duration::from_secs(1),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                out.listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--socket" => out.socket = Some(PathBuf::from(value()?)),
            "--bookmark-interval-ms" => {
                let v = value()?;
                let ms: u64 = v
                    .parse()
                    .map_err(|e| format!("--bookmark-interval-ms {v}: {e}"))?;
                out.bookmark = Duration::from_millis(ms.max(1));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if out.listen.is_none() && out.socket.is_none() {
        return Err(format!("give --listen, --socket or both\n{USAGE}"));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let advertise = args
        .listen
        .map_or_else(|| "localhost".to_owned(), |a| a.to_string());
    let server = Server::new(Config {
        bookmark_interval: args.bookmark,
        advertise,
    });
    let tcp = match args
        .listen
        .map(|a| http::bind_tcp(a).map(|l| (a, l)))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fake-kube-apiserver: listen on {:?}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let unix = match args.socket.as_deref().map(http::bind_unix).transpose() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("fake-kube-apiserver: bind {:?}: {e}", args.socket);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "fake-kube-apiserver: serving on {:?} and {:?}",
        args.listen, args.socket
    );
    println!("ready");
    let mut threads = Vec::new();
    if let Some(l) = unix {
        let server = server.clone();
        threads.push(std::thread::spawn(move || http::serve_unix(server, l)));
    }
    if let Some((addr, l)) = tcp {
        threads.push(std::thread::spawn(move || http::serve_tcp(server, addr, l)));
    }
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}
