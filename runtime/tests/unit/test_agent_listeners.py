"""Sockets passed by systemd (pico_agent.listeners): taken only when meant for this process, and
the variables never reach a child. Passing real sockets: tests/integration/test_hostile_input.py."""

import os
import socket

from pico_agent import listeners


def test_sockets_meant_for_another_process_are_not_taken():
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "3", "LISTEN_FDNAMES": "a:b:c", "PATH": "/bin"}
    assert listeners.passed_by_systemd(environ) == []
    assert environ == {"PATH": "/bin"}


def test_a_malformed_count_takes_nothing():
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "-1"}
    assert listeners.passed_by_systemd(environ) == [] and environ == {}


def test_take_matches_kind_address_and_port():
    stream, datagram = socket.socket(socket.AF_INET, socket.SOCK_STREAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stream.bind(("127.0.0.1", 0))
        port = stream.getsockname()[1]
        datagram.bind(("127.0.0.1", port))
        passed = [stream, datagram]
        assert listeners.take(passed, socket.SOCK_DGRAM, "127.0.0.1", port) is datagram
        assert listeners.take(passed, socket.SOCK_DGRAM, "127.0.0.1", port) is None
        assert listeners.take(passed, socket.SOCK_STREAM, "127.0.0.2", port) is None
        assert listeners.take(passed, socket.SOCK_STREAM, "127.0.0.1", port) is stream and passed == []
    finally:
        stream.close()
        datagram.close()
