//! The gRPC API (SPEC §7) through a real tonic client over a socket.
