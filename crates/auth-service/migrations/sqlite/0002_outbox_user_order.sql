-- The relay holds an event back while an earlier one of its user is unpublished (SPEC §6:
-- in order per user); this index answers that question without scanning the user's history.
CREATE INDEX outbox_user_pending_idx ON outbox (user_id, seq) WHERE published_at IS NULL;
