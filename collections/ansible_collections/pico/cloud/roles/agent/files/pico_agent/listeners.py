"""The agent's listening sockets (API, DNS over TCP and UDP), taken from systemd when it passes
them (socket activation: pico-agent.socket). systemd binds them as root and holds them while the
agent restarts, so no other local user can take the agent's ports in between and answer in its
name. Without them (tests, a node without the socket unit) the agent binds its own.

See sd_listen_fds(3): the sockets are file descriptors 3, 4, ... of a process whose pid is
LISTEN_PID, LISTEN_FDS of them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

FIRST_PASSED_FD = 3


def passed_by_systemd(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The sockets systemd passed to this process, once: the variables are removed, so a child
    never takes them for its own."""
    environ = os.environ if environ is None else environ
    meant_for_us = environ.get("LISTEN_PID") == str(os.getpid())
    count = environ.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(name, None)
    if not meant_for_us or not count.isdigit():
        return []
    passed = []
    for fd in range(FIRST_PASSED_FD, FIRST_PASSED_FD + int(count)):
        os.set_inheritable(fd, False)
        passed.append(socket.socket(fileno=fd))  # family and type read from the socket itself
    return passed


def take(passed: list[socket.socket], kind: socket.SocketKind, address: str, port: int) -> socket.socket | None:
    """Remove and return the passed socket of this kind bound to address:port, if there is one."""
    for sock in passed:
        if sock.type == kind and sock.getsockname()[:2] == (address, port):
            passed.remove(sock)
            return sock
    return None
