"""api_sync's metrics in the Prometheus text exposition format (version 0.0.4).

Pure Python: the families and samples, the rendering (HELP and TYPE lines, label and help
escaping, number formatting), the duration buckets, the classes failure reasons are grouped in,
and the families built from the aggregate rows ``models/metrics.py`` reads from PostgreSQL.
"""

import math
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "api_sync_"
# Upper bounds (milliseconds) of the delivery duration histogram's buckets; +Inf is added.
DURATION_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
# What a failure's reason (an error_class of the logs) is counted as: a handful of classes, so
# that the label stays small whatever the endpoints answer.
TIMEOUTS = frozenset({"Timeout", "ConnectTimeout", "ReadTimeout"})
CONNECTION = frozenset(
    {"ConnectionError", "SSLError", "ProxyError", "ChunkedEncodingError", "RetryError"}
)
DATA = frozenset({"MappingError", "MissingValue", "NoExternalId", "NotReadable"})
REASONS = ("http_4xx", "http_429", "http_5xx", "timeout", "connection", "refused", "data", "other")


def reason_class(error_class):
    """The reason class of an ``error_class`` (``HTTP 503``, ``ConnectTimeout``, ...)."""
    if error_class.startswith("HTTP "):
        status = error_class[5:]
        if status == "429":
            return "http_429"
        if status[:1] == "4":
            return "http_4xx"
        if status[:1] == "5":
            return "http_5xx"
        return "other"
    if error_class in TIMEOUTS:
        return "timeout"
    if error_class in CONNECTION:
        return "connection"
    if error_class == "TargetRefused":
        return "refused"
    if error_class in DATA:
        return "data"
    return "other"


def escape_label(value):
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return str(value).replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def escape_help(text):
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class Family:
    """One metric: its name (without the prefix), type, help, and samples ``(suffix, labels,
    value)`` (suffix: ``_bucket``, ``_sum``, ``_count`` of a histogram, else empty)."""

    name: str
    kind: str  # gauge, counter, histogram
    help: str
    samples: list = field(default_factory=list)

    def add(self, labels, value, suffix=""):
        self.samples.append((suffix, labels, value))


def render(families):
    """The exposition text of ``families``, each with its HELP and TYPE lines."""
    lines = []
    for family in families:
        name = PREFIX + family.name
        lines.append(f"# HELP {name} {escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.kind}")
        for suffix, labels, value in family.samples:
            text = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
            selector = f"{{{text}}}" if text else ""
            lines.append(f"{name}{suffix}{selector} {format_value(value)}")
    return "\n".join(lines) + "\n"


def add_histogram(family, labels, cumulative, count, total_ms):
    """Samples of one histogram series: ``cumulative[i]`` durations at most
    ``DURATION_BUCKETS_MS[i]``, ``count`` in all, ``total_ms`` their sum (in seconds here)."""
    for bound, number in zip(DURATION_BUCKETS_MS, cumulative, strict=True):
        family.add({**labels, "le": format_value(bound / 1000)}, number, "_bucket")
    family.add({**labels, "le": "+Inf"}, count, "_bucket")
    family.add(labels, total_ms / 1000, "_sum")
    family.add(labels, count, "_count")


@dataclass
class LogGroup:
    """One aggregate row of the events: a configuration, a state and an error class."""

    config_id: int
    state: str
    error_class: str | None
    events: int
    attempts: int
    oldest_pending_age: float | None  # seconds, of the group's oldest pending event
    timed: int  # events attempted whose last attempt has a duration
    duration_ms: int  # the sum of those durations
    buckets: tuple  # cumulative counts, one per DURATION_BUCKETS_MS


@dataclass
class ConfigRow:
    """A configuration and its endpoint's state."""

    config_id: int
    name: str
    active: bool
    last_success: float | None  # Unix time of the last successful run
    stale: bool
    endpoint_state: str | None  # None: nothing recorded yet (healthy)
    endpoint_failures: int


def families(configs, groups, log_states, endpoint_states, scrape_seconds=None):
    """The metric families of ``configs`` (ConfigRow) and ``groups`` (LogGroup): every
    configuration gets its series, at zero when it has no events."""
    labels = {row.config_id: {"config_id": row.config_id, "config": row.name} for row in configs}
    events = Family("events", "gauge", "Events kept in the logs, by state.")
    attempts = Family(
        "event_attempts", "gauge", "Delivery attempts made for the events kept, by their state."
    )
    errors = Family(
        "event_errors",
        "gauge",
        "Events kept whose last attempt failed, by state and reason class (pending: waiting "
        "for a retry).",
    )
    durations = Family(
        "delivery_duration_seconds",
        "histogram",
        "Duration of the last request of each event kept that was attempted.",
    )
    oldest = Family(
        "oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending event (0 when none is pending).",
    )
    endpoint = Family(
        "endpoint_state", "gauge", "The endpoint's state: 1 for the current one, 0 for the others."
    )
    endpoint_failures = Family(
        "endpoint_failures", "gauge", "Retryable errors in a row at the endpoint."
    )
    active = Family("config_active", "gauge", "1 for an active configuration, 0 when archived.")
    last_success = Family(
        "last_success_timestamp_seconds",
        "gauge",
        "Unix time of the end of the last successful scheduled or manual run.",
    )
    stale = Family(
        "stale", "gauge", "1 when the last successful run is older than three intervals."
    )

    per_state = {(cid, state): [0, 0] for cid in labels for state in log_states}
    per_error, age, histogram = {}, dict.fromkeys(labels, 0.0), {}
    for group in groups:
        if group.config_id not in labels:
            continue
        counts = per_state.setdefault((group.config_id, group.state), [0, 0])
        counts[0] += group.events
        counts[1] += group.attempts
        if group.error_class:
            key = (group.config_id, group.state, reason_class(group.error_class))
            per_error[key] = per_error.get(key, 0) + group.events
        if group.oldest_pending_age is not None:
            age[group.config_id] = max(age[group.config_id], group.oldest_pending_age)
        timed, total, buckets = histogram.get(
            group.config_id, (0, 0, (0,) * len(DURATION_BUCKETS_MS))
        )
        histogram[group.config_id] = (
            timed + group.timed,
            total + group.duration_ms,
            tuple(a + b for a, b in zip(buckets, group.buckets, strict=True)),
        )
    for (cid, state), (count, tries) in sorted(per_state.items()):
        events.add({**labels[cid], "state": state}, count)
        attempts.add({**labels[cid], "state": state}, tries)
    for (cid, state, reason), count in sorted(per_error.items()):
        errors.add({**labels[cid], "state": state, "reason": reason}, count)
    for row in configs:
        own = labels[row.config_id]
        timed, total, buckets = histogram.get(
            row.config_id, (0, 0, (0,) * len(DURATION_BUCKETS_MS))
        )
        add_histogram(durations, own, buckets, timed, total)
        oldest.add(own, age[row.config_id])
        current = row.endpoint_state or endpoint_states[0]
        for state in endpoint_states:
            endpoint.add({**own, "state": state}, int(state == current))
        endpoint_failures.add(own, row.endpoint_failures)
        active.add(own, row.active)
        if row.last_success is not None:
            last_success.add(own, row.last_success)
        stale.add(own, row.stale)
    result = [
        events,
        attempts,
        errors,
        durations,
        oldest,
        endpoint,
        endpoint_failures,
        active,
        last_success,
        stale,
    ]
    if scrape_seconds is not None:
        scrape = Family("scrape_duration_seconds", "gauge", "Time taken to read these figures.")
        scrape.add({}, scrape_seconds)
        result.append(scrape)
    return result
