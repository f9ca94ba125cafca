//! A watch: a chunked response of newline-delimited events that follows the
//! store until `timeoutSeconds`, the client leaves, or the server cuts it.
//!
//! Without a resourceVersion (or with "0") it starts with ADDED for every
//! selected object; from a version older than the compaction point it sends
//! one ERROR event (410 Expired) and ends, as the real server does. With
//! `allowWatchBookmarks` it sends a BOOKMARK every bookmark interval (and
//! right after the initial events when `sendInitialEvents=true`).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::handlers::filter;
use super::resources::RESOURCES;
use super::route::Query;
use super::server::{ConnHandle, Server};
use super::stats::Stats;
use super::status::ApiError;
use super::watch;
use super::wire::{self, Request};

/// The longest watch when the client names no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn line(event: &Value) -> Vec<u8> {
    let mut text = serde_json::to_vec(event).unwrap_or_default();
    text.push(b'\n');
    text
}

/// Decrements the open-watch count and clears the connection's mark on any
/// way out.
struct Open<'a> {
    server: &'a Server,
    conn: &'a ConnHandle,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.server.stats().watches_open -= 1;
        self.server.set_watching(self.conn, false);
    }
}

/// Serves a watch on `w`. `Ok(keep_alive)` after a normal end; `Err` when
/// the connection broke or was cut.
pub fn watch(
    server: &Server,
    conn: &ConnHandle,
    res: usize,
    namespace: Option<String>,
    query: &Query,
    req: &Request,
    w: &mut impl Write,
) -> io::Result<bool> {
    let r = &RESOURCES[res];
    let early = |w: &mut dyn Write, e: ApiError| -> io::Result<bool> {
        let body = serde_json::to_vec(&e.to_status()).unwrap_or_default();
        wire::write_response(&mut &mut *w, e.code, "application/json", &body, req.close)?;
        Ok(!req.close)
    };
    let filter = match filter(namespace, query) {
        Ok(f) => f,
        Err(e) => return early(w, e),
    };
    let from = match query.get("resourceVersion").unwrap_or("") {
        "" | "0" => None,
        v => match v.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return early(
                    w,
                    ApiError::bad_request(format!("invalid resourceVersion {v:?}")),
                );
            }
        },
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let deadline = Instant::now() + timeout;
    let bookmarks = query.flag("allowWatchBookmarks");
    let interval = server.config().bookmark_interval;

    {
        let mut stats = server.stats();
        Stats::count(&mut stats.watches, r.plural);
        stats.watches_open += 1;
    }
    server.set_watching(conn, true);
    let _open = Open { server, conn };

    // The first batch: the initial ADDEDs, or the events since `from`, or
    // the 410; taken under one lock so nothing falls between it and `cursor`.
    let mut out = Vec::new();
    let mut cursor;
    {
        let store = server.store();
        match from {
            None => {
                for item in store.list(res, &filter).0 {
                    out.extend(line(&watch::added(&item)));
                }
                cursor = store.rv();
                if bookmarks && query.flag("sendInitialEvents") {
                    out.extend(line(&watch::bookmark(r, cursor)));
                }
            }
            Some(from) => match store.events_after(res, from) {
                Ok(events) => {
                    for ev in events {
                        if let Some(v) = watch::view(ev, &filter) {
                            out.extend(line(&v));
                        }
                    }
                    cursor = store.rv().max(from);
                }
                Err(e) => {
                    drop(store);
                    Stats::count(&mut server.stats().expired, r.plural);
                    wire::write_chunked_head(w, 200, "application/json")?;
                    wire::write_chunk(w, &line(&watch::error(e.to_status())))?;
                    wire::write_last_chunk(w)?;
                    return Ok(!req.close);
                }
            },
        }
    }
    wire::write_chunked_head(w, 200, "application/json")?;
    wire::write_chunk(w, &out)?;

    let mut next_bookmark = Instant::now() + interval;
    loop {
        let cut = || io::Error::new(io::ErrorKind::ConnectionAborted, "watch cut by the server");
        if conn.aborted() {
            return Err(cut());
        }
        let now = Instant::now();
        if now >= deadline {
            wire::write_last_chunk(w)?;
            return Ok(!req.close);
        }
        if bookmarks && now >= next_bookmark {
            wire::write_chunk(w, &line(&watch::bookmark(r, cursor)))?;
            next_bookmark = now + interval;
        }
        let wake = if bookmarks {
            deadline.min(next_bookmark)
        } else {
            deadline
        };
        let mut out = Vec::new();
        {
            let mut store = server.store();
            while store.rv() <= cursor && !conn.aborted() {
                let now = Instant::now();
                if now >= wake {
                    break;
                }
                store = server.wait_change(store, wake - now);
            }
            if conn.aborted() {
                return Err(cut());
            }
            // Active watches outlive a compaction, as etcd watches do: only
            // starting from a compacted version is refused.
            for ev in store.log_after(res, cursor) {
                if let Some(v) = watch::view(ev, &filter) {
                    out.extend(line(&v));
                }
            }
            cursor = cursor.max(store.rv());
        }
        wire::write_chunk(w, &out)?;
    }
}
