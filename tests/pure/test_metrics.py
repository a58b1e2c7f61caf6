import math

from prometheus_client.parser import text_string_to_metric_families

from engine import metrics
from engine.metrics import ConfigRow, Family, LogGroup

LOG_STATES = ["pending", "done", "failed", "cancelled"]
ENDPOINT_STATES = ["healthy", "failing", "paused", "disabled"]
NO_BUCKETS = (0,) * len(metrics.DURATION_BUCKETS_MS)


def parsed(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(family, suffix=""):
    """``{labels without config: value}`` of a parsed family's samples named name+suffix."""
    return {
        tuple(sorted((k, v) for k, v in sample.labels.items() if k != "config")): sample.value
        for sample in family.samples
        if sample.name == family.name + suffix
    }


def config(config_id=1, name="Contacts", **values):
    return ConfigRow(
        **{
            "config_id": config_id,
            "name": name,
            "active": True,
            "last_success": None,
            "stale": False,
            "endpoint_state": None,
            "endpoint_failures": 0,
            **values,
        }
    )


def group(config_id=1, state="done", error_class=None, events=1, **values):
    return LogGroup(
        **{
            "config_id": config_id,
            "state": state,
            "error_class": error_class,
            "events": events,
            "attempts": events,
            "oldest_pending_age": None,
            "timed": 0,
            "duration_ms": 0,
            "buckets": NO_BUCKETS,
            **values,
        }
    )


def test_label_values_and_help_are_escaped_and_read_back_unchanged():
    family = Family("odd", "gauge", 'help with \\ and\nnewline "quoted"')
    name = 'a "quoted" \\ back\nslash'
    family.add({"config": name}, 3)
    text = metrics.render([family])
    assert 'config="a \\"quoted\\" \\\\ back\\nslash"' in text
    assert "\n# TYPE api_sync_odd gauge\n" in text
    (read,) = text_string_to_metric_families(text)
    assert read.samples[0].labels == {"config": name}
    assert read.documentation == 'help with \\ and\nnewline "quoted"'


def test_numbers_are_formatted_for_the_text_format():
    assert [metrics.format_value(v) for v in (3, True, False, 0.25, math.inf, -math.inf)] == [
        "3",
        "1",
        "0",
        "0.25",
        "+Inf",
        "-Inf",
    ]
    assert metrics.format_value(math.nan) == "NaN"


def test_reason_classes_keep_the_label_small():
    cases = {
        "HTTP 503": "http_5xx",
        "HTTP 500": "http_5xx",
        "HTTP 429": "http_429",
        "HTTP 404": "http_4xx",
        "HTTP 302": "other",
        "ConnectTimeout": "timeout",
        "ReadTimeout": "timeout",
        "ConnectionError": "connection",
        "SSLError": "connection",
        "TargetRefused": "refused",
        "MappingError": "data",
        "MissingValue": "data",
        "Superseded": "other",
    }
    assert {error: metrics.reason_class(error) for error in cases} == cases
    assert set(cases.values()) <= set(metrics.REASONS)


def test_every_configuration_has_its_series_at_zero_without_events():
    text = metrics.render(
        metrics.families([config(1), config(2, "Orders")], [], LOG_STATES, ENDPOINT_STATES)
    )
    families = parsed(text)
    events = values(families["api_sync_events"])
    assert events == {
        (("config_id", cid), ("state", state)): 0.0 for cid in ("1", "2") for state in LOG_STATES
    }
    assert values(families["api_sync_delivery_duration_seconds"], "_count") == {
        (("config_id", "1"),): 0.0,
        (("config_id", "2"),): 0.0,
    }
    assert values(families["api_sync_oldest_pending_age_seconds"]) == {
        (("config_id", "1"),): 0.0,
        (("config_id", "2"),): 0.0,
    }
    assert values(families["api_sync_endpoint_state"]) == {
        (("config_id", cid), ("state", state)): float(state == "healthy")
        for cid in ("1", "2")
        for state in ENDPOINT_STATES
    }
    assert "api_sync_last_success_timestamp_seconds" in families  # declared, no sample
    assert not families["api_sync_last_success_timestamp_seconds"].samples


def test_groups_are_summed_per_configuration_state_and_reason():
    buckets_a = (0, 1, 1, 2, 2, 2, 2, 2, 2, 2)
    buckets_b = (0, 0, 0, 0, 0, 1, 1, 1, 1, 1)
    groups = [
        group(state="done", events=5, attempts=6, timed=2, duration_ms=300, buckets=buckets_a),
        group(
            state="pending", error_class="HTTP 503", events=2, attempts=4, oldest_pending_age=12.5
        ),
        group(
            state="pending", error_class="HTTP 502", events=1, attempts=1, oldest_pending_age=40.0
        ),
        group(state="pending", events=3, attempts=0, oldest_pending_age=3.0),
        group(
            state="failed",
            error_class="ConnectTimeout",
            events=1,
            attempts=5,
            timed=2,
            duration_ms=2000,
            buckets=buckets_b,
        ),
        group(config_id=9, events=100),  # a configuration not listed: left out
    ]
    configs = [
        config(
            endpoint_state="paused",
            endpoint_failures=7,
            last_success=1_700_000_000.0,
            stale=True,
        )
    ]
    families = parsed(
        metrics.render(
            metrics.families(configs, groups, LOG_STATES, ENDPOINT_STATES, scrape_seconds=0.01)
        )
    )
    one = ("config_id", "1")
    assert values(families["api_sync_events"]) == {
        (one, ("state", "pending")): 6.0,
        (one, ("state", "done")): 5.0,
        (one, ("state", "failed")): 1.0,
        (one, ("state", "cancelled")): 0.0,
    }
    assert values(families["api_sync_event_attempts"])[(one, ("state", "pending"))] == 5.0
    assert values(families["api_sync_event_errors"]) == {
        (one, ("reason", "http_5xx"), ("state", "pending")): 3.0,
        (one, ("reason", "timeout"), ("state", "failed")): 1.0,
    }
    histogram = families["api_sync_delivery_duration_seconds"]
    assert histogram.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets["0.05"] == 1.0 and buckets["0.25"] == 2.0 and buckets["1.0"] == 3.0
    assert buckets["+Inf"] == 4.0
    assert values(histogram, "_sum") == {(one,): 2.3}
    assert values(histogram, "_count") == {(one,): 4.0}
    assert values(families["api_sync_oldest_pending_age_seconds"]) == {(one,): 40.0}
    assert values(families["api_sync_endpoint_state"])[(one, ("state", "paused"))] == 1.0
    assert values(families["api_sync_endpoint_state"])[(one, ("state", "healthy"))] == 0.0
    assert values(families["api_sync_endpoint_failures"]) == {(one,): 7.0}
    assert values(families["api_sync_last_success_timestamp_seconds"]) == {(one,): 1.7e9}
    assert values(families["api_sync_stale"]) == {(one,): 1.0}
    assert values(families["api_sync_scrape_duration_seconds"]) == {(): 0.01}
    for name, family in families.items():
        assert name.startswith("api_sync_") and family.documentation
