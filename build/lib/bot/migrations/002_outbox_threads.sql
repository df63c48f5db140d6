-- The outbox learns threads, edits and order (bot/slack/outbox.py, bot/slack/poster.py).

ALTER TABLE shepherd.outbox
    -- dedupe_key of the thread's parent when its ts was not known at enqueue time
    ADD COLUMN thread_key   text,
    -- chat.update: dedupe_key of the message to edit when its ts was not known at enqueue time
    ADD COLUMN ts_key       text,
    -- messages of one lane go out strictly in id order: a channel's top level, or one thread
    ADD COLUMN lane         text NOT NULL DEFAULT '',
    -- the ts Slack gave the message (message_ts for an ephemeral)
    ADD COLUMN ts           text,
    -- 429 answers, counted apart from attempts (they are not failures)
    ADD COLUMN rate_limited integer NOT NULL DEFAULT 0;

CREATE INDEX outbox_lane_idx ON shepherd.outbox (lane, id) WHERE state = 'pending';
CREATE INDEX outbox_channel_ts_idx ON shepherd.outbox (channel, ts) WHERE ts IS NOT NULL;
