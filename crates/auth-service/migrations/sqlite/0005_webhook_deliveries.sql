-- Signed webhooks (SPEC §6): each configured endpoint has its own delivery state, so a dead
-- endpoint holds back neither the broker nor another endpoint. The relay copies each outbox
-- event once ("fans it out") into a delivery row per endpoint that wants its type; the outbox
-- row itself stays the broker's.

-- Events written before this migration are not sent to endpoints configured after it.
ALTER TABLE outbox ADD COLUMN fanned_out INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET fanned_out = 1;
CREATE INDEX outbox_unfanned_idx ON outbox (seq) WHERE NOT fanned_out;

-- One row per (endpoint, event): `endpoint` is the endpoint's configured name; `seq` the
-- outbox row (no foreign key: pruning removes both by age). `done_at` is set once the event
-- was delivered or given up (`outcome` says which); `next_attempt_at` is the lease or retry
-- time while it is not done, as in the outbox.
CREATE TABLE webhook_deliveries (
    endpoint        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    user_id         TEXT,
    occurred_at     TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    done_at         TEXT,
    outcome         TEXT,
    PRIMARY KEY (endpoint, seq)
);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (endpoint, seq) WHERE done_at IS NULL;
CREATE INDEX webhook_deliveries_occurred_idx ON webhook_deliveries (occurred_at);
