"""Every metric object of mergequeue (docs/operations.md section 4).

The Flask-era names are kept exactly; the rest use the `mergequeue_`/`arq_` prefixes.
Metric objects live in prometheus_client's default registry, the only global state the
service keeps. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) prometheus_client stores
values in files instead; gauges say how their per-process values combine.

Gauges that only one process sets carry a label, so a process that never sets them exports
no misleading zero sample.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The `_created` series double every counter and histogram and no dashboard uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- HTTP (names and labels from prometheus_flask_exporter; `path` is a route template) ---

HTTP_REQUEST_DURATION = Histogram(
    "flask_http_request_duration_seconds",
    "Flask HTTP request duration in seconds",
    ["method", "path", "status"],
)
HTTP_REQUEST_TOTAL = Counter(
    "flask_http_request_total",
    "Total number of HTTP requests",
    ["method", "status"],
)
HTTP_REQUEST_EXCEPTIONS = Counter(
    "flask_http_request_exceptions_total",
    "Total number of HTTP requests which resulted in an exception",
    ["method", "status"],
)

# --- GitHub ---------------------------------------------------------------------------

GITHUB_API_CALL_LATENCY = Histogram(
    "github_api_call_latency",
    "GitHub API call latency in seconds, by route template and outcome",
    ["method", "endpoint", "status"],
)
GITHUB_WEBHOOK_LATENCY = Histogram(
    "github_webhook_latency",
    "Time from receiving a GitHub webhook to answering it, in seconds",
    ["event"],
)
GITHUB_RATE_LIMIT_REMAINING = Gauge(
    "mergequeue_github_rate_limit_remaining",
    "GitHub API requests remaining in the current rate-limit window",
    ["installation"],
    multiprocess_mode="mostrecent",
)

# --- GraphQL --------------------------------------------------------------------------

GRAPHQL_REQUESTS = Counter(
    "graphql_requests_total",
    "GraphQL requests by operation name and outcome",
    ["operation_name", "status"],
)

# --- Database -------------------------------------------------------------------------

DB_QUERY_LATENCY = Histogram(
    "sqlalchemy_query_latency_seconds",
    "SQL query latency in seconds (failed queries included)",
    ["operation"],
)

# --- Worker (arq) ---------------------------------------------------------------------

JOBS = Counter(
    "arq_jobs_total",
    "arq jobs finished, by function and outcome (success, failure, retry, cancelled)",
    ["function", "outcome"],
)
JOB_DURATION = Histogram(
    "arq_job_duration_seconds",
    "arq job run time in seconds, by function",
    ["function"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
ARQ_QUEUE_DEPTH = Gauge(
    "arq_queue_depth",
    "Jobs in the arq queue in Redis (waiting, deferred or running)",
    ["queue"],
    multiprocess_mode="mostrecent",
)

# --- The merge queue ------------------------------------------------------------------

QUEUE_DEPTH = Gauge(
    "mergequeue_queue_depth",
    "Pull requests waiting in a repository's merge queue",
    ["repository"],
    multiprocess_mode="mostrecent",
)
# 1 while merging is paused on purpose (the API, the dashboard), 0 otherwise: lets the
# "queue not moving" alert tell a pause from a stuck queue.
QUEUE_PAUSED = Gauge(
    "mergequeue_queue_paused",
    "1 while a repository's merge queue is paused, 0 otherwise",
    ["repository"],
    multiprocess_mode="mostrecent",
)
MERGES = Counter(
    "mergequeue_merges_total",
    "Pull requests merged by the queue",
    ["repository"],
)
DEQUEUES = Counter(
    "mergequeue_dequeues_total",
    "Pull requests removed from the queue without merging, by reason",
    ["repository", "reason"],
)
TIME_TO_MERGE = Histogram(
    "mergequeue_time_to_merge_seconds",
    "Time from enqueue to merge in seconds",
    ["repository"],
    buckets=(10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)
BUILDS_IN_FLIGHT = Gauge(
    "mergequeue_builds_in_flight",
    "Parallel mode: staging builds being tested for a repository",
    ["repository"],
    multiprocess_mode="mostrecent",
)
BUILDS = Counter(
    "mergequeue_builds_total",
    "Parallel mode: staging builds that ended, by outcome "
    "(passed, failed, timed_out, obsolete, conflict)",
    ["repository", "outcome"],
)
BATCH_SIZE = Histogram(
    "mergequeue_batch_size",
    "Parallel mode: pull requests in a staging build when it starts",
    ["repository"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 20),
)
BISECTIONS = Counter(
    "mergequeue_bisections_total",
    "Parallel mode: failed batches split in halves to find the failing pull request",
    ["repository"],
)
FLAKY_FAILURES = Counter(
    "mergequeue_flaky_failures_total",
    "Parallel mode: a required check's failures on staging builds that a later build "
    "holding the same changes contradicted by passing",
    ["repository", "check"],
)
LANDINGS = Counter(
    "mergequeue_landings_total",
    "Parallel mode: times the base branch was moved to a tested staging commit",
    ["repository"],
)
WEBHOOK_INBOX_PENDING = Gauge(
    "mergequeue_webhook_inbox_pending",
    "Webhook deliveries stored but not yet processed",
    ["state"],
    multiprocess_mode="mostrecent",
)
# reason: `unusable` (parked at once: it can never be processed) or `gave_up` (its
# processing failed MAX_ATTEMPTS times). Listed with their errors at
# GET /api/v1/deliveries/failed.
WEBHOOK_DELIVERIES_PARKED = Counter(
    "mergequeue_webhook_deliveries_parked_total",
    "Webhook deliveries parked as failed, by reason",
    ["reason"],
)
# Labelled, like every metric here: a label-less counter is created at import, which the
# multiprocess mode of `uvicorn --workers N` cannot do before its directory is set up.
# reason: `missed` (no attempt got a 2xx, or the database never stored it).
WEBHOOK_REDELIVERIES_REQUESTED = Counter(
    "mergequeue_webhook_redeliveries_requested_total",
    "Webhook deliveries GitHub was asked to deliver again (they had failed or were never stored)",
    ["reason"],
)
# Each read of a repository's `.github/mergequeue.yml` that found it invalid (a push that
# changed it, the hourly repository discovery, `mergequeue sync`): while an invalid file
# stays on the default branch it counts about once an hour.
CONFIG_FILE_ERRORS = Counter(
    "mergequeue_config_file_errors_total",
    "Reads of a repository's .github/mergequeue.yml that found it invalid (nothing applied)",
    ["repository"],
)
# Attempts to send a notification to a chat's incoming webhook: `sent`, `failed` (to be
# retried with backoff) or `gave_up` (its last attempt failed; recorded in the outbox).
NOTIFICATIONS = Counter(
    "mergequeue_notifications_total",
    "Notification sending attempts, by outcome (sent, failed, gave_up)",
    ["outcome"],
)
BUILD_INFO = Gauge(
    "mergequeue_build_info",
    "Always 1; the version label says which build is running",
    ["version"],
    multiprocess_mode="max",
)
