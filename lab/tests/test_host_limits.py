"""The host limits a lab of many nodes needs are raised before they start, never lowered."""
import ctypes
import os

import pytest

from lab import host_limits
from lab.shell import LabError


def limits(tmp_path, value):
    (tmp_path / "max_user_instances").write_text(f"{value}\n")
    return tmp_path


def test_a_stock_limit_is_raised_to_fit_thirty_two_nodes(tmp_path, monkeypatch):
    monkeypatch.setattr(host_limits, "inotify_instances_in_use", lambda: 150)
    said = host_limits.make_room_for_nodes(32, limits(tmp_path, 128))
    wanted = 150 + 32 * host_limits.PER_NODE_INSTANCES + host_limits.HEADROOM
    assert int((tmp_path / "max_user_instances").read_text()) == wanted
    assert said == f"raised fs.inotify.max_user_instances from 128 to {wanted} for 32 nodes"


def test_a_limit_with_room_is_left_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setattr(host_limits, "inotify_instances_in_use", lambda: 10)
    assert host_limits.make_room_for_nodes(3, limits(tmp_path, 8192)) is None
    assert (tmp_path / "max_user_instances").read_text() == "8192\n"


def test_a_limit_that_cannot_be_raised_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(host_limits, "inotify_instances_in_use", lambda: 0)
    limits(tmp_path, 16)
    (tmp_path / "max_user_instances").chmod(0o444)
    monkeypatch.setattr(host_limits.Path, "write_text", _refuse)
    with pytest.raises(LabError, match=r"sysctl -w fs.inotify.max_user_instances=\d+"):
        host_limits.make_room_for_nodes(32, tmp_path)


def _refuse(self, *args, **kwargs):
    raise PermissionError("read-only")


def test_instances_in_use_are_counted_on_this_machine(tmp_path):
    """Counted as on the whole machine, but over a /proc that shows this process only: other
    processes open and close instances meanwhile (a test beside this one boots systemd)."""
    (tmp_path / str(os.getpid())).symlink_to(f"/proc/{os.getpid()}")
    libc = ctypes.CDLL(None, use_errno=True)
    before = host_limits.inotify_instances_in_use(tmp_path)
    fds = [libc.inotify_init() for _ in range(3)]
    try:
        assert all(fd >= 0 for fd in fds)
        assert host_limits.inotify_instances_in_use(tmp_path) == before + 3
        assert host_limits.inotify_instances_in_use() >= 3  # the machine's count holds them too
    finally:
        for fd in fds:
            os.close(fd)
