import random
from dataclasses import replace
from datetime import datetime, timedelta

from engine import health
from engine.health import DISABLED, FAILING, HEALTHY, PAUSED, Health

T0 = datetime(2026, 11, 23, 12, 0, 0)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def fail(h, seconds, **kwargs):
    return health.failed(
        h, at(seconds), threshold=kwargs.pop("threshold", 5), base=10, cap=600, **kwargs
    )


def test_a_streak_opens_the_circuit_only_past_the_threshold_and_the_minimum_time():
    h, event = Health(), None
    for second in range(5):
        h, event = fail(h, second)
    assert (h.state, h.failure_count, h.failing_since, event) == (FAILING, 5, T0, None)
    h, event = fail(h, 60)  # 6 in a row, spanning a minute: open
    assert (h.state, event) == (PAUSED, "paused")
    assert h.paused_until == at(70)  # first probe after Backoff Base
    h, event = fail(h, 61)  # a delivery already under way fails too: nothing more
    assert (h.state, h.paused_until, event) == (PAUSED, at(70), None)


def test_a_long_streak_below_the_threshold_keeps_failing():
    h = Health()
    for second in (0, 100, 200, 300):
        h, _event = fail(h, second)
    assert h.state == FAILING
    h, event = fail(h, 400)
    assert (h.state, event) == (PAUSED, "paused")


def test_an_answer_resets_the_streak_and_closes_the_circuit_once():
    h, _ = fail(Health(), 0, threshold=1)
    h, _ = fail(h, 60, threshold=1)
    assert h.state == PAUSED
    h, event = health.answered(h, at(90))
    assert (h.state, h.failure_count, h.failing_since, event) == (HEALTHY, 0, None, "resumed")
    assert (h.resumed_at, h.last_answered_at, h.paused_until) == (at(90), at(90), None)
    h, event = health.answered(h, at(91))
    assert event is None


def test_failed_probes_back_off_up_to_the_cap():
    h = Health(state=PAUSED, failure_count=9, failing_since=T0, paused_until=at(10))
    delays = []
    for probe in range(8):
        now = 100 * probe
        h, event = fail(h, now, probe=True)
        assert event is None
        delays.append((h.paused_until - at(now)).total_seconds())
        assert (h.probe_count, h.probe_until) == (probe + 1, None)
    assert delays == [20, 40, 80, 160, 320, 600, 600, 600]


def test_gate():
    now = at(0)
    assert health.gate(Health(), now) == ("go", None)
    assert health.gate(Health(state=FAILING, failure_count=3), now) == ("go", None)
    paused = Health(state=PAUSED, paused_until=at(30))
    assert health.gate(paused, now) == ("wait", at(30))
    assert health.gate(paused, at(30)) == ("probe", None)
    probing = Health(state=PAUSED, paused_until=at(-5), probe_until=at(25))
    assert health.gate(probing, now) == ("wait", at(25))
    assert health.gate(probing, now, recheck=10) == ("wait", at(10)), "the probe's timeout"
    assert health.gate(probing, at(20), recheck=10) == ("wait", at(25))
    assert health.gate(Health(not_before=at(120)), now) == ("wait", at(120))
    assert health.gate(Health(not_before=at(-1)), now) == ("go", None)
    action, until = health.gate(Health(state=DISABLED), now)
    assert (action, until) == ("wait", at(health.DISABLED_RECHECK))


def test_retry_after_delays_the_whole_endpoint_and_never_moves_back():
    h, _ = fail(Health(), 0, retry_after=120)
    assert h.not_before == at(120)
    h, _ = fail(h, 1, retry_after=5)
    assert h.not_before == at(120)
    h, _ = health.answered(h, at(2))
    assert h.not_before == at(120), "a 429 delay outlives answers of requests already under way"


def test_a_circuit_opened_by_429_probes_not_before_the_retry_after():
    h, _ = fail(Health(), 0, threshold=1)
    h, event = fail(h, 60, threshold=1, retry_after=3600)
    assert (event, h.paused_until) == ("paused", at(3660))


def test_410_disables_once_and_only_a_manager_re_enables():
    h, event = health.gone(Health(state=FAILING, failure_count=2), at(0))
    assert (h.state, event) == (DISABLED, "disabled")
    h, event = health.gone(h, at(1))
    assert event is None
    h, event = health.answered(h, at(2))
    assert (h.state, event) == (DISABLED, None), "an answer in flight does not re-enable"
    h, _ = fail(h, 3)
    assert h.state == DISABLED
    h = health.reenabled(h, at(4))
    assert (h.state, h.failure_count, h.resumed_at) == (HEALTHY, 0, at(4))


def test_attempts_are_charged_only_for_the_events_own_errors():
    streak = Health(state=FAILING, failure_count=2, failing_since=at(0))
    # a non-retryable error (4xx, mapping) is the event's
    assert health.charged("failed", None, streak)
    # a retryable error is the event's once the endpoint answered others since its last try
    assert not health.charged("retry", None, Health()), "first try: cannot tell"
    assert not health.charged("retry", at(0), streak), "nothing answered since: an outage"
    assert not health.charged("retry", at(0), replace(streak, failing_since=at(0.5)))
    assert health.charged("retry", at(0), Health()), "an answer ended the streak"
    assert health.charged("retry", at(0), replace(streak, failing_since=at(3))), "a new streak"


def test_give_up_counts_from_creation_or_the_last_resume():
    assert not health.gives_up(at(0), None, at(23 * 3600), 24)
    assert health.gives_up(at(0), None, at(24 * 3600), 24)
    assert not health.gives_up(at(0), at(20 * 3600), at(30 * 3600), 24)


def test_send_slots_are_spaced_by_the_rate():
    slot, following = health.next_slot(None, at(0), 0.5)
    assert (slot, following) == (at(0), at(0.5))
    slot, following = health.next_slot(following, at(0.1), 0.5)
    assert (slot, following) == (at(0.5), at(1))
    slot, _ = health.next_slot(following, at(10), 0.5)
    assert slot == at(10), "an idle endpoint does not bank slots"
    assert health.slot_interval(4) == 0.25
    assert health.slot_interval(0) == 0


def test_slot_wait_sleeps_only_briefly():
    assert health.slot_wait(at(0), at(1)) == 0
    assert health.slot_wait(at(1.5), at(0)) == 1.5
    assert health.slot_wait(at(health.MAX_SLEEP + 1), at(0)) is None


def test_spread_wakes_waiting_deliveries_over_a_few_seconds():
    rng = random.Random(7)
    wakes = [health.spread(at(0.5), rng) for _ in range(100)]
    assert all(at(0.5) <= wake <= at(health.SPREAD + 1) for wake in wakes)
    assert all(wake.microsecond == 0 for wake in wakes)
    assert len(set(wakes)) == health.SPREAD + 1
