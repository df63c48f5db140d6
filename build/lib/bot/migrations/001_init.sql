-- Shepherd's bot state. Applied once by bot.adapters.postgres.apply_migrations, in one transaction.

CREATE SCHEMA IF NOT EXISTS shepherd;

-- One row per job (a backfill, a purge or a verification). id is the short id people type: b-7f3a2c.
CREATE TABLE shepherd.jobs (
    id          text PRIMARY KEY CHECK (id <> ''),
    kind        text NOT NULL CHECK (kind IN ('backfill', 'purge', 'verify')),
    state       text NOT NULL,
    requester   text NOT NULL,
    channel     text,
    plan_hash   text,
    plan        jsonb,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    workflow_id text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    error       text
);
CREATE INDEX jobs_unfinished_idx ON shepherd.jobs (created_at) WHERE finished_at IS NULL;
CREATE INDEX jobs_state_idx ON shepherd.jobs (state);
CREATE INDEX jobs_kind_created_idx ON shepherd.jobs (kind, created_at DESC);

-- Approve/reject decisions, bound to the plan hash they were given for; one per person per job.
CREATE TABLE shepherd.approvals (
    id         bigserial PRIMARY KEY,
    job_id     text NOT NULL REFERENCES shepherd.jobs (id) ON DELETE CASCADE,
    approver   text NOT NULL,
    decision   text NOT NULL CHECK (decision IN ('approve', 'reject')),
    plan_hash  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, approver)
);

-- Everything said and done: who, what, when, the plan hash, the outcome.
CREATE TABLE shepherd.audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text,
    plan_hash text,
    outcome   text,
    details   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON shepherd.audit_log (at);
CREATE INDEX audit_log_target_idx ON shepherd.audit_log (target, at);

-- The monitor's readings per window (or chunk) of a job.
CREATE TABLE shepherd.progress_samples (
    id         bigserial PRIMARY KEY,
    job_id     text NOT NULL REFERENCES shepherd.jobs (id) ON DELETE CASCADE,
    window_key text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    done       bigint NOT NULL DEFAULT 0,
    total      bigint,
    state      text
);
CREATE INDEX progress_samples_job_idx ON shepherd.progress_samples (job_id, window_key, at DESC);

-- The Slack messages a job owns (the status message it edits in place, its thread root ...).
CREATE TABLE shepherd.job_messages (
    job_id     text NOT NULL REFERENCES shepherd.jobs (id) ON DELETE CASCADE,
    purpose    text NOT NULL,
    channel    text NOT NULL,
    ts         text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, purpose)
);

-- Events already posted to a job's thread, so a restarted monitor never posts one twice.
CREATE TABLE shepherd.events_posted (
    job_id    text NOT NULL REFERENCES shepherd.jobs (id) ON DELETE CASCADE,
    event_key text NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, event_key)
);

-- Slack calls queued until Slack accepted them (the poster drains it; dedupe_key makes enqueue idempotent).
CREATE TABLE shepherd.outbox (
    id              bigserial PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    channel         text,
    thread_ts       text,
    method          text NOT NULL,
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    result          jsonb
);
CREATE INDEX outbox_due_idx ON shepherd.outbox (next_attempt_at, id) WHERE state = 'pending';

-- Which job holds a (cluster, customer): two jobs never work on the same data at once.
CREATE TABLE shepherd.locks (
    cluster     text NOT NULL,
    customer    text NOT NULL,
    job_id      text NOT NULL REFERENCES shepherd.jobs (id) ON DELETE CASCADE,
    workflow_id text,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, customer)
);
CREATE INDEX locks_job_idx ON shepherd.locks (job_id);

-- Linear write-ups drafted into a thread, and the comment they became once posted.
CREATE TABLE shepherd.linear_drafts (
    id          bigserial PRIMARY KEY,
    ticket      text NOT NULL,
    job_ids     text[] NOT NULL DEFAULT '{}',
    markdown    text NOT NULL,
    channel     text,
    thread_ts   text,
    comment_id  text,
    comment_url text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    posted_at   timestamptz
);
CREATE INDEX linear_drafts_ticket_idx ON shepherd.linear_drafts (ticket, created_at DESC);
