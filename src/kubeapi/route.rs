//! Request targets: a path and query parsed into what the server serves.
//! Pure; the HTTP layer dispatches on the result.

use super::resources::{RESOURCES, find};

/// Which part of a resource a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The collection (`.../pods`): list, watch, create.
    Collection,
    /// One object (`.../pods/NAME`).
    Object(String),
    /// Its status subresource (`.../pods/NAME/status`).
    Status(String),
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/api/v1` (group "") or `/apis/GROUP/VERSION`.
    Discovery(String, String),
    /// A resource path.
    Resource {
        /// Index into [`RESOURCES`].
        res: usize,
        /// The namespace in the path, if any.
        namespace: Option<String>,
        /// Collection, object or status.
        target: Target,
    },
    /// `/fake/...`, the admin routes (the rest of the path).
    Admin(String),
    /// Nothing served here.
    Unknown,
}

/// A decoded query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=x%3Dy` (with `+` as space).
    pub fn parse(text: &str) -> Self {
        Self(
            text.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` is `true` or `1`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Percent-decoding, `+` as space; a bad escape stays as it is.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a request target into its path and query.
pub fn split_target(target: &str) -> (&str, Query) {
    match target.split_once('?') {
        Some((path, query)) => (path, Query::parse(query)),
        None => (target, Query::default()),
    }
}

/// What `path` names.
pub fn route(path: &str) -> Route {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["fake", rest @ ..] => Route::Admin(rest.join("/")),
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    if rest.is_empty() {
        return Route::Discovery(group.to_owned(), version.to_owned());
    }
    // `/namespaces/NS/PLURAL/...` when PLURAL is a namespaced resource;
    // otherwise `/PLURAL/...` (which covers `/namespaces/NAME[/status]`).
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if find(group, version, plural).is_some_and(|i| RESOURCES[i].namespaced) =>
        {
            (Some((*ns).to_owned()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let Some(res) = find(group, version, rest[0]) else {
        return Route::Unknown;
    };
    let target = match rest[1..] {
        [] => Target::Collection,
        [name] => Target::Object(name.to_owned()),
        [name, "status"] if RESOURCES[res].status => Target::Status(name.to_owned()),
        _ => return Route::Unknown,
    };
    if RESOURCES[res].namespaced != namespace.is_some() && target != Target::Collection {
        return Route::Unknown;
    }
    Route::Resource {
        res,
        namespace,
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(route: Route) -> (&'static str, Option<String>, Target) {
        match route {
            Route::Resource {
                res,
                namespace,
                target,
            } => (RESOURCES[res].plural, namespace, target),
            other => panic!("not a resource: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(route("/api"), Route::CoreVersions);
        assert_eq!(route("/api/v1"), Route::Discovery("".into(), "v1".into()));
        assert_eq!(
            route("/apis/tweed.dev/v1"),
            Route::Discovery("tweed.dev".into(), "v1".into())
        );
        assert_eq!(
            res(route("/api/v1/pods")),
            ("pods", None, Target::Collection)
        );
        assert_eq!(
            res(route("/api/v1/namespaces/shop/pods/web/status")),
            ("pods", Some("shop".into()), Target::Status("web".into()))
        );
        assert_eq!(
            res(route("/api/v1/namespaces/shop")),
            ("namespaces", None, Target::Object("shop".into()))
        );
        assert_eq!(
            res(route("/api/v1/namespaces/shop/status")),
            ("namespaces", None, Target::Status("shop".into()))
        );
        assert_eq!(
            res(route("/apis/tweed.dev/v1/globalpolicies/g")),
            ("globalpolicies", None, Target::Object("g".into()))
        );
        // A namespaced object needs its namespace in the path.
        assert_eq!(route("/api/v1/pods/web"), Route::Unknown);
        assert_eq!(route("/api/v1/namespaces/a/nodes/n"), Route::Unknown);
        assert_eq!(route("/apis/nope/v1/things"), Route::Unknown);
        // Only resources with a status subresource have one.
        assert_eq!(
            route("/apis/tweed.dev/v1/globalpolicies/g/status"),
            Route::Unknown
        );
        assert_eq!(
            route("/fake/drop-watches"),
            Route::Admin("drop-watches".into())
        );
    }

    #[test]
    fn queries_decode() {
        let (path, q) = split_target("/api/v1/pods?labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1");
        assert_eq!(path, "/api/v1/pods");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
