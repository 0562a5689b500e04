"""The health state machine: start period, retries, when the next check is due."""

from pico_agent.health import HEALTHY, STARTING, UNHEALTHY, HealthTracker
from pico_agent.spec import HealthSpec


def test_failures_in_the_start_period_do_not_count():
    tracker = HealthTracker(HealthSpec("http", interval=1, retries=2, start_period=10), started_at=0)
    assert tracker.status == STARTING
    tracker.record(False, "HTTP 500", now=5)
    tracker.record(False, "HTTP 500", now=6)
    assert tracker.status == STARTING and tracker.failures == 0
    assert tracker.record(True, "HTTP 200", now=7) and tracker.status == HEALTHY
    tracker.record(False, "HTTP 500", now=11)
    assert tracker.status == HEALTHY  # one failure of two allowed
    assert tracker.record(False, "HTTP 500", now=12) and tracker.status == UNHEALTHY
    assert tracker.next_check == 13


def test_no_check_means_healthy_while_running():
    tracker = HealthTracker(HealthSpec("none"), started_at=0)
    assert tracker.status == HEALTHY and not tracker.due(100)
