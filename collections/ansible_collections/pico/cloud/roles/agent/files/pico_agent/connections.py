"""A cap on the TCP connections that have not yet sent a full request (HTTP API, DNS over TCP).

Half-open connections are cheap for a client and cost the agent a file descriptor and a buffer
each. Past the cap an old waiting connection is dropped to make room, not the new one, so a flood
of idle sockets keeps evicting its own. Which one: the oldest with nothing unread in the kernel.
asyncio accepts a whole burst before it reads any of it, so a real client that connected amid a
flood may be older than hundreds of flood sockets by the time it is read; its request is already
waiting in the kernel, and that is what spares it.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import termios

DEFAULT_LIMIT = 256
# listen() backlog of the agent's TCP servers. asyncio also accepts up to this many connections in
# one go before it reads any, and each costs memory until the cap evicts it: 1024 keeps a
# 10,000-connection burst under the agent's 64 MB.
BACKLOG = 1024


def unread_bytes(transport: asyncio.BaseTransport | None) -> int:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return 0
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, count, True)
    except OSError:
        return 0
    return count[0]


class ConnectionLimiter:
    def __init__(self, limit: int = DEFAULT_LIMIT):
        self.limit = limit
        self._waiting: dict[WaitingConnection, None] = {}  # insertion order: oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def admit(self, connection: WaitingConnection) -> None:
        while len(self._waiting) >= self.limit:
            self._evict()
        self._waiting[connection] = None

    def _evict(self) -> None:
        # Connections with unread data are those accepted in this burst and not read yet: at most
        # the backlog, and usually the first candidate is an idle one.
        victim = next((c for c in self._waiting if unread_bytes(c.transport) == 0), None)
        if victim is None:
            victim = next(iter(self._waiting))
        del self._waiting[victim]
        if victim.transport is not None:
            victim.transport.abort()
        self.evicted += 1

    def done_waiting(self, connection: WaitingConnection) -> None:
        """The request is in (or the connection gone): from here on it is not evicted."""
        self._waiting.pop(connection, None)


class WaitingConnection(asyncio.Protocol):
    """A TCP connection under a limiter (the API's, DNS over TCP's): admitted when it opens,
    released when it closes, and `timed_out()` after `timeout` seconds unless the subclass calls
    `restart_timer()` when it makes progress."""

    timeout: float

    def __init__(self, limiter: ConnectionLimiter):
        self.limiter = limiter
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.limiter.admit(self)
        self.restart_timer()

    def restart_timer(self) -> None:
        if self.timer:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self.timed_out)

    def timed_out(self) -> None:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        self.limiter.done_waiting(self)
        if self.timer:
            self.timer.cancel()
        self.transport = None
