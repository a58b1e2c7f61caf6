"""Endpoint health: an endpoint's circuit breaker, and the arithmetic of its send slots.

Pure Python. ``api.sync.endpoint.state`` stores one :class:`Health` per configuration in
PostgreSQL and applies these transitions on a short transaction of its own, under a row lock, so
that every worker sees and changes the same state.

States:

- ``healthy``: deliveries go;
- ``failing``: retryable errors in a row (connection errors, timeouts, 408, 425, 429, 5xx), fewer
  than the threshold or for less than ``FAILING_SECONDS``; deliveries still go;
- ``paused`` (circuit open): deliveries wait without spending attempts; at ``paused_until`` one
  delivery at a time (the probe) is sent; an answer closes the circuit, a failure sets the next
  probe time with exponential backoff;
- ``disabled`` (``410 Gone``): nothing is sent until a manager re-enables the endpoint.
"""

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

HEALTHY, FAILING, PAUSED, DISABLED = "healthy", "failing", "paused", "disabled"
STATES = [(HEALTHY, "Healthy"), (FAILING, "Failing"), (PAUSED, "Paused"), (DISABLED, "Disabled")]
FAILING_SECONDS = 60  # a streak opens the circuit only once it lasts this long
MAX_SLEEP = 2.0  # a worker waits this long at most for its send slot; beyond, the job is postponed
DISABLED_RECHECK = (
    3600  # deliveries of a disabled endpoint look again after this (re-enabling wakes them)
)
SPREAD = 5.0  # deliveries waiting for the same moment wake spread over this many seconds


@dataclass(frozen=True)
class Health:
    """What the workers share about one endpoint (naive UTC datetimes)."""

    state: str = HEALTHY
    failure_count: int = 0
    failing_since: datetime | None = None
    last_answered_at: datetime | None = None
    paused_until: datetime | None = None
    probe_count: int = 0
    probe_until: datetime | None = None
    not_before: datetime | None = None
    resumed_at: datetime | None = None

    @property
    def clean(self):
        """Nothing to record after a delivery that was answered."""
        return self.state == HEALTHY and not self.failure_count and not self.probe_until


def _later(*moments):
    return max(moment for moment in moments if moment is not None)


def probe_delay(probe_count, base, cap):
    """Seconds before the next probe once ``probe_count`` probes failed (exponential, capped)."""
    return float(min(cap, base * 2**probe_count))


def gate(h, now, recheck=None):
    """What a delivery does now: ``("go", None)``, ``("wait", until)`` or ``("probe", None)``.

    A probe goes only if it wins the probe lease (an atomic update): else it waits. While another
    probe is under way, the delivery looks again after ``recheck`` seconds (the probe's timeout:
    its lease is longer, for a worker that dies) or when the lease ends.
    """
    if h.state == DISABLED:
        return "wait", now + timedelta(seconds=DISABLED_RECHECK)
    if h.state == PAUSED:
        if h.paused_until and now < h.paused_until:
            return "wait", h.paused_until
        if h.probe_until and now < h.probe_until:
            if recheck is not None:
                return "wait", min(h.probe_until, now + timedelta(seconds=recheck))
            return "wait", h.probe_until
        return "probe", None
    if h.not_before and now < h.not_before:
        return "wait", h.not_before
    return "go", None


def answered(h, now):
    """The endpoint answered (2xx, or an error about the event): the circuit closes.

    Returns ``(health, event)``; ``event`` is ``"resumed"`` when a paused endpoint resumes.
    """
    if h.state == DISABLED:  # an answer to a request sent before the 410 re-enables nothing
        return replace(h, last_answered_at=now, probe_until=None), None
    event = "resumed" if h.state == PAUSED else None
    return (
        Health(
            last_answered_at=now,
            not_before=h.not_before,
            resumed_at=now if event else h.resumed_at,
        ),
        event,
    )


def failed(h, now, threshold, base, cap, retry_after=None, probe=False):
    """A retryable error. Returns ``(health, event)``; ``event`` is ``"paused"`` when the circuit
    opens: ``threshold`` failures in a row spanning at least ``FAILING_SECONDS``.

    ``retry_after`` (a 429's, in seconds) delays every delivery of the endpoint; ``probe``: this
    was the probe of a paused endpoint, the next one comes after a longer delay.
    """
    not_before = h.not_before
    if retry_after is not None:
        not_before = _later(not_before, now + timedelta(seconds=retry_after))
    h = replace(
        h,
        failure_count=h.failure_count + 1,
        failing_since=h.failing_since or now,
        not_before=not_before,
    )
    if h.state == DISABLED:
        return h, None
    if h.state == PAUSED:
        if not probe:  # a delivery sent before the circuit opened
            return h, None
        count = h.probe_count + 1
        wake = now + timedelta(seconds=probe_delay(count, base, cap))
        return replace(
            h, probe_count=count, probe_until=None, paused_until=_later(wake, not_before)
        ), None
    streak = (now - h.failing_since).total_seconds()
    if h.failure_count >= threshold and streak >= FAILING_SECONDS:
        wake = now + timedelta(seconds=probe_delay(0, base, cap))
        return (
            replace(
                h,
                state=PAUSED,
                probe_count=0,
                probe_until=None,
                paused_until=_later(wake, not_before),
            ),
            "paused",
        )
    return replace(h, state=FAILING), None


def gone(h, now):
    """``410 Gone``: the endpoint is disabled. Returns ``(health, "disabled" the first time)``."""
    event = None if h.state == DISABLED else "disabled"
    return replace(h, state=DISABLED, probe_until=None, paused_until=None), event


def reenabled(h, now):
    """A manager resumed or re-enabled the endpoint: deliveries go again."""
    return Health(last_answered_at=h.last_answered_at, not_before=h.not_before, resumed_at=now)


def charged(verdict, previous_attempt_at, before):
    """Whether an attempt's error counts toward the event's Max Attempts.

    An error that says something about the event counts: a non-retryable one (4xx, mapping), or
    a retryable one once the endpoint answered other deliveries since the event's previous
    attempt (an answer ends the failure streak: ``before``, the endpoint's state before this
    error, has none, or one that began after that attempt). A retryable error on a first
    attempt, or while nothing gets through, is the endpoint's: it spends nothing.
    ``previous_attempt_at`` is stored to the second: a streak counts as newer from the next one.
    """
    if verdict != "retry":
        return True
    if not previous_attempt_at:
        return False
    if not before.failure_count:
        return True
    return bool(before.failing_since) and before.failing_since >= previous_attempt_at + timedelta(
        seconds=1
    )


def gives_up(created, resumed_at, now, hours):
    """Whether an event retried since ``created`` has tried long enough; the clock starts again
    when the endpoint resumes (time spent waiting for a paused endpoint does not count)."""
    start = _later(created, resumed_at)
    return (now - start).total_seconds() >= hours * 3600


def slot_interval(rate):
    """Seconds between two requests at ``rate`` requests per second (0: unlimited)."""
    return 1.0 / rate if rate > 0 else 0


def next_slot(next_slot_at, now, interval):
    """``(slot, next_slot_at)``: the send time reserved now and the following free one.

    The database does the same in one UPDATE (``GREATEST(next_slot_at, now) + interval``);
    an endpoint left idle does not bank slots for a burst.
    """
    slot = _later(next_slot_at, now)
    return slot, slot + timedelta(seconds=interval)


def slot_wait(slot, now, max_sleep=MAX_SLEEP):
    """Seconds to sleep until ``slot``, or None when it is too far: the job is postponed."""
    wait = (slot - now).total_seconds()
    if wait > max_sleep:
        return None
    return max(wait, 0)


def spread(when, rng=random):
    """``when`` plus a few random seconds: deliveries waiting for one moment wake apart.

    Rounded up to the second (job etas are stored in whole seconds), so never before ``when``.
    """
    wake = when + timedelta(seconds=rng.uniform(0, SPREAD))
    return wake.replace(microsecond=0) + timedelta(seconds=1)
