"""container_image and container_image_prune against a real Docker engine (this machine's dockerd).

The modules speak the Docker Engine API on a unix socket, as on a node; the images are tiny
one-layer images under a repository unique to each test, removed afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import uuid

import pytest

SOCKET = "/var/run/docker.sock"


@pytest.fixture
def repo():
    if not os.path.exists(SOCKET):
        pytest.skip("no Docker engine on this machine (make bootstrap starts one)")
    name = "pico-test/img-%s" % uuid.uuid4().hex[:8]
    yield name
    listed = subprocess.run(["docker", "images", "-q", "--no-trunc", name], capture_output=True, text=True, check=False).stdout.split()
    containers = subprocess.run(["docker", "ps", "-aq", "--filter", "label=pico-test=%s" % name],
                                capture_output=True, text=True, check=False).stdout.split()
    if containers:
        subprocess.run(["docker", "rm", "-f", *containers], capture_output=True, check=False)
    if listed:
        subprocess.run(["docker", "rmi", "-f", *set(listed)], capture_output=True, check=False)


def image_id(name):
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def test_loads_once_then_leaves_the_image_alone(run_module, image_archive, repo):
    path, expected = image_archive(repo + ":1.0")
    first = run_module("container_image", name=repo + ":1.0", archive=str(path), api_socket=SOCKET)
    assert (first["changed"], first["action"], first["image_id"], first["previous_id"]) == (True, "loaded", expected, None)
    assert image_id(repo + ":1.0") == expected
    again = run_module("container_image", name=repo + ":1.0", archive=str(path), api_socket=SOCKET)
    assert (again["changed"], again["action"], again["present"]) == (False, "none", True)


def test_check_mode_loads_nothing(run_module, image_archive, repo):
    path, expected = image_archive(repo + ":1.0")
    result = run_module("container_image", check=True, diff=True, name=repo + ":1.0", archive=str(path), api_socket=SOCKET)
    assert result["changed"] is True
    assert result["diff"]["before"] == "%s:1.0: absent\n" % repo
    assert result["diff"]["after"] == "%s:1.0: %s\n" % (repo, expected)
    assert image_id(repo + ":1.0") is None


def test_digest_mismatch_fails_before_loading_and_keeps_the_current_image(run_module, image_archive, repo):
    old_path, old_id = image_archive(repo + ":1.0", payload=b"old")
    run_module("container_image", name=repo + ":1.0", archive=str(old_path), api_socket=SOCKET)
    new_path, new_id = image_archive(repo + ":1.0", payload=b"new")
    result = run_module("container_image", name=repo + ":1.0", archive=str(new_path), digest=old_id, api_socket=SOCKET)
    assert result.get("failed") is True
    assert "digest mismatch" in result["msg"] and new_id in result["msg"] and "nothing was changed" in result["msg"]
    assert image_id(repo + ":1.0") == old_id
    assert image_id(new_id) is None


def test_a_new_build_under_the_same_name_replaces_the_tag(run_module, image_archive, repo):
    old_path, old_id = image_archive(repo + ":1.0", payload=b"old")
    run_module("container_image", name=repo + ":1.0", archive=str(old_path), api_socket=SOCKET)
    new_path, new_id = image_archive(repo + ":1.0", payload=b"new")
    result = run_module("container_image", name=repo + ":1.0", archive=str(new_path), api_socket=SOCKET)
    assert (result["changed"], result["previous_id"], result["image_id"]) == (True, old_id, new_id)
    subprocess.run(["docker", "rmi", old_id], capture_output=True, check=False)  # untagged now: the fixture cannot find it


def test_image_present_under_another_name_is_only_tagged(run_module, image_archive, repo):
    path, expected = image_archive(repo + ":1.0")
    run_module("container_image", name=repo + ":1.0", archive=str(path), api_socket=SOCKET)
    result = run_module("container_image", name=repo + ":stable", digest=expected, api_socket=SOCKET)
    assert (result["changed"], result["action"]) == (True, "tagged")
    assert image_id(repo + ":stable") == expected


def test_without_a_source_it_only_reports(run_module, repo):
    result = run_module("container_image", name=repo + ":9.9", api_socket=SOCKET)
    assert (result["changed"], result["present"], result.get("failed", False)) == (False, False, False)


def test_a_file_that_is_not_an_image_is_refused(run_module, tmp_path, repo):
    path = tmp_path / "notes.tar"
    path.write_text("plain text\n")
    result = run_module("container_image", name=repo + ":1.0", archive=str(path), api_socket=SOCKET)
    assert result["failed"] is True
    assert "not an image archive" in result["msg"]


def test_probe_reports_too_little_space_without_changing_anything(run_module, image_archive, repo):
    dummy, expected = image_archive(repo + ":1.0")
    huge = 1 << 50  # a petabyte: no file system here has that
    result = run_module("container_image", name=repo + ":1.0", digest=expected, probe_size=[huge, huge], api_socket=SOCKET)
    assert result["changed"] is False and result["present"] is False
    assert "not enough disk space" in result["space_problem"]
    assert "pico_container_runtime_image_keep" in result["space_problem"]


def test_unreachable_socket_names_the_fix(run_module, tmp_path):
    """Needs no engine: the socket is one nobody listens on."""
    result = run_module("container_image", name="pico-test/none:1.0", api_socket=str(tmp_path / "none.sock"))
    assert result["failed"] is True
    assert "cannot reach the container API" in result["msg"] and "container_runtime" in result["msg"]


def _load_versions(run_module, image_archive, repo, versions):
    ids = {}
    for day, version in enumerate(versions, start=1):
        path, ids[version] = image_archive("%s:%s" % (repo, version), payload=version.encode(),
                                           created="2024-01-%02dT00:00:00Z" % day)
        run_module("container_image", name="%s:%s" % (repo, version), archive=str(path), api_socket=SOCKET)
    return ids


def test_prune_keeps_the_newest_and_what_containers_use(run_module, image_archive, repo):
    _load_versions(run_module, image_archive, repo, ["1.9", "1.10", "1.11", "2.0"])
    # A stopped container still needs its image.
    subprocess.run(["docker", "create", "--label", "pico-test=%s" % repo, repo + ":1.9"], check=True, capture_output=True)
    check = run_module("container_image_prune", check=True, keep=2, repositories=[repo], dangling=False, api_socket=SOCKET)
    assert check["changed"] is True and image_id(repo + ":1.10")
    result = run_module("container_image_prune", keep=2, repositories=[repo], protect=[repo + ":1.10"],
                        dangling=False, api_socket=SOCKET)
    assert result["removed"] == []
    assert sorted(result["kept_in_use"]) == [repo + ":1.9"]
    assert sorted(result["kept_protected"]) == [repo + ":1.10"]
    result = run_module("container_image_prune", keep=2, repositories=[repo], dangling=False, api_socket=SOCKET)
    assert result["removed"] == [repo + ":1.10"]
    assert [v for v in ("1.9", "1.10", "1.11", "2.0") if image_id("%s:%s" % (repo, v))] == ["1.9", "1.11", "2.0"]
    again = run_module("container_image_prune", keep=2, repositories=[repo], dangling=False, api_socket=SOCKET)
    assert again["changed"] is False


def test_prune_refuses_keep_zero(run_module, tmp_path):
    """Refused before the engine is asked: no engine needed."""
    result = run_module("container_image_prune", keep=0, repositories=["pico-test/none"], api_socket=str(tmp_path / "none.sock"))
    assert result["failed"] is True and "keep must be at least 1" in result["msg"]
