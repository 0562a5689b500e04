"""Host limits a lab of many nodes needs, raised before the nodes start (never lowered).

Every node container boots its own systemd, and the kernel counts inotify instances per user
over all containers: systemd, journald, dbus, wireguard-go and Podman hold about 8 on a
provisioned node, all of them root's. Debian's default `fs.inotify.max_user_instances` of 128 is
used up at about 25 nodes; a node's systemd then exits at once with status 255 ("Failed to
allocate manager object: Too many open files").
"""
from __future__ import annotations

import os
from pathlib import Path

from .shell import LabError

INOTIFY = Path("/proc/sys/fs/inotify")
PER_NODE_INSTANCES = 16  # twice what a provisioned node holds
HEADROOM = 128  # for the host's own processes and a second lab beside this one


def inotify_instances_in_use(proc: Path = Path("/proc")) -> int:
    """inotify instances open on this machine now (an upper bound of root's own)."""
    count = 0
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            fds = list(fd_dir.iterdir())
        except OSError:  # the process ended, or is not ours to read
            continue
        for fd in fds:
            try:
                count += os.readlink(fd) == "anon_inode:inotify"
            except OSError:  # closed meanwhile (the listing's own descriptor, for one)
                continue
    return count


def make_room_for_nodes(nodes: int, limits: Path = INOTIFY) -> str | None:
    """Raise max_user_instances so `nodes` more nodes fit; a sentence saying what was raised, or None."""
    path = limits / "max_user_instances"
    current = int(path.read_text())
    wanted = inotify_instances_in_use() + nodes * PER_NODE_INSTANCES + HEADROOM
    if current >= wanted:
        return None
    try:
        path.write_text(f"{wanted}\n")
    except OSError as exc:
        raise LabError(f"{nodes} nodes need fs.inotify.max_user_instances of at least {wanted} (it is {current}) "
                       f"and raising it failed ({exc}): run as root, or `sysctl -w fs.inotify.max_user_instances={wanted}`") from None
    return f"raised fs.inotify.max_user_instances from {current} to {wanted} for {nodes} nodes"
