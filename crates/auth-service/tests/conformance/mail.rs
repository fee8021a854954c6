//! Mail transports (being written).
