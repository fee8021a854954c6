//! Rate limits and the login lockout (being written).
