//! The gRPC API (SPEC §7) through a real tonic client over a socket: the same rules, limits,
//! audit entries and events as HTTP, errors mapped to gRPC codes, health and reflection.

mod accounts;
mod edge;
mod recovery;
mod tokens;
