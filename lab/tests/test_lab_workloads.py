"""Demo workload archives: what goes into the image, and that the same input gives the same bytes."""
import io
import json
import tarfile
from pathlib import PurePosixPath

from lab import workloads


def test_selects_the_interpreter_its_libraries_and_a_trimmed_stdlib():
    wanted = [
        "usr/bin/python3.11", "usr/bin/python3", "lib", "lib64",
        "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/arm-linux-gnueabi/libgcc_s.so.1",
        "usr/lib/ld-linux.so.3", "usr/lib64/ld-linux-x86-64.so.2",
        "usr/lib/python3.11/http/server.py", "usr/lib/python3.11/json/__pycache__/decoder.cpython-311.pyc",
        "usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so",
    ]
    left_out = [
        "usr/bin/perl", "usr/lib/x86_64-linux-gnu/libsystemd.so.0", "usr/lib/python3.11/test/test_os.py",
        "usr/lib/python3.11/tkinter/__init__.py", "usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
        "usr/lib/python3.11/json/__pycache__/decoder.cpython-311.opt-1.pyc", "etc/passwd",
    ]
    assert [p for p in wanted if not workloads._wanted(PurePosixPath(p))] == []
    assert [p for p in left_out if workloads._wanted(PurePosixPath(p))] == []


def _files():
    python = tarfile.TarInfo("./usr/bin/python3.11")
    python.mode, python.mtime, python.uid = 0o755, 123, 1000
    link = tarfile.TarInfo("./usr/bin/python3")
    link.type, link.linkname = tarfile.SYMTYPE, "python3.11"
    return [(python, b"\x7fELF fake"), (link, b"")]


def test_same_input_same_bytes_same_image_id(tmp_path):
    first = workloads._write_archive(tmp_path / "a.tar", _files(), "armel", "1.0.0")
    second = workloads._write_archive(tmp_path / "b.tar", _files(), "armel", "1.0.0")
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert workloads._write_archive(tmp_path / "c.tar", _files(), "armel", "2.0.0") != first


def test_archive_is_a_docker_save_archive_for_the_board(tmp_path):
    image_id = workloads._write_archive(tmp_path / "a.tar", _files(), "armel", "2.0.0")
    with tarfile.open(tmp_path / "a.tar") as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        config = json.load(archive.extractfile(manifest[0]["Config"]))
        layer = tarfile.open(fileobj=io.BytesIO(archive.extractfile(manifest[0]["Layers"][0]).read()))
        names = layer.getnames()
        version = layer.extractfile("app/VERSION").read()
    assert manifest[0]["RepoTags"] == ["pico/demo:2.0.0"]
    assert "sha256:" + manifest[0]["Config"].removesuffix(".json") == image_id
    assert (config["architecture"], config["variant"]) == ("arm", "v6")  # the Pi Zero's platform
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "2.0.0"
    assert version == b"2.0.0\n"
    assert {"app/server.py", "usr/bin/python3.11", "usr/bin", "tmp"} <= set(names)
    # every entry owned by root with the fixed mtime: nothing from the build machine leaks in
    assert {(m.uid, m.mtime) for m in layer.getmembers()} == {(0, workloads.FIXED_MTIME)}
