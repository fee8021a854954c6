//! The audit log API and `users import` (being written).
