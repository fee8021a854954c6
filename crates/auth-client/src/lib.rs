//! Verify auth-service access tokens in another service (SPEC §8).
