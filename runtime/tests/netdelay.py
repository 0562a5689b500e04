"""Hold every packet of an NFQUEUE queue for a fixed time, then let it through: a link's delay
where the kernel has no netem (this machine's has none).

    python3 netdelay.py QUEUE DELAY_SECONDS    (run inside the network namespace of the rules)

Speaks nfnetlink_queue over a raw netlink socket, so it needs nothing but Python. The packets are
only counted, never read (copy mode "meta"). A constant delay keeps them in order. Prints "ready"
once bound, and how many packets it held when it ends (SIGTERM).
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_COPY_META = 1, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1


def attribute(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def message(kind: int, queue: int, attributes: bytes, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attributes
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0) + body


def attributes(data: bytes) -> dict[int, bytes]:
    found, offset = {}, 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4:offset + size]
        offset += (size + 3) & ~3
    return found


def bind(sock: socket.socket, queue: int) -> None:
    command = attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET))
    sock.send(message(NFQNL_MSG_CONFIG, queue, command, NLM_F_REQUEST | NLM_F_ACK))
    params = attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
    sock.send(message(NFQNL_MSG_CONFIG, queue, params, NLM_F_REQUEST | NLM_F_ACK))
    for _ in range(2):
        reply = sock.recv(65536)
        kind = struct.unpack_from("=H", reply, 4)[0]
        error = struct.unpack_from("=i", reply, 16)[0] if kind == NLMSG_ERROR else 0
        if error:
            sys.exit(f"netdelay: binding queue {queue} failed: {os.strerror(-error)}")


def packet_ids(data: bytes):
    """The ids of the queued packets in one datagram of netlink messages."""
    offset = 0
    while offset + 16 <= len(data):
        size, kind = struct.unpack_from("=IH", data, offset)
        if size < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            header = attributes(data[offset + 20:offset + size]).get(NFQA_PACKET_HDR)
            if header:
                yield struct.unpack_from("!I", header)[0]
        offset += (size + 3) & ~3


def main() -> None:
    queue, delay = int(sys.argv[1]), float(sys.argv[2])
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((0, 0))
    bind(sock, queue)
    held: collections.deque[tuple[float, int]] = collections.deque()
    count = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        while True:
            now = time.monotonic()
            while held and held[0][0] <= now:
                _, packet = held.popleft()
                verdict = attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet))
                sock.send(message(NFQNL_MSG_VERDICT, queue, verdict))
            sock.settimeout(held[0][0] - now if held else None)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:  # ENOBUFS: the kernel dropped some; they are lost, as on a bad link
                continue
            arrived = time.monotonic()
            for packet in packet_ids(data):
                held.append((arrived + delay, packet))
                count += 1
    finally:
        print(f"held {count} packets", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
