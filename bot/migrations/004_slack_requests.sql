-- Signed Slack requests already answered (bot/slack/replay.py): an identical request (same
-- X-Slack-Request-Timestamp and X-Slack-Signature) inside Slack's 5-minute signing window is
-- acknowledged and not run again, whichever serve process it reaches. Rows older than the window
-- are deleted as new ones arrive.
CREATE TABLE IF NOT EXISTS shepherd.slack_requests (
    signature  text        NOT NULL,
    request_ts bigint      NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (signature, request_ts)
);
CREATE INDEX IF NOT EXISTS slack_requests_seen_idx ON shepherd.slack_requests (seen_at);
