//! Outgoing mail (being written).
