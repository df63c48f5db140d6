-- Linear write-ups (bot/writeups.py) and the job results they are drafted from.

ALTER TABLE shepherd.linear_drafts
    -- 'ticket': a write-up for `ticket`; 'weekly': a weekly summary (ticket holds the team key or '')
    ADD COLUMN kind         text NOT NULL DEFAULT 'ticket' CHECK (kind IN ('ticket', 'weekly')),
    -- the id the comment is created under (commentCreate input.id): fixed before the first call, so a
    -- post retried after a crash finds its comment instead of making a second one
    ADD COLUMN comment_uuid uuid,
    -- a post in flight (claimed by one click); cleared when it ends, ignored once stale
    ADD COLUMN posting_at   timestamptz,
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error   text,
    ADD COLUMN requester    text,
    ADD COLUMN edited_by    text,
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now(),
    -- the Slack message showing the draft (edited in place when the draft is edited or posted)
    ADD COLUMN message_ts   text;

CREATE INDEX linear_drafts_channel_idx ON shepherd.linear_drafts (channel, created_at DESC);

-- A job's last progress as read from Temporal (BackfillProgress / PurgeProgress as JSON), kept so a
-- write-up can be drafted after the workflow's history is gone.
CREATE TABLE shepherd.job_results (
    job_id   text PRIMARY KEY REFERENCES shepherd.jobs (id) ON DELETE CASCADE,
    progress jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
