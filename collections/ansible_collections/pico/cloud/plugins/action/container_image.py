# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
"""Controller side of pico.cloud.container_image: copy an archive only when the node lacks its image.

The archive is read here first (image ID, tags), so a wrong file fails before the node is
touched; the module then probes the node, and only a node that lacks the image gets the copy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import shlex
import uuid

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.pico.cloud.plugins.module_utils._image_archive import ArchiveError, archive_problem, read_archive

MODULE = "pico.cloud.container_image"


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("archive") or boolean(args.get("remote_src", False), strict=False):
            result.update(self._execute_module(MODULE, module_args=args, task_vars=task_vars))
            return result

        try:
            source = self._find_needle("files", args["archive"])
        except AnsibleError:
            return dict(result, failed=True, msg="image archive %s does not exist on the controller; nothing was changed"
                        % args["archive"])
        try:
            info = read_archive(source)
        except ArchiveError as exc:
            return dict(result, failed=True, msg="%s; nothing was changed" % exc)
        problem = archive_problem(info, args["name"], args.get("digest"))
        if problem:
            return dict(result, failed=True, msg=problem)

        common = dict((key, args[key]) for key in ("name", "api_socket", "staging_dir", "storage_dir") if key in args)
        probe = self._execute_module(MODULE, task_vars=task_vars, module_args=dict(
            common, digest=info["image_id"], probe_size=[info["size"], info["unpacked_size"]]))
        if probe.get("failed") or probe.get("present"):
            result.update(probe)
            result["transferred_bytes"] = 0
            return result
        if probe.get("space_problem"):
            return dict(result, failed=True, msg=probe["space_problem"], transferred_bytes=0)
        if self._task.check_mode:
            diff = dict(before=probe["diff"]["before"], after="%s: %s\n" % (args["name"], info["image_id"]))
            return dict(result, changed=True, action="loaded", present=True, image_id=info["image_id"],
                        previous_id=probe.get("previous_id"), transferred_bytes=0, diff=diff)

        staging_dir = args.get("staging_dir", "/var/tmp")
        staged = posixpath.join(staging_dir, ".pico-image-%s.tar" % uuid.uuid4().hex)
        try:
            self._transfer_file(source, staged)
            loaded = self._execute_module(MODULE, task_vars=task_vars, module_args=dict(
                common, archive=staged, digest=info["image_id"]))
        finally:
            self._low_level_execute_command("rm -f %s" % shlex.quote(staged), sudoable=True)
        result.update(loaded)
        result["transferred_bytes"] = info["size"]
        return result
