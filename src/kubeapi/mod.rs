//! A fake Kubernetes API server for the tests: what the tweed daemon's
//! kube-rs watchers and the real `kubectl` talk to, since no kube-apiserver
//! can run here. Test harness only, never part of the product.
//!
//! Real (the semantics a client depends on): discovery in the legacy form;
//! list with one global resourceVersion (etcd's revision) and items without
//! kind/apiVersion; watch as chunked newline-delimited events (ADDED,
//! MODIFIED, DELETED, BOOKMARK, ERROR) from a resourceVersion, with ADDED
//! for existing objects when none is given, selector enter/leave as
//! ADDED/DELETED, and 410 Expired (an ERROR event in a 200 response) from a
//! version older than the compaction point; label selectors (equality and
//! set-based) and field selectors on any dotted path; server-set uid,
//! resourceVersion, creationTimestamp, generation; the
//! `kubernetes.io/metadata.name` namespace label; 409 AlreadyExists and
//! Conflict, 404 NotFound, 400/422 as `Status` objects; no-op writes make no
//! version; the `/status` subresource of pods, nodes, namespaces, services;
//! namespace deletion deletes what is in it.
//!
//! Simplified: a strategic merge patch is applied as a JSON merge patch (a
//! list replaces the whole list; `$` directives are dropped), while merge
//! (RFC 7386) and JSON (RFC 6902) patches are real; server-side apply
//! (`apply-patch+yaml`) is a merge patch that creates a missing object, with
//! no field ownership; no authentication or authorization, no admission, no
//! field validation or defaulting (a Pod gets no status, no phase); deletes
//! are immediate (no graceful deletion, no finalizers, no garbage collection
//! beyond namespaces); tweed.dev resources are served whether or not their
//! CRD was created, and have no status subresource; no pagination (`limit`
//! is ignored, everything comes in one page); `resourceVersionMatch` is
//! ignored and a list always answers with the current state; lists are JSON
//! only (no `as=Table`, so `kubectl get` prints NAME and AGE).
//!
//! Layout: [`resources`] (the table), [`store`] (objects, versions, event
//! log; tested in `store_tests.rs`), [`select`], [`patch`], [`watch`]
//! (events as a watch sees them), [`discovery`], [`route`], [`status`]
//! (errors), [`stamp`] (uid, time) are pure and unit-tested; [`wire`] is
//! HTTP/1.1 framing; [`server`] (the state connections share), [`handlers`],
//! [`stream`], [`dispatch`] (one request routed and answered) and [`http`]
//! (the accept loops) serve (tested end to end through `dispatch::handle` in
//! `server_tests.rs`);
//! [`stats`] is what the admin route reports; [`process`] runs the binary
//! from a test and [`client`] is how it calls the unix socket.
//!
//! kubectl needs `--validate=false` for `apply` and `create`: the fake
//! serves no OpenAPI documents, which client-side validation downloads.
//! Bodies are JSON (or YAML); kubectl's generator commands (`create
//! namespace`, `create deployment`, ...) send protobuf, which gets 415
//! UnsupportedMediaType: write the object and `apply -f` it. `get` (also
//! `-w`, `-l`, `--field-selector`), `apply -f`, `create -f`, `label`,
//! `annotate`, `delete`, `run` work.

pub mod client;
pub mod discovery;
pub mod dispatch;
pub mod handlers;
pub mod http;
pub mod patch;
pub mod process;
pub mod resources;
pub mod route;
pub mod select;
pub mod server;
pub mod stamp;
pub mod stats;
pub mod status;
pub mod store;
pub mod stream;
pub mod watch;
pub mod wire;

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod store_tests;
