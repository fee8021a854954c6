//! Defences at the edge of the server (issue 14): hostile input answered 400 on both databases
//! and both transports, bounded metrics, connections that cannot pin the server, and readiness
//! that tells a soft dependency from a replica that cannot serve.

mod connections;
mod input;
mod readiness;
