#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: container_image
short_description: Make sure an image is on the node, from an image archive (offline) or a registry
version_added: "0.2.0"
description:
  - Ensures the image O(name) is present in the node's container runtime, talking to the
    Docker-compatible API socket, so it works the same with Podman and Docker.
  - With O(archive), the image comes from a C(docker save)/C(podman save) archive or an OCI
    layout tar. The archive is read on the controller first; it is copied to the node and loaded
    B(only when the node lacks that exact image) (same image ID, the SHA-256 of its config), so a
    re-run moves no bytes. The staged copy is deleted after loading.
  - With O(pull=true) and no archive, a missing image is pulled from its registry (or the mirrors
    the container_runtime role configured).
  - With neither, nothing is loaded; RV(present) tells whether the image is there.
  - Before copying, free space is checked on the staging directory and on the runtime's storage;
    too little fails with both numbers, and nothing on the node changes.
options:
  name:
    description: Image name with tag, as containers will use it (for example C(pico/demo:1.0.0)).
    type: str
    required: true
  archive:
    description:
      - Image archive on the controller (or on the node with O(remote_src=true)). It must hold
        one image, tagged O(name).
    type: path
  remote_src:
    description: O(archive) is already on the node.
    type: bool
    default: false
  digest:
    description:
      - Expected image ID (C(sha256:...)). An archive or pulled image with another ID fails
        before anything is loaded (archives) or is reported (pulls).
    type: str
  pull:
    description: Pull a missing image from its registry when no O(archive) is given.
    type: bool
    default: false
  staging_dir:
    description:
      - Node directory the archive is copied to while it loads. The default is on disk, not in
        RAM (/tmp is a tmpfs on many boards, and a 512 MB board cannot hold archives there).
    type: path
    default: /var/tmp
  storage_dir:
    description:
      - The runtime's image storage, for the free-space check. Default is the first that exists of
        C(/var/lib/containers/storage) (Podman) and C(/var/lib/docker) (Docker).
    type: path
  probe_size:
    description:
      - Internal, set by the action plugin before it copies an archive, to the archive's size and
        its unpacked size in bytes. Reports whether the image is present and whether there is room
        for both, and changes nothing. Leave unset.
    type: list
    elements: int
extends_documentation_fragment:
  - pico.cloud.attributes
  - pico.cloud.docker_api
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the image ID the name resolves to before and after.
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Load the demo service offline, only where it is missing
  pico.cloud.container_image:
    name: pico/demo:2.0.0
    archive: images/pico-demo_2.0.0_armel.tar

- name: Pull from the site's registry mirror when it is missing
  pico.cloud.container_image:
    name: registry.local:5000/tools/busybox:1.36
    pull: true
"""

RETURN = r"""
image_id:
  description: ID of the image O(name) resolves to after the task (null in check mode when it would be loaded).
  type: str
  returned: always
  sample: sha256:0b2f8a1a2994ddbadfa2bd9cd14f1e87affe839cbaad88e20cf7451bcced148d
previous_id:
  description: ID O(name) resolved to before, or null.
  type: str
  returned: always
present:
  description: Whether the image is on the node after the task.
  type: bool
  returned: always
action:
  description: What was done, one of V(none), V(tagged), V(loaded), V(pulled).
  type: str
  returned: always
transferred_bytes:
  description: Bytes copied to the node (0 when the image was already there).
  type: int
  returned: when O(archive) is on the controller
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._docker_api import DOCKER_API_ARGUMENT_SPEC, DockerAPI, DockerAPIError
from ansible_collections.pico.cloud.plugins.module_utils._image_archive import (
    ArchiveError, archive_problem, read_archive, split_name)

MIB = 1024 * 1024
# Room left on a file system after a load, so the runtime, the journal and the agent can still write.
SPACE_RESERVE = 64 * MIB
STORAGE_ROOTS = ("/var/lib/containers/storage", "/var/lib/docker")


def free_bytes(path):
    """Free bytes for root on the file system holding path (its nearest existing parent)."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    stats = os.statvfs(path or "/")
    return stats.f_bavail * stats.f_frsize, os.stat(path or "/").st_dev


def storage_root(path):
    """The runtime's image storage: as given, or the first of Podman's and Docker's that exists.
    (Not asked of the API: Podman's /info runs the OCI runtime and is slow on a Pi Zero.)"""
    if path:
        return path
    for candidate in STORAGE_ROOTS:
        if os.path.isdir(candidate):
            return candidate
    return STORAGE_ROOTS[0]


def check_space(storage, unpacked_size, staging_dir=None, archive_size=0):
    """None when there is room; else a message naming each short file system and the fix."""
    storage_free, storage_dev = free_bytes(storage)
    need = {storage_dev: unpacked_size + SPACE_RESERVE}
    free = {storage_dev: (storage, storage_free)}
    if staging_dir:
        staging_free, staging_dev = free_bytes(staging_dir)
        need[staging_dev] = need.get(staging_dev, 0) + archive_size
        free.setdefault(staging_dev, (staging_dir, staging_free))
    short = ["%s has %d MiB free, needs %d MiB" % (free[dev][0], free[dev][1] // MIB, need[dev] // MIB)
             for dev in need if free[dev][1] < need[dev]]
    if not short:
        return None
    return ("not enough disk space to load the image (%s). Free space on the node, or keep fewer "
            "old versions (pico_container_runtime_image_keep); nothing was changed" % "; ".join(short))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            archive=dict(type="path"),
            remote_src=dict(type="bool", default=False),
            digest=dict(type="str"),
            pull=dict(type="bool", default=False),
            staging_dir=dict(type="path", default="/var/tmp"),
            storage_dir=dict(type="path"),
            # Set by the action plugin: report free space for a copy of this size, load nothing.
            probe_size=dict(type="list", elements="int"),
            **DOCKER_API_ARGUMENT_SPEC
        ),
        mutually_exclusive=[("archive", "pull")],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    api = DockerAPI(params["api_socket"])
    expected = params["digest"]
    if expected and not expected.startswith("sha256:"):
        module.fail_json(msg="digest %r is not an image ID: give it as sha256:<64 hex digits>" % expected)

    try:
        info = None
        if params["archive"]:
            info = read_archive(params["archive"])
            check_archive(module, info, name, expected)
            expected = info["image_id"]
        current = api.image(name)
        current_id = current["Id"] if current else None
        result = dict(changed=False, previous_id=current_id, image_id=current_id, present=current is not None,
                      action="none", diff=dict(before="%s: %s\n" % (name, current_id or "absent"), after=""))

        if current and (not expected or current_id == expected):
            finish(module, result)

        if expected and api.image(expected):
            # The image is there under another name (or the tag moved): only the name needs setting.
            result["action"] = "tagged"
            if not module.check_mode:
                repository, tag = split_name(name)
                api.tag(expected, repository, tag)
        elif params["probe_size"] is not None:
            archive_size, unpacked_size = params["probe_size"]
            result["space_problem"] = check_space(storage_root(params["storage_dir"]), unpacked_size,
                                                  params["staging_dir"], archive_size)
            finish(module, result)
        elif params["archive"]:
            result["action"] = "loaded"
            if not module.check_mode:
                problem = check_space(storage_root(params["storage_dir"]), info["unpacked_size"])
                if problem:
                    module.fail_json(msg=problem, **result)
                with open(params["archive"], "rb") as handle:
                    result["messages"] = api.load(handle, info["size"])
        elif params["pull"]:
            result["action"] = "pulled"
            if not module.check_mode:
                result["messages"] = api.pull(*split_name(name))
        else:
            finish(module, result)  # report only: the image is missing and there is no source

        result["changed"] = True
        result["present"] = True
        result["image_id"] = expected
        if not module.check_mode:
            loaded = api.image(name)
            result["image_id"] = loaded["Id"] if loaded else None
            if not loaded:
                module.fail_json(msg="%s finished but %s is not on the node" % (result["action"], name), **result)
            if expected and loaded["Id"] != expected:
                module.fail_json(msg="digest mismatch: %s is %s after the %s, expected %s"
                                 % (name, loaded["Id"], result["action"], expected), **result)
        finish(module, result)
    except ArchiveError as exc:
        module.fail_json(msg="%s; nothing was changed" % exc)
    except DockerAPIError as exc:
        module.fail_json(msg=str(exc))


def check_archive(module, info, name, expected):
    problem = archive_problem(info, name, expected)
    if problem:
        module.fail_json(msg=problem)


def finish(module, result):
    result["diff"]["after"] = "%s: %s\n" % (module.params["name"], result["image_id"] if result["present"] else "absent")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
