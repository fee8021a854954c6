//! The rate limiter on its stores (being written).
