//! The tables workers read without locks.
//!
//! Every table here is either an immutable value published by swapping an
//! `Arc` (routes, endpoints, peers, policy) or a structure whose readers never
//! wait for its writers (connection tracking).

pub mod acl;
pub mod conntrack;
pub mod endpoints;
pub mod fragments;
pub mod lpm;
pub mod nexthop;
pub mod peers;
pub mod service;
pub mod tables;
pub mod translations;
