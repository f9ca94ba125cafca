//! The connection-rate workload's two ends, run as a hidden subcommand of
//! `tweed` inside the pods' namespaces (`tweed bench-conn serve|connect`):
//! each connection is a connect, one byte each way and a close (the server
//! closes first, so the client's ports never pile up in TIME_WAIT).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::parse::ConnReport;

/// How long one connection may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// `tweed bench-conn` (hidden; `tweed bench` runs it in the pods).
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Which end.
    #[command(subcommand)]
    pub end: ConnEnd,
}

/// The two ends.
#[derive(Subcommand, Debug, Clone)]
pub enum ConnEnd {
    /// Accept connections: read a byte, answer a byte, close. Runs until killed.
    Serve {
        /// The address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Accepting threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Open connections for a while and print `connections N seconds S failures F`.
    Connect {
        /// The server.
        #[arg(long)]
        to: SocketAddr,
        /// How long.
        #[arg(long)]
        seconds: u32,
        /// Connections in flight at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
}

/// Runs one end; the error names the step.
pub fn run(args: &ConnArgs) -> Result<(), String> {
    match args.end {
        ConnEnd::Serve { listen, threads } => serve(listen, threads),
        ConnEnd::Connect {
            to,
            seconds,
            parallel,
        } => {
            let report = connect(to, Duration::from_secs(u64::from(seconds)), parallel);
            println!("{}", report.line());
            Ok(())
        }
    }
}

fn serve(listen: SocketAddr, threads: usize) -> Result<(), String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("listen on {listen}: {e}"))?;
    let listener = Arc::new(listener);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let l = listener.clone();
            std::thread::spawn(move || {
                loop {
                    if let Ok((s, _)) = l.accept() {
                        answer(s);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn answer(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(CONNECT_TIMEOUT));
    let mut byte = [0u8; 1];
    if s.read_exact(&mut byte).is_ok() {
        let _ = s.write_all(&byte);
    }
    let _ = s.shutdown(Shutdown::Both);
}

fn connect(to: SocketAddr, duration: Duration, parallel: usize) -> ConnReport {
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let threads: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let failed = failed.clone();
            std::thread::spawn(move || {
                // Each completed connection's connect time, in microseconds.
                let mut connects = Vec::new();
                while Instant::now() < deadline {
                    match once(to) {
                        Ok(took) => connects.push(took.as_micros() as u64),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                connects
            })
        })
        .collect();
    let mut connects: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    ConnReport {
        connections: connects.len() as u64,
        seconds: start.elapsed().as_secs_f64(),
        failures: failed.load(Ordering::Relaxed),
        connect_p99_us: super::stats::percentile(&mut connects, 99),
    }
}

/// One connection: connect, a byte out, a byte back, the server's close;
/// how long the connect took.
fn once(to: SocketAddr) -> std::io::Result<Duration> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)?;
    let took = started.elapsed();
    s.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    s.set_nodelay(true)?;
    s.write_all(b"x")?;
    let mut byte = [0u8; 1];
    s.read_exact(&mut byte)?;
    // Wait for the server's FIN: it closes first and keeps the TIME_WAIT.
    let _ = s.read(&mut byte)?;
    Ok(took)
}
