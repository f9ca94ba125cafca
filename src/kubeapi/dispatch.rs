//! One request answered: routing to discovery, the resources, a watch
//! stream or the admin routes, and the reply written. Above the server's
//! shared state ([`super::server`]), which the handlers and streams use.

use std::io::{self, Write};
use std::time::Duration;

use serde_json::{Value, json};

use super::discovery;
use super::handlers;
use super::route::{self, Route};
use super::server::{ConnHandle, Server};
use super::status::ApiError;
use super::stream;
use super::wire::{self, Request};

/// Answers one request on `w`. `Ok(false)`: close the connection after it.
pub fn handle(
    server: &Server,
    req: &Request,
    conn: &ConnHandle,
    w: &mut impl Write,
) -> io::Result<bool> {
    let (path, query) = route::split_target(&req.target);
    let answer = match route::route(path) {
        Route::Version => Ok((200, discovery::version())),
        Route::Health => {
            wire::write_response(w, 200, "text/plain", b"ok", req.close)?;
            return Ok(!req.close);
        }
        Route::CoreVersions => Ok((200, discovery::core_versions(&server.config().advertise))),
        Route::Groups => Ok((200, discovery::group_list())),
        Route::Discovery(group, version) => discovery::resource_list(&group, &version)
            .map(|v| (200, v))
            .ok_or_else(|| ApiError::no_route(path)),
        Route::Admin(what) if !conn.tcp => admin(server, &req.method, &what, &query),
        Route::Admin(_) | Route::Unknown => Err(ApiError::no_route(path)),
        Route::Resource {
            res,
            namespace,
            target,
        } => {
            if req.method == "GET" && query.flag("watch") {
                return stream::watch(server, conn, res, namespace, &query, req, w);
            }
            handlers::resource(server, req, res, namespace, target, &query)
        }
    };
    let (code, body) = answer.unwrap_or_else(|e| (e.code, e.to_status()));
    let text = serde_json::to_vec(&body).unwrap_or_default();
    wire::write_response(w, code, "application/json", &text, req.close)?;
    Ok(!req.close)
}

/// The admin routes (unix socket only).
fn admin(
    server: &Server,
    method: &str,
    what: &str,
    query: &route::Query,
) -> Result<(u16, Value), ApiError> {
    match (method, what) {
        ("POST", "drop-watches") => Ok((200, json!({"dropped": server.drop_watches()}))),
        ("POST", "compact") => {
            let (rv, cut) = server.compact();
            Ok((200, json!({"compacted": rv, "dropped": cut})))
        }
        ("POST", "down") => {
            let secs: f64 = query
                .get("seconds")
                .and_then(|s| s.parse().ok())
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| ApiError::bad_request("down needs ?seconds=N"))?;
            let cut = server.go_down(Duration::from_secs_f64(secs));
            Ok((200, json!({"down_seconds": secs, "closed": cut})))
        }
        ("GET", "stats") => {
            let mut stats = server.stats().clone();
            stats.resource_version = server.store().rv();
            Ok((200, serde_json::to_value(stats).unwrap_or_default()))
        }
        (_, "drop-watches" | "compact" | "down" | "stats") => {
            Err(ApiError::method_not_allowed(method))
        }
        _ => Err(ApiError::no_route(&format!("/fake/{what}"))),
    }
}
