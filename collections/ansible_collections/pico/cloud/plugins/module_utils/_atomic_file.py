# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""Write a file so that a crash or power cut leaves either the old or the new content.

SD cards on edge boards lose power often; a half-written /etc/fstab or config.txt can stop a
board from booting. Callers pass the full new content; it is written to a temp file in the same
directory, fsynced, then moved over the target with AnsibleModule.atomic_move (which keeps
ownership, mode and SELinux context).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import tempfile


def write_atomic(module, path, content, mode=None):
    """Replace path with content (str). Raises nothing: fails the module with a clear message.

    With mode, the file gets exactly that mode before it appears under its name (for secrets:
    atomic_move would give a new file the umask's mode for a moment).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp_path = tempfile.mkstemp(prefix=".pico-", dir=directory)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            module.fail_json(msg="cannot write %s: %s is on a read-only file system (a card the kernel set "
                                 "read-only, or mounted so: `mount -o remount,rw %s`); the file is unchanged"
                                 % (path, directory, directory))
        module.fail_json(msg="cannot write %s: %s (is the file system full?); the file is unchanged" % (path, exc))
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        os.unlink(tmp_path)
        module.fail_json(msg="cannot write %s: %s (is the file system full?); the file is unchanged" % (path, exc))
    if mode is None:
        module.atomic_move(tmp_path, path)
        return
    try:
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        module.fail_json(msg="cannot replace %s: %s; the file is unchanged" % (path, exc))
