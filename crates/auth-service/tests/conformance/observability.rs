//! Observability of the running binary (SPEC §9): metrics that move with a scripted flow, and logs that never carry a secret.
