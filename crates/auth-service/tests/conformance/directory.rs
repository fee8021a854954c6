//! Roles, territories, memberships and territory roles in tokens (being written).
