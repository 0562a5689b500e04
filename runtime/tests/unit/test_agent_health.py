"""The health state machine: start period, retries, when the next check is due; and what an HTTP
check reads of the answer."""

import asyncio
import tracemalloc

import pytest
from pico_agent.health import HEALTHY, STARTING, UNHEALTHY, HealthTracker, probe
from pico_agent.spec import HealthSpec

MiB = 1024 * 1024


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


def serve_page(size: int):
    """A loopback HTTP server whose every page is `size` bytes, answered 200; (server, port)."""
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"x" * 65536
        try:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass  # the check hung up once it had the status: the point
        writer.close()

    return asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("size", [7 * MiB, 9 * MiB])
def test_an_http_check_reads_the_status_never_the_page(size):
    """A 9 MiB page (a large index on `path: /`) once made a healthy service unhealthy, and 16
    replicas of a 7 MiB one took the agent from 24 to 163 MB."""
    async def check():
        server = await serve_page(size)
        port = server.sockets[0].getsockname()[1]
        tracemalloc.start()
        try:
            result = await probe(HealthSpec("http", path="/", timeout=5), port)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            server.close()
        return result, peak

    (ok, detail), peak = asyncio.run(check())
    assert ok and detail == "HTTP 200"
    assert peak < MiB, f"{peak} bytes held while checking"


def test_a_check_that_gets_no_answer_says_so():
    """A service that accepts the connection and never answers: the check fails within its
    timeout and says it got no answer (a timeout is an OSError too, and was once reported as an
    empty reason)."""
    async def check():
        server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await probe(HealthSpec("http", path="/", timeout=0.3), port)
        finally:
            server.close()

    ok, detail = asyncio.run(check())
    assert not ok
    assert detail == "GET /: no answer within 0.3 s"
