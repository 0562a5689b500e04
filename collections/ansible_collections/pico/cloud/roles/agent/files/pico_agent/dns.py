"""DNS for discovery, Consul-style: A and SRV for `<service>.service.<domain>` (and the RFC 2782
form `_<service>._tcp.service.<domain>`), A for `<node>.node.<domain>`. Healthy instances only.

The responder is authoritative for its domain only and answers REFUSED for anything else: it is
not a recursor. It never answers a response (a spoofed one would start an endless exchange between
two agents) and answers FORMERR to a query it cannot read. Over UDP an answer fits the client's
EDNS buffer, at most 1232 bytes (the DNS flag day size that avoids IP fragmentation), else 512; a
longer one is cut and marked truncated, and the client asks again over TCP on the same port.
"""

from __future__ import annotations

import asyncio
import random
import socket

from dnslib import AAAA, EDNS0, QTYPE, RCODE, RR, SRV, A, DNSHeader, DNSRecord

from .catalog import Catalog, Instance
from .connections import BACKLOG, ConnectionLimiter, WaitingConnection
from .log import Throttled
from .metrics import Metrics

UDP_PAYLOAD = 512
EDNS_PAYLOAD = 1232
TCP_PAYLOAD = 65535
TCP_IDLE_TIMEOUT = 10.0
TCP_QUERIES_PER_CONNECTION = 100
# A DNS/TCP client that pipelines queries and never reads the answers: the agent stops answering
# (and reading) it once this much waits to be sent, so each connection holds a bounded amount;
# the kernel's send buffer is capped too, as it counts against the unit's memory as well.
TCP_WRITE_BUFFER_HIGH = 16 * 1024
TCP_SEND_BUFFER = 16 * 1024
# Queries answered in one turn of the event loop per connection: a connection with 100 queries
# in one write then cannot hold up /v1/health and the other clients for the whole batch.
TCP_QUERIES_PER_TURN = 4
# Answers are cached per query (its bytes after the ID, the name in lower case) until the catalog
# changes: packing 50 SRV records costs a millisecond here and ten times that on a Pi Zero. A few
# differently shuffled copies per query keep spreading clients over the instances.
CACHE_ENTRIES = 1024
CACHE_VARIANTS = 4
# Extended RCODE 16, BADVERS (RFC 6891 6.1.3): its upper 8 bits go in the OPT record.
BADVERS_EXT_RCODE = 1


class Resolver:
    def __init__(self, catalog: Catalog, domain: str, ttl: int = 0):
        self.catalog = catalog
        self.domain = domain.strip(".").lower()
        self._domain_labels = self.domain.split(".")
        self.ttl = ttl
        self._failed = Throttled("warning", "dns_query_failed")
        self._cache: dict[tuple[bytes, int | None], list[bytes]] = {}
        self._cache_generation = -1
        self._turn = 0

    def _instances(self, labels: list[str]) -> list[Instance] | None:
        # <service>.service  or  _<service>._tcp.service
        if len(labels) == 2 and labels[1] == "service":
            return self.catalog.instances(labels[0])
        if len(labels) == 3 and labels[2] == "service" and labels[0].startswith("_") and labels[1] in ("_tcp", "_udp"):
            return self.catalog.instances(labels[0][1:])
        return None

    def _unserved_rcode(self, labels: list[str]) -> int | None:
        """REFUSED for a name outside the domain, NXDOMAIN for one in it that no instance or node
        serves, None for a served name. `labels`: the name's labels, in lower case. The one rule
        of what is served, for the full path and for _not_served."""
        suffix = self._domain_labels
        if len(labels) <= len(suffix) or labels[-len(suffix):] != suffix:
            return RCODE.REFUSED
        inside = labels[:-len(suffix)]
        instances = self._instances(inside)
        if instances or (instances is None and len(inside) == 2 and inside[1] == "node"
                         and self.catalog.node_address(inside[0]) is not None):
            return None
        return RCODE.NXDOMAIN

    def answer(self, data: bytes, limit: int | None = None) -> bytes | None:
        """The packed answer to one query, or None for what deserves none (responses, non-DNS).
        `limit`: the transport's size (TCP); UDP answers fit the client's EDNS buffer."""
        if len(data) < 12 or data[2] & 0x80:  # shorter than a header, or QR set: a response
            return None
        if self._cache_generation != self.catalog.generation:
            self._cache.clear()
            self._cache_generation = self.catalog.generation
        name_end = _question_name_end(data)
        # The name in lower case: resolvers that randomise its case (DNS 0x20) still hit the cache,
        # and get their own spelling back (the answer's question is where the name is written out).
        key = (bytes(data[2:12]) + bytes(data[12:name_end]).lower() + bytes(data[name_end:]), limit) \
            if name_end else (bytes(data[2:]), limit)
        variants = self._cache.get(key)
        if variants is not None and len(variants) >= CACHE_VARIANTS:
            self._turn += 1
            cached = variants[self._turn % CACHE_VARIANTS]
            if name_end:
                cached = cached[:10] + bytes(data[12:name_end]) + cached[name_end - 2:]
            return bytes(data[:2]) + cached
        if name_end:
            unserved = self._not_served(data, name_end)
            if unserved is not None:
                return unserved
        try:
            request = DNSRecord.parse(data)
        except Exception:  # dnslib raises more than DNSError on garbage
            return self._formerr(data)
        try:
            answer = self._answer(request, limit)
        except Exception as err:  # a name dnslib cannot pack again, and the like
            self._failed(error=repr(err)[:200])
            return self._formerr(data)
        if len(self._cache) >= CACHE_ENTRIES and variants is None:
            self._cache.clear()  # random names: start over rather than grow
        self._cache.setdefault(key, []).append(bytes(answer[2:]))
        return answer

    def _not_served(self, data: bytes, name_end: int) -> bytes | None:
        """The NXDOMAIN or REFUSED answer to a plain query for a name this agent does not serve,
        written from the query's own bytes, or None for anything else (the full path answers it).
        A flood of made-up names then costs no parsing or packing (it once held the agent to about
        180 answers a second), and is kept out of the answer cache. Byte for byte what the full
        path answers (a property test holds the two together)."""
        if (data[2] >> 3) & 0x0F or data[6:10] != b"\x00\x00\x00\x00" or data[10] != 0 or data[11] > 1:
            return None  # not a standard query with only a question, and perhaps an OPT record
        question_end = name_end + 4
        opt = b""
        if data[11] == 1:  # one OPT record of EDNS version 0, and nothing after it
            record = data[question_end:]
            if len(record) < 11 or record[:3] != b"\x00\x00\x29" or record[6] != 0 or \
                    len(record) != 11 + int.from_bytes(record[9:11], "big"):
                return None
            opt = b"\x00\x00\x29" + EDNS_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
        elif len(data) != question_end:
            return None
        labels, at = [], 12
        while at < name_end - 1:
            label = bytes(data[at + 1: at + 1 + data[at]]).lower()
            if not label or label.strip(b"abcdefghijklmnopqrstuvwxyz0123456789-_"):
                return None  # a name dnslib writes out escaped: the full path
            labels.append(label.decode())
            at += 1 + data[at]
        rcode = self._unserved_rcode(labels)
        if rcode is None:
            return None  # served: the full path answers
        flags = bytes([0x84 | (data[2] & 0x01), (data[3] & 0x70) | rcode])  # QR, AA, the query's RD; Z, AD, CD
        counts = b"\x00\x01\x00\x00\x00\x00" + (b"\x00\x01" if opt else b"\x00\x00")
        return bytes(data[:2]) + flags + counts + bytes(data[12:question_end]) + opt

    @staticmethod
    def _formerr(data: bytes) -> bytes:
        ident = int.from_bytes(data[:2], "big")
        return DNSRecord(DNSHeader(id=ident, qr=1, rcode=RCODE.FORMERR)).pack()

    def _answer(self, request: DNSRecord, limit: int | None) -> bytes:
        reply = request.reply()
        # reply() copies the query's header bits: a query's TC bit or RCODE must not reach the
        # answer (an answer marked NXDOMAIN or truncated whatever it holds).
        reply.header.ra = 0
        reply.header.tc = 0
        reply.header.rcode = RCODE.NOERROR
        options = [extra for extra in request.ar if extra.rtype == QTYPE.OPT]
        edns = options[0] if options else None
        if limit is None:
            limit = UDP_PAYLOAD if edns is None else max(UDP_PAYLOAD, min(int(edns.rclass), EDNS_PAYLOAD))
        if len(options) > 1:  # RFC 6891 6.1.1
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        if edns is not None and (edns.ttl >> 16) & 0xFF:  # an EDNS version past 0: BADVERS, no answer
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD, ext_rcode=BADVERS_EXT_RCODE))
            return reply.pack()
        if edns is not None:
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode else RCODE.FORMERR
            return reply.pack()
        question = request.q
        labels = str(question.qname).rstrip(".").lower().split(".")
        reply.header.aa = 1
        rcode = self._unserved_rcode(labels)
        if rcode is not None:
            reply.header.rcode = rcode
            return reply.pack()
        labels = labels[:-len(self._domain_labels)]
        qtype = question.qtype
        instances = self._instances(labels)
        if instances:
            random.shuffle(instances)  # spread load across instances
            if qtype in (QTYPE.A, QTYPE.ANY):
                for address in dict.fromkeys(i.address for i in instances):
                    reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=self.ttl))
            if qtype in (QTYPE.SRV, QTYPE.ANY):
                targets: dict[str, str] = {}
                for instance in instances:
                    if instance.port is None:
                        continue
                    target = f"{instance.node}.node.{self.domain}."
                    targets[target] = instance.address
                    reply.add_answer(RR(question.qname, QTYPE.SRV, ttl=self.ttl,
                                        rdata=SRV(priority=1, weight=1, port=instance.port, target=target)))
                for target, address in targets.items():
                    reply.add_ar(RR(target, QTYPE.A, rdata=A(address), ttl=self.ttl))
            return self._fit(reply, limit)
        address = self.catalog.node_address(labels[0])  # served and no service: a <node>.node name
        if qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=self.ttl))
        elif qtype == QTYPE.AAAA and ":" in address:
            reply.add_answer(RR(question.qname, QTYPE.AAAA, rdata=AAAA(address), ttl=self.ttl))
        return reply.pack()

    @staticmethod
    def _fit(reply: DNSRecord, limit: int) -> bytes:
        packed = reply.pack()
        if len(packed) <= limit:
            return packed
        # Additional records are a courtesy: drop them first, and that alone is no truncation
        # (RFC 2181 9). The OPT record stays.
        reply.ar = [extra for extra in reply.ar if extra.rtype == QTYPE.OPT]
        packed = reply.pack()
        if len(packed) <= limit:
            return packed
        # The most answers that fit: a binary search packs log2(n) times, not once per record.
        answers, low, high = reply.rr, 0, len(reply.rr) - 1
        while low < high:
            middle = (low + high + 1) // 2
            reply.rr = answers[:middle]
            if len(reply.pack()) <= limit:
                low = middle
            else:
                high = middle - 1
        reply.rr = answers[:low]
        reply.header.tc = 1
        return reply.pack()


def _question_name_end(data: bytes) -> int:
    """Where the question's name ends in a one-question query written without compression (as
    queries are), or 0 when it is not such a query."""
    if len(data) < 17 or data[4:6] != b"\x00\x01":
        return 0
    at = 12
    while at < len(data):
        length = data[at]
        if length == 0:
            return at + 1 if at + 5 <= len(data) else 0
        if length > 63:
            return 0
        at += 1 + length
    return 0


class DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, metrics: Metrics):
        self.resolver = resolver
        self.metrics = metrics
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        if len(data) > TCP_PAYLOAD:
            return
        answer = self.resolver.answer(data)
        if answer is not None and self.transport is not None:
            self.metrics.dns_queries += 1
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable from a client that left: nothing to do, nothing to log per packet


class DNSOverTCP(WaitingConnection):
    """RFC 7766: a two-byte length, then the message; several queries per connection, closed when
    idle. Answering is synchronous, so a connection needs no task of its own, but it answers a few
    queries per turn of the event loop, and none while its earlier answers wait to be read: a
    client that sends and never reads holds at most TCP_WRITE_BUFFER_HIGH (and one answer) here."""

    timeout = TCP_IDLE_TIMEOUT

    def __init__(self, resolver: Resolver, metrics: Metrics, limiter: ConnectionLimiter):
        super().__init__(limiter)
        self.resolver = resolver
        self.metrics = metrics
        self.answered = 0
        self.closing = False
        self.writing_paused = False
        self.turn_scheduled = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=TCP_WRITE_BUFFER_HIGH)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SEND_BUFFER)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer_some()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._answer_some()

    def _answer_some(self) -> None:
        self.turn_scheduled = False
        for _turn in range(TCP_QUERIES_PER_TURN):
            if self.transport is None or self.closing or self.writing_paused or len(self.buffer) < 2:
                break
            size = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + size:
                break
            query, self.buffer = bytes(self.buffer[2:2 + size]), self.buffer[2 + size:]
            answer = self.resolver.answer(query, limit=TCP_PAYLOAD)
            if answer is None:
                self._close()
                return
            self.metrics.dns_queries += 1
            self.answered += 1
            self.transport.write(len(answer).to_bytes(2, "big") + answer)
            self.limiter.done_waiting(self)  # waiting for the next query is waiting again, as the newest
            self.limiter.admit(self)
            self.restart_timer()
            if self.answered >= TCP_QUERIES_PER_CONNECTION:
                self._close()
                return
        if self.transport is None or self.closing:
            return
        whole = len(self.buffer) >= 2 and len(self.buffer) >= 2 + int.from_bytes(self.buffer[:2], "big")
        if whole and not self.writing_paused:
            if not self.turn_scheduled:  # more queries are here: the rest after other callbacks
                self.turn_scheduled = True
                asyncio.get_running_loop().call_soon(self._answer_some)
        # Read on only while answering keeps up and no more than one query's worth is waiting.
        if self.writing_paused or whole:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def timed_out(self) -> None:
        # Idle, or closed with answers its client never read: those are dropped, not kept.
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        """Closed once what was answered is sent; a client that never reads it is cut off at the
        idle timeout, and its answers go with it."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()
            self.restart_timer()


async def serve_dns_tcp(resolver: Resolver, metrics: Metrics, limiter: ConnectionLimiter,
                        host: str, port: int, sock: socket.socket | None = None) -> asyncio.base_events.Server:
    """On `sock` if systemd passed one (pico_agent.listeners), else on host:port."""
    loop = asyncio.get_running_loop()
    if sock is not None:
        return await loop.create_server(lambda: DNSOverTCP(resolver, metrics, limiter), sock=sock, backlog=BACKLOG)
    return await loop.create_server(lambda: DNSOverTCP(resolver, metrics, limiter), host, port,
                                    reuse_address=True, backlog=BACKLOG)
