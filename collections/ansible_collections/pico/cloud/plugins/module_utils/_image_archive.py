# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""Read what an image archive holds without loading it: image ID, tags, size.

Used on the controller (to decide whether an archive needs copying at all, and to validate it
before anything changes) and on nodes (for archives already there). Understands `docker save` /
`podman save` archives (manifest.json) and OCI image layouts (index.json). The image ID is the
SHA-256 of the image config, computed here from the bytes rather than taken from a file name, so
a tampered or truncated config cannot pass as the expected image.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tarfile

# A manifest or config larger than this is not an image description.
MAX_METADATA_BYTES = 4 * 1024 * 1024


class ArchiveError(Exception):
    """The file is missing, unreadable, or not an image archive; the message says which and why."""


def read_archive(path):
    """Return {"image_id", "repo_tags", "format", "architecture", "size", "unpacked_size"} of the image in path."""
    if not os.path.exists(path):
        raise ArchiveError("image archive %s does not exist" % path)
    if not os.path.isfile(path):
        raise ArchiveError("image archive %s is not a regular file" % path)
    try:
        archive = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError):
        raise ArchiveError("%s is not an image archive (not a tar file); create one with "
                           "`docker save -o FILE IMAGE` or `podman save -o FILE IMAGE`" % path)
    try:
        names = dict((member.name.lstrip("./"), member) for member in archive.getmembers())
        if "manifest.json" in names:
            info = _docker_archive(archive, names, path)
        elif "index.json" in names:
            info = _oci_layout(archive, names, path)
        else:
            raise ArchiveError("%s is a tar file but not an image archive (it has neither manifest.json nor "
                               "index.json); create one with `docker save` or `podman save`" % path)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError("%s is damaged: %s" % (path, exc))
    finally:
        archive.close()
    info["size"] = os.path.getsize(path)
    # What the layers take once unpacked (a compressed archive is larger inside).
    info["unpacked_size"] = sum(member.size for member in names.values())
    return info


def _read(archive, names, name, path):
    member = names.get(name.lstrip("./"))
    if member is None or not member.isfile():
        raise ArchiveError("%s is not a complete image archive: %s is missing" % (path, name))
    if member.size > MAX_METADATA_BYTES:
        raise ArchiveError("%s: %s is %d bytes, too large for image metadata" % (path, name, member.size))
    return archive.extractfile(member).read()


def _json(data, name, path):
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError("%s: %s is not valid JSON (%s)" % (path, name, exc))


def _describe(config_bytes, config_name, path, repo_tags, fmt):
    config = _json(config_bytes, config_name, path)
    if not isinstance(config, dict) or "rootfs" not in config:
        raise ArchiveError("%s: %s is not an image config (no rootfs)" % (path, config_name))
    return {
        "image_id": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
        "repo_tags": repo_tags,
        "format": fmt,
        "architecture": "/".join(p for p in (config.get("os"), config.get("architecture"), config.get("variant")) if p),
    }


def _docker_archive(archive, names, path):
    manifest = _json(_read(archive, names, "manifest.json", path), "manifest.json", path)
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict) or "Config" not in manifest[0]:
        raise ArchiveError("%s: manifest.json does not describe an image" % path)
    if len(manifest) > 1:
        raise ArchiveError("%s holds %d images; give one archive per image" % (path, len(manifest)))
    entry = manifest[0]
    for layer in entry.get("Layers") or []:
        if layer.lstrip("./") not in names:
            raise ArchiveError("%s is not a complete image archive: layer %s is missing" % (path, layer))
    config_bytes = _read(archive, names, entry["Config"], path)
    return _describe(config_bytes, entry["Config"], path, list(entry.get("RepoTags") or []), "docker-archive")


def _oci_blob(archive, names, digest, path):
    algorithm, dummy, hexdigest = (digest or "").partition(":")
    if algorithm != "sha256" or not hexdigest:
        raise ArchiveError("%s: unsupported digest %r" % (path, digest))
    return _read(archive, names, "blobs/sha256/" + hexdigest, path)


def _oci_layout(archive, names, path):
    index = _json(_read(archive, names, "index.json", path), "index.json", path)
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not manifests:
        raise ArchiveError("%s: index.json lists no image" % path)
    if len(manifests) > 1:
        raise ArchiveError("%s holds %d images; give one archive per image" % (path, len(manifests)))
    descriptor = manifests[0]
    manifest = _json(_oci_blob(archive, names, descriptor.get("digest"), path), "image manifest", path)
    config_digest = (manifest.get("config") or {}).get("digest") if isinstance(manifest, dict) else None
    if not config_digest:
        raise ArchiveError("%s: the image manifest names no config (is this an image index of several platforms?)" % path)
    config_bytes = _oci_blob(archive, names, config_digest, path)
    ref = (descriptor.get("annotations") or {}).get("io.containerd.image.name") or \
        (descriptor.get("annotations") or {}).get("org.opencontainers.image.ref.name")
    return _describe(config_bytes, config_digest, path, [ref] if ref and ":" in ref else [], "oci-archive")


def archive_problem(info, name, expected_id=None):
    """Why this archive cannot provide image `name` (with ID expected_id), or None."""
    if normalize_name(name) not in [normalize_name(tag) for tag in info["repo_tags"]]:
        return ("the archive holds %s, not %s: check the image name or the archive; nothing was changed"
                % (", ".join(info["repo_tags"]) or "an untagged image", name))
    if expected_id and info["image_id"] != expected_id:
        return ("digest mismatch: the archive's image is %s, expected %s; nothing was changed"
                % (info["image_id"], expected_id))
    return None


def normalize_name(name):
    """Compare image names as Docker does: docker.io/library/ and docker.io/ are implied; Podman
    qualifies names it loads (docker.io/, localhost/), so both spellings must match."""
    for prefix in ("docker.io/library/", "docker.io/", "localhost/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


def split_name(name):
    """'registry:5000/a/b:tag' -> ('registry:5000/a/b', 'tag')."""
    name = normalize_name(name)
    repository, dummy, tag = name.rpartition(":")
    return repository, tag
