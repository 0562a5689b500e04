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
# Answers are cached per query (its bytes after the ID) until the catalog changes: packing 50 SRV
# records costs a millisecond here and ten times that on a Pi Zero. A few differently shuffled
# copies per query keep spreading clients over the instances.
CACHE_ENTRIES = 1024
CACHE_VARIANTS = 4


class Resolver:
    def __init__(self, catalog: Catalog, domain: str, ttl: int = 0):
        self.catalog = catalog
        self.domain = domain.strip(".").lower()
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

    def answer(self, data: bytes, limit: int | None = None) -> bytes | None:
        """The packed answer to one query, or None for what deserves none (responses, non-DNS).
        `limit`: the transport's size (TCP); UDP answers fit the client's EDNS buffer."""
        if len(data) < 12 or data[2] & 0x80:  # shorter than a header, or QR set: a response
            return None
        if self._cache_generation != self.catalog.generation:
            self._cache.clear()
            self._cache_generation = self.catalog.generation
        key = (bytes(data[2:]), limit)
        variants = self._cache.get(key)
        if variants is not None and len(variants) >= CACHE_VARIANTS:
            self._turn += 1
            return bytes(data[:2]) + variants[self._turn % CACHE_VARIANTS]
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

    @staticmethod
    def _formerr(data: bytes) -> bytes:
        ident = int.from_bytes(data[:2], "big")
        return DNSRecord(DNSHeader(id=ident, qr=1, rcode=RCODE.FORMERR)).pack()

    def _answer(self, request: DNSRecord, limit: int | None) -> bytes:
        reply = request.reply()
        reply.header.ra = 0
        edns = next((extra for extra in request.ar if extra.rtype == QTYPE.OPT), None)
        if limit is None:
            limit = UDP_PAYLOAD if edns is None else max(UDP_PAYLOAD, min(int(edns.rclass), EDNS_PAYLOAD))
        if edns is not None:
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode else RCODE.FORMERR
            return reply.pack()
        question = request.q
        qname = str(question.qname).rstrip(".").lower()
        suffix = "." + self.domain
        if not qname.endswith(suffix):
            reply.header.rcode = RCODE.REFUSED
            return reply.pack()
        labels = qname[: -len(suffix)].split(".")
        reply.header.aa = 1
        qtype = question.qtype
        instances = self._instances(labels)
        if instances is not None:
            if not instances:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply.pack()
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
        if len(labels) == 2 and labels[1] == "node":
            address = self.catalog.node_address(labels[0])
            if address is None:
                reply.header.rcode = RCODE.NXDOMAIN
            elif qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=self.ttl))
            elif qtype == QTYPE.AAAA and ":" in address:
                reply.add_answer(RR(question.qname, QTYPE.AAAA, rdata=AAAA(address), ttl=self.ttl))
            return reply.pack()
        reply.header.rcode = RCODE.NXDOMAIN
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
    idle. Answering is synchronous, so a connection needs no task of its own."""

    timeout = TCP_IDLE_TIMEOUT

    def __init__(self, resolver: Resolver, metrics: Metrics, limiter: ConnectionLimiter):
        super().__init__(limiter)
        self.resolver = resolver
        self.metrics = metrics
        self.answered = 0

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2 and self.transport is not None:
            size = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + size:
                return
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

    def timed_out(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve_dns_tcp(resolver: Resolver, metrics: Metrics, limiter: ConnectionLimiter,
                        host: str, port: int) -> asyncio.base_events.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: DNSOverTCP(resolver, metrics, limiter), host, port,
                                    reuse_address=True, backlog=BACKLOG)
