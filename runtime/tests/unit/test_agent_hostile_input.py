"""What the agent does with hostile or broken input, part by part: local files of every bad kind,
service files holding secrets, state and token files of the wrong shape, DNS packets that are not
queries, HTTP heads that bend the rules, and the connection cap. The whole agent under the same
input, on real sockets, is runtime/tests/integration/test_hostile_input.py."""

import asyncio
import json
import os
import random
import socket
import stat

import pytest
from dnslib import RCODE, DNSRecord, EDNS0
from pico_agent.agent import TokenError, load_or_create_token
from pico_agent.api import BadRequest, Reply, parse_head
from pico_agent.catalog import Catalog, Instance
from pico_agent.config import NAME_RE
from pico_agent.connections import ConnectionLimiter
from pico_agent.dns import TCP_QUERIES_PER_TURN, TCP_WRITE_BUFFER_HIGH, Resolver, serve_dns_tcp
from pico_agent.files import FileProblem, loads_json, read_small_file
from pico_agent.metrics import Metrics
from pico_agent.spec import SpecError, load_desired, parse_spec
from pico_agent.state import StateFile

SECRET = "hunter2-do-not-print"


# -- local files ------------------------------------------------------------------------------------
@pytest.fixture
def bad_files(tmp_path):
    """One of each kind of file that once crashed, froze or bloated the agent."""
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    with open(tmp_path / "huge.json", "wb") as handle:  # sparse: 300 MB that use no disk
        handle.truncate(300 * 1024 * 1024)
    (tmp_path / "nested.json").write_text("[" * 30000 + "]" * 30000)  # fits the 64 KiB cap
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    return tmp_path


def test_no_bad_file_blocks_crashes_or_is_read_whole(bad_files):
    why = {
        "fifo.json": "a FIFO", "zero.json": "a character device", "huge.json": "larger than",
        "dir.json": "a directory",
    }
    for name, reason in why.items():
        with pytest.raises(FileProblem, match=reason):
            read_small_file(bad_files / name, 64 * 1024)
    with pytest.raises(ValueError, match="nested too deeply"):
        loads_json((bad_files / "nested.json").read_bytes())


def test_bad_service_files_are_reported_and_the_good_one_runs(bad_files):
    (bad_files / "good.json").write_text(json.dumps({"name": "good", "image": "x"}))
    state = load_desired(bad_files)
    assert list(state.services) == ["good"]
    assert set(state.errors) == {"fifo", "zero", "huge", "nested", "dir", "loop"}
    assert "nested too deeply" in state.errors["nested"] and "a FIFO" in state.errors["fifo"]


@pytest.mark.parametrize("raw", ['{"interval": NaN}', '{"interval": Infinity}', '{"interval": -Infinity}'])
def test_json_without_nan_or_infinity(raw):
    with pytest.raises(ValueError, match="not a number JSON allows"):
        loads_json(raw)


def test_a_nan_interval_fails_validation_even_from_python():
    with pytest.raises(SpecError, match="health.interval"):
        parse_spec({"name": "web", "image": "x", "port": 80, "health": {"type": "tcp", "interval": float("nan")}})
    with pytest.raises(SpecError, match="cpus"):
        parse_spec({"name": "web", "image": "x", "cpus": float("nan")})


def test_names_with_a_trailing_newline_are_not_names():
    assert NAME_RE.match("web") and not NAME_RE.match("web\n")
    with pytest.raises(SpecError, match="name ="):
        parse_spec({"name": "web\n", "image": "x"})
    with pytest.raises(SpecError, match="env"):
        parse_spec({"name": "web", "image": "x", "env": {"A\n": "1"}})


@pytest.mark.parametrize("data", [
    {"name": "web", "image": "x", "env": {"PASSWORD": SECRET, "BAD-NAME": "1"}},
    {"name": "web", "image": "x", "env": [f"PASSWORD={SECRET}"]},
    {"name": "web", "image": "x", "env": {"PASSWORD": [SECRET]}},
    {"name": "web", "image": "x", "command": [f"--password={SECRET}", 1]},
    {"name": "web", "image": "x", "command": f"--password={SECRET}"},
    {"name": "web", "image": "x", "health": {"type": "command", "command": f"check {SECRET}"}},
    {"name": "web", "image": "x", "health": [SECRET]},
    {"name": "web", "image": "x", "env": {"PASSWORD": SECRET}, "port": 0},
    {"name": "web", "image": "x", "tags": [SECRET * 10, 1]},
    # Three shapes that still leaked (issue 25, item 12): env as a string, a NAME=value key, a path.
    {"name": "web", "image": "x", "env": f"PASSWORD={SECRET}"},
    {"name": "web", "image": "x", "env": {f"PASSWORD={SECRET}": "1"}},
    {"name": "web", "image": "x", "port": 80, "health": {"type": "http", "path": f"/healthz?key={SECRET} x"}},
])
def test_errors_never_echo_what_a_secret_could_be_in(data):
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert SECRET not in str(err.value) and "hunter2" not in str(err.value)


# -- state and token files -------------------------------------------------------------------------
@pytest.mark.parametrize("content", [
    '{"restarts": [1, 2]}', '{"restarts": {"web": "many"}}', '{"restarts": {"web": -1}}', '[]',
    '{"restarts": {"web": true}}', '{"restarts": {"web": NaN}}', "[" * 5000,
])
def test_a_state_file_of_the_wrong_shape_is_kept_aside_not_fatal(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content)
    state = StateFile(path)
    assert state.load() == {}
    assert "counters restart at 0" in state.problem
    assert not path.exists() and len(list(tmp_path.glob("state.json.corrupt-*"))) == 1


def test_a_state_file_that_is_a_fifo_or_a_directory(tmp_path):
    os.mkfifo(tmp_path / "state.json")
    assert StateFile(tmp_path / "state.json").load() == {}
    (tmp_path / "other.json").mkdir()
    state = StateFile(tmp_path / "other.json")
    assert state.load() == {} and "a directory" in state.problem


def test_state_round_trip(tmp_path):
    state = StateFile(tmp_path / "state.json")
    state.save({"restarts": {"web": 3}})
    assert state.load() == {"restarts": {"web": 3}} and state.problem is None


def test_the_token_is_made_0600_and_kept(tmp_path):
    path = tmp_path / "state" / "api-token"
    token = load_or_create_token(path)
    assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token


def test_a_readable_token_file_is_tightened(tmp_path):
    path = tmp_path / "api-token"
    path.write_text("a-token-long-enough-to-use\n")
    path.chmod(0o644)
    assert load_or_create_token(path) == "a-token-long-enough-to-use"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_token_file_is_replaced_by_a_0600_one_and_said(tmp_path, capsys):
    path = tmp_path / "api-token"
    path.write_text("")
    path.chmod(0o644)
    token = load_or_create_token(path)
    assert path.read_text() == token + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "token_file_empty" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["short", "has a space in it but long", "\x01\x02" * 20])
def test_a_weak_or_malformed_token_is_refused_with_the_fix(tmp_path, content):
    path = tmp_path / "api-token"
    path.write_text(content)
    with pytest.raises(TokenError, match="remove the file"):
        load_or_create_token(path)


def test_a_token_file_that_is_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "api-token")
    with pytest.raises(TokenError, match="a FIFO"):
        load_or_create_token(tmp_path / "api-token")


# -- DNS ----------------------------------------------------------------------------------------------
@pytest.fixture
def resolver():
    catalog = Catalog("a")
    catalog.set_local([Instance("web", "a", "10.99.0.1", 8000 + i, f"a/web-{i}") for i in range(50)])
    return Resolver(catalog, "pico")


def test_a_response_is_never_answered(resolver):
    """Two agents would otherwise answer each other's answers forever."""
    query = DNSRecord.question("web.service.pico")
    answer = resolver.answer(query.pack())
    assert answer is not None and resolver.answer(answer) is None
    refused = resolver.answer(DNSRecord.question("example.com").pack())
    assert resolver.answer(refused) is None


def test_unreadable_queries_get_formerr_with_their_id(resolver):
    garbage = bytes([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]) + b"\x3fabc"  # a label longer than the packet
    reply = DNSRecord.parse(resolver.answer(garbage))
    assert reply.header.id == 0x1234 and reply.header.rcode == RCODE.FORMERR and reply.header.qr == 1
    pointer_loop = bytes([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1])
    assert DNSRecord.parse(resolver.answer(pointer_loop)).header.rcode == RCODE.FORMERR
    assert resolver.answer(b"\x00\x01") is None  # shorter than a header: not DNS at all


def test_random_and_mutated_packets_never_raise(resolver):
    rng = random.Random(1234)
    seed = DNSRecord.question("_web._tcp.service.pico", "SRV")
    seed.add_ar(EDNS0(udp_len=4096))
    base = bytearray(seed.pack())
    for _ in range(3000):
        packet = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        for data in (bytes(packet), rng.randbytes(rng.randint(0, 80))):
            answer = resolver.answer(data)
            if answer is not None:
                assert len(answer) <= 1232 and DNSRecord.parse(answer).header.qr == 1


def test_truncation_keeps_as_many_answers_as_fit(resolver):
    query = DNSRecord.question("web.service.pico", "SRV")
    plain = resolver.answer(query.pack())
    kept = DNSRecord.parse(plain)
    assert kept.header.tc == 1 and len(plain) <= 512
    # One more answer would not have fitted: the cut is as late as it can be.
    kept.add_answer(kept.rr[0])
    assert len(kept.pack()) > 512


def test_an_edns_buffer_below_512_still_gets_512(resolver):
    query = DNSRecord.question("web.service.pico", "SRV")
    query.add_ar(EDNS0(udp_len=100))
    assert 400 < len(resolver.answer(query.pack())) <= 512


def test_a_name_in_another_letter_case_is_answered_from_the_cache_in_its_own_spelling(resolver):
    first = DNSRecord.question("_web._tcp.service.pico", "SRV")
    for _ in range(4):  # the cache's shuffled copies
        resolver.answer(first.pack())
    packed_before = resolver._cache.copy()
    query = DNSRecord.question("_WeB._tCp.SerVICE.pico", "SRV")
    reply = DNSRecord.parse(resolver.answer(query.pack()))
    assert resolver._cache == packed_before, "the other spelling missed the cache"
    assert str(reply.q.qname) == "_WeB._tCp.SerVICE.pico." and reply.header.id == query.header.id
    assert len(reply.rr) > 5 and {str(rr.rname) for rr in reply.rr} == {"_WeB._tCp.SerVICE.pico."}


def test_two_opt_records_are_a_format_error_and_a_later_edns_version_gets_badvers(resolver):
    twice = DNSRecord.question("web.service.pico")
    twice.add_ar(EDNS0(udp_len=1232))
    twice.add_ar(EDNS0(udp_len=1232))
    assert DNSRecord.parse(resolver.answer(twice.pack())).header.rcode == RCODE.FORMERR
    later = DNSRecord.question("web.service.pico")
    later.add_ar(EDNS0(udp_len=1232, version=1))
    reply = DNSRecord.parse(resolver.answer(later.pack()))
    opt = [extra for extra in reply.ar if extra.rtype == 41]
    # BADVERS is extended RCODE 16: 0 in the header, 1 in the OPT record's upper bits; version 0.
    assert not reply.rr and reply.header.rcode == 0 and len(opt) == 1 and opt[0].ttl >> 16 == 0x0100


def test_dns_over_tcp_clients_that_never_read_hold_a_bounded_buffer_and_cannot_stall_the_loop(resolver):
    """40 clients each write 100 pipelined SRV queries (about 3 KB an answer) and never read. The
    agent holds at most the write buffer's high mark and one answer per client, and answers a
    few queries of a connection per turn of the event loop, not all 100 at once."""
    async def scenario():
        metrics = Metrics()
        server = await serve_dns_tcp(resolver, metrics, ConnectionLimiter(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connections = []
        most_in_one_turn, last, stop = 0, 0, False

        def sample():
            nonlocal most_in_one_turn, last
            most_in_one_turn = max(most_in_one_turn, metrics.dns_queries - last)
            last = metrics.dns_queries
            if not stop:
                asyncio.get_running_loop().call_soon(sample)

        sample()
        query = DNSRecord.question("_web._tcp.service.pico", "SRV").pack()
        batch = (len(query).to_bytes(2, "big") + query) * 100
        one_answer = len(resolver.answer(query, limit=65535))
        for _ in range(40):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel keeps little for it
            sock.connect(("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.transport.pause_reading()  # this client never reads
            writer.write(batch)
            connections.append(writer)
        await asyncio.sleep(1.0)
        stop = True
        buffered = sum(p.transport.get_write_buffer_size() for p in PROTOCOLS if p.transport is not None)
        for writer in connections:
            writer.transport.abort()
        server.close()
        return most_in_one_turn, buffered, one_answer, metrics.dns_queries

    import pico_agent.dns as dns
    PROTOCOLS = []
    original = dns.DNSOverTCP.connection_made

    def keep(self, transport):
        PROTOCOLS.append(self)
        original(self, transport)

    dns.DNSOverTCP.connection_made = keep
    try:
        most_in_one_turn, buffered, one_answer, answered = asyncio.run(scenario())
    finally:
        dns.DNSOverTCP.connection_made = original
    assert len(PROTOCOLS) == 40
    assert answered < 40 * 100, "every query was answered though no answer was read"
    assert buffered <= 40 * (TCP_WRITE_BUFFER_HIGH + one_answer + 2), buffered
    assert most_in_one_turn <= 40 * TCP_QUERIES_PER_TURN, most_in_one_turn


# -- HTTP ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head, status", [
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.9\r\n\r\n", 505),
    (b"GET /v1/health HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 400),
    (b"POST /v1/reconcile HTTP/1.1\r\nContent-Length: 65536\r\n\r\n", 413),
    (b"POST /v1/reconcile HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
    (b"G@T / HTTP/1.1\r\n\r\n", 400),
    (b"GET /\x00 HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", 400),
])
def test_request_heads_that_bend_the_rules(head, status):
    with pytest.raises(BadRequest) as err:
        parse_head(head)
    assert err.value.status == status


def test_a_request_with_an_empty_body_is_fine():
    request = parse_head(b"POST /v1/reconcile HTTP/1.0\r\nContent-Length: 0\r\nAuthorization: Bearer x\r\n\r\n")
    assert request.method == "POST" and request.headers["authorization"] == "Bearer x"


def test_head_answers_carry_no_body():
    reply = Reply(200, {"a": 1})
    full, head_only = reply.encode(), reply.encode(with_body=False)
    assert head_only.endswith(b"\r\n\r\n") and full.startswith(head_only) and len(full) > len(head_only)
    assert f"Content-Length: {len(full) - len(head_only)}\r\n".encode() in head_only


# -- the connection cap --------------------------------------------------------------------------------
class FakeTransport:
    def __init__(self):
        self.aborted = False

    def get_extra_info(self, name):
        return None

    def abort(self):
        self.aborted = True


class FakeWriter:
    def __init__(self):
        self.transport = FakeTransport()


def test_the_oldest_waiting_connection_makes_room():
    limiter = ConnectionLimiter(limit=3)
    writers = [FakeWriter() for _ in range(5)]
    for writer in writers[:3]:
        limiter.admit(writer)
    limiter.done_waiting(writers[0])  # its request is in: no longer evictable
    limiter.admit(writers[3])
    limiter.admit(writers[4])
    assert [w.transport.aborted for w in writers] == [False, True, False, False, False]
    assert len(limiter) == 3 and limiter.evicted == 1


def test_a_connection_whose_request_waits_in_the_kernel_is_spared():
    """A burst is accepted before any of it is read: the real client among the flood is older than
    the connections that push it out, but its request is already there."""
    import socket

    class Connection:
        def __init__(self, sock):
            self.sock = sock
            self.transport = self
            self.aborted = False

        def get_extra_info(self, name):
            return self.sock if name == "socket" else None

        def abort(self):
            self.aborted = True

    pairs = [socket.socketpair() for _ in range(4)]
    try:
        pairs[0][0].sendall(b"GET /v1/health HTTP/1.1\r\n\r\n")  # the oldest has sent its request
        connections = [Connection(theirs) for _, theirs in pairs]
        limiter = ConnectionLimiter(limit=2)
        for connection in connections:
            limiter.admit(connection)
        assert [c.aborted for c in connections] == [False, True, True, False]
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_a_loop_that_keeps_failing_ends_the_agent_cleanly(monkeypatch):
    """A failing loop is restarted with back-off; one that fails 5 times within a minute stops the
    agent with exit code 1 (systemd restarts it) instead of leaving it half-alive."""
    from types import SimpleNamespace

    from pico_agent import agent as agent_module

    monkeypatch.setattr(agent_module, "restart_delay", lambda failures: 0.001)
    calls = []

    async def broken(stop):
        calls.append(1)
        raise OSError(24, "Too many open files")

    async def run():
        stop, fake = asyncio.Event(), SimpleNamespace(exit_code=0)
        await agent_module.Agent._keep_running(fake, "supervisor", broken, stop)
        return fake.exit_code, stop.is_set()

    assert asyncio.run(run()) == (1, True)
    assert len(calls) == agent_module.TASK_FAILURE_LIMIT


def test_a_loop_that_recovers_keeps_the_agent_running(monkeypatch):
    from types import SimpleNamespace

    from pico_agent import agent as agent_module

    monkeypatch.setattr(agent_module, "restart_delay", lambda failures: 0.001)
    calls = []

    async def flaky(stop):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("transient")
        stop.set()  # SIGTERM while the third run serves

    async def run():
        stop, fake = asyncio.Event(), SimpleNamespace(exit_code=0)
        await agent_module.Agent._keep_running(fake, "membership", flaky, stop)
        return fake.exit_code, stop.is_set()

    assert asyncio.run(run()) == (0, True) and len(calls) == 3


@pytest.mark.parametrize("how", ["returns", "cancelled from inside"])
def test_a_loop_that_ends_before_stop_is_restarted_and_logged(monkeypatch, capsys, how):
    """A loop that returns, or whose await is cancelled by someone else, while the agent serves is
    a failure like any other: restarted and logged, never an agent silently without its loop."""
    from types import SimpleNamespace

    from pico_agent import agent as agent_module

    monkeypatch.setattr(agent_module, "restart_delay", lambda failures: 0.001)
    calls = []

    async def ends_once(stop):
        calls.append(1)
        if len(calls) == 1:
            if how == "returns":
                return
            awaited = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(awaited.cancel)
            await awaited
        await stop.wait()

    async def run():
        stop, fake = asyncio.Event(), SimpleNamespace(exit_code=0)
        worker = asyncio.create_task(agent_module.Agent._keep_running(fake, "supervisor", ends_once, stop))
        while len(calls) < 2 and not worker.done():
            await asyncio.sleep(0.01)
        stop.set()
        await worker
        return fake.exit_code

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 0
    assert len(calls) == 2
    failed = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"task_failed"' in line]
    assert [entry["task"] for entry in failed] == ["supervisor"], failed


def test_cancelling_a_loop_task_ends_it_without_a_restart(monkeypatch):
    """The agent's own cancel of a worker at shutdown (or a TaskGroup's) ends it: no restart."""
    from types import SimpleNamespace

    from pico_agent import agent as agent_module

    monkeypatch.setattr(agent_module, "restart_delay", lambda failures: 0.001)
    calls = []

    async def serves(stop):
        calls.append(1)
        await stop.wait()

    async def run():
        stop, fake = asyncio.Event(), SimpleNamespace(exit_code=0)
        worker = asyncio.create_task(agent_module.Agent._keep_running(fake, "membership", serves, stop))
        await asyncio.sleep(0.05)
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        return fake.exit_code

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 0 and calls == [1]


def test_cached_answers_follow_the_catalog_and_carry_each_query_id(resolver):
    query = DNSRecord.question("web.service.pico", "SRV")
    query.add_ar(EDNS0(udp_len=1232))
    for ident in range(10):  # past the cached variants
        query.header.id = ident
        answer = DNSRecord.parse(resolver.answer(query.pack()))
        assert answer.header.id == ident and len(answer.rr) > 0
    ports = set()
    for ident in range(8):
        query.header.id = ident
        ports |= {rr.rdata.port for rr in DNSRecord.parse(resolver.answer(query.pack())).rr}
    assert len(ports) > len(answer.rr)  # the cached copies are shuffled differently
    resolver.catalog.set_local([Instance("web", "a", "10.99.0.9", 9999, "a/web-0")])
    answer = DNSRecord.parse(resolver.answer(query.pack()))
    assert [rr.rdata.port for rr in answer.rr] == [9999]
    assert str(DNSRecord.parse(resolver.answer(DNSRecord.question("web.service.pico").pack())).a.rdata) == "10.99.0.9"


def test_a_head_sent_a_byte_at_a_time_is_answered_once_complete():
    from pico_agent.api import API, _Connection

    class Transport:
        def __init__(self):
            self.sent, self.closing = b"", False

        def write(self, data):
            self.sent += data

        def close(self):
            self.closing = True

        abort = close

        def is_closing(self):
            return self.closing

        def get_extra_info(self, name):
            return None

    class Agent:
        def health_report(self):
            return {"status": "ok"}

    async def run():
        connection, transport = _Connection(API(Agent(), "a-token-long-enough")), Transport()
        connection.connection_made(transport)
        for byte in b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n":
            assert not transport.sent
            connection.data_received(bytes([byte]))
        await asyncio.sleep(0)
        connection.connection_lost(None)
        return transport.sent

    assert asyncio.run(run()).startswith(b"HTTP/1.1 200 OK\r\n")
