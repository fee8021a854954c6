-- The relay now finds, once per claim, the first held (leased or retry-waiting) event of each
-- user among the pending rows, instead of probing each candidate's earlier events of its user;
-- the per-user index of 0002 is no longer read, and every outbox insert paid for it.
DROP INDEX outbox_user_pending_idx;
