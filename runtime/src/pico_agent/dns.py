"""DNS for discovery, Consul-style: A and SRV for `<service>.service.<domain>` (and the RFC 2782
form `_<service>._tcp.service.<domain>`), A for `<node>.node.<domain>`. Healthy instances only.

The responder is authoritative for its domain only and answers REFUSED for anything else: it is
not a recursor. Answers that would not fit the client's UDP size are cut and marked truncated.
"""

from __future__ import annotations

import asyncio
import random

from dnslib import AAAA, QTYPE, RCODE, RR, SRV, A, DNSError, DNSRecord

from .catalog import Catalog, Instance
from .metrics import Metrics

UDP_PAYLOAD = 512


class Resolver:
    def __init__(self, catalog: Catalog, domain: str, ttl: int = 0):
        self.catalog = catalog
        self.domain = domain.strip(".").lower()
        self.ttl = ttl

    def _instances(self, labels: list[str]) -> list[Instance] | None:
        # <service>.service  or  _<service>._tcp.service
        if len(labels) == 2 and labels[1] == "service":
            return self.catalog.instances(labels[0])
        if len(labels) == 3 and labels[2] == "service" and labels[0].startswith("_") and labels[1] in ("_tcp", "_udp"):
            return self.catalog.instances(labels[0][1:])
        return None

    def answer(self, data: bytes) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError):
            return None  # not DNS: say nothing, like any server
        reply = request.reply()
        reply.header.ra = 0
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
                for instance in instances:
                    if instance.port is None:
                        continue
                    target = f"{instance.node}.node.{self.domain}."
                    reply.add_answer(RR(question.qname, QTYPE.SRV, ttl=self.ttl,
                                        rdata=SRV(priority=1, weight=1, port=instance.port, target=target)))
                    reply.add_ar(RR(target, QTYPE.A, rdata=A(instance.address), ttl=self.ttl))
            return self._fit(request, reply)
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
    def _fit(request: DNSRecord, reply: DNSRecord) -> bytes:
        limit = UDP_PAYLOAD
        for extra in request.ar:
            if extra.rtype == QTYPE.OPT:
                limit = max(UDP_PAYLOAD, min(int(extra.rclass), 4096))
        packed = reply.pack()
        if len(packed) <= limit:
            return packed
        # Additional records are a courtesy: drop them first, and that alone is no truncation (RFC 2181 9).
        reply.ar = []
        if len(reply.pack()) <= limit:
            return reply.pack()
        while reply.rr and len(reply.pack()) > limit:
            reply.rr.pop()
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
        if len(data) > 4096:
            return
        answer = self.resolver.answer(data)
        if answer is not None and self.transport is not None:
            self.metrics.dns_queries += 1
            self.transport.sendto(answer, addr)
