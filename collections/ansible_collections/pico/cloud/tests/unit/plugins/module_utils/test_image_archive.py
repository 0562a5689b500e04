"""Reading image archives on the controller: IDs computed from the bytes, and clear errors."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import tarfile

import pytest

from ansible_collections.pico.cloud.plugins.module_utils._image_archive import (
    ArchiveError, archive_problem, normalize_name, read_archive, split_name)


@pytest.mark.parametrize("oci", [False, True], ids=["docker-archive", "oci-layout"])
def test_reads_id_and_tags_without_loading(image_archive, oci):
    path, image_id = image_archive("pico/test:1.0", oci=oci)
    info = read_archive(str(path))
    assert info["image_id"] == image_id
    assert info["repo_tags"] == ["pico/test:1.0"]
    assert info["format"] == ("oci-archive" if oci else "docker-archive")
    assert info["architecture"] == "linux/amd64"
    assert info["size"] == path.stat().st_size
    assert info["unpacked_size"] > 0
    assert archive_problem(info, "pico/test:1.0") is None
    assert archive_problem(info, "docker.io/pico/test:1.0", image_id) is None


def test_real_demo_archive_id_matches_what_docker_reports():
    """The lab's demo archives: the ID read here is the one `docker load` gives (checked in the lab tests)."""
    stamp = "/var/cache/pico-lab/workloads/pico-demo_amd64.recipe"
    try:
        ids = json.load(open(stamp))["ids"]
    except OSError:
        pytest.skip("no demo archives built yet (make images)")
    info = read_archive("/var/cache/pico-lab/workloads/pico-demo_1.0.0_amd64.tar")
    assert info["image_id"] == ids["1.0.0"]


def test_missing_file(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        read_archive(str(tmp_path / "nope.tar"))


def test_not_a_tar(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    with pytest.raises(ArchiveError, match=r"not an image archive \(not a tar file\).*docker save"):
        read_archive(str(path))


def test_tar_without_image_metadata(tmp_path):
    path = tmp_path / "backup.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(__file__, arcname="some-file.py")
    with pytest.raises(ArchiveError, match="neither manifest.json nor index.json"):
        read_archive(str(path))


def test_truncated_archive_missing_a_layer(tmp_path, image_archive):
    good, dummy = image_archive("pico/test:1.0")
    broken = tmp_path / "broken.tar"
    with tarfile.open(good) as src, tarfile.open(broken, "w") as dst:
        for member in src.getmembers():
            if not member.name.endswith("layer.tar"):
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(ArchiveError, match="layer .* is missing"):
        read_archive(str(broken))


def test_another_image_under_the_same_name_is_a_digest_mismatch(image_archive):
    dummy, original = image_archive("pico/test:1.0", payload=b"a")
    other_path, other = image_archive("pico/test:1.0", payload=b"b")
    assert original != other
    info = read_archive(str(other_path))
    assert "digest mismatch" in archive_problem(info, "pico/test:1.0", original)


def test_wrong_name(image_archive):
    path, dummy = image_archive("pico/test:1.0")
    problem = archive_problem(read_archive(str(path)), "pico/test:2.0")
    assert "holds pico/test:1.0, not pico/test:2.0" in problem


@pytest.mark.parametrize("given,expected", [
    ("alpine", "alpine:latest"),
    ("docker.io/library/alpine:3.19", "alpine:3.19"),
    ("docker.io/pico/demo:1.0.0", "pico/demo:1.0.0"),
    ("localhost/pico/demo:1.0.0", "pico/demo:1.0.0"),
    ("registry.local:5000/tools/busybox", "registry.local:5000/tools/busybox:latest"),
])
def test_names_compare_as_docker_and_podman_spell_them(given, expected):
    assert normalize_name(given) == expected


def test_split_name_keeps_registry_ports():
    assert split_name("registry.local:5000/a/b:1.2") == ("registry.local:5000/a/b", "1.2")
