"""Demo workload images: a small Python HTTP service, as image archives for offline distribution.

No registry is reachable, and a Pi Zero should not carry a 250 MB base image for a 50-line
service, so each archive is assembled here, in Docker's `docker save` format, from a few files
of the lab's own node image of the same architecture: the Python interpreter, the C libraries it
links, the part of the standard library an HTTP server needs, and the app. Nothing runs under
emulation. Every entry gets a fixed owner and mtime, so the same input always gives the same
bytes and the same image ID: a rebuilt lab does not look like a new image to the nodes.

The archives have stable paths (WORKLOAD_DIR/pico-demo_<version>_<debian arch>.tar); a stamp
beside them records the recipe they were built from.
"""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import images
from .model import NodeKind
from .shell import LabError, run

DEMO_IMAGE = "pico/demo"
DEMO_VERSIONS = ("1.0.0", "2.0.0")
DEMO_PORT = 8080
WORKLOAD_DIR = Path("/var/cache/pico-lab/workloads")
APP_SOURCE = Path(__file__).with_name("demo_app.py")
FIXED_MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z

# Docker's names for Debian's architectures. armel is ARMv6 (the Pi Zero), which is arm/v6.
OCI_PLATFORMS = {"armel": ("arm", "v6"), "arm64": ("arm64", "v8"), "amd64": ("amd64", None)}

PYTHON = "usr/bin/python3.11"
# What python3.11 links (`ldd`); armel adds libgcc_s for its 64-bit atomics.
LIBRARIES = ("ld-linux", "libc.so.6", "libm.so.6", "libz.so.1", "libexpat.so.1", "libgcc_s.so.1")
STDLIB = "usr/lib/python3.11"
STDLIB_LEFT_OUT = {
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils",
    "sqlite3", "curses", "dbm", "venv", "unittest", "ctypes", "multiprocessing", "asyncio",
    "xmlrpc", "wsgiref", "site-packages", "dist-packages",
}
# Extension modules without outside dependencies that the service may import; the rest (ssl,
# ctypes, sqlite, curses...) would need more libraries.
DYNLOAD_KEPT = ("_json.", "_contextvars.", "_queue.", "_typing.")


@dataclass(frozen=True)
class Workload:
    name: str  # image name with tag
    version: str
    arch: str  # Debian architecture
    archive: Path
    image_id: str  # sha256 of the image config: what `docker images --no-trunc` shows


def archive_path(arch: str, version: str) -> Path:
    return WORKLOAD_DIR / f"pico-demo_{version}_{arch}.tar"


def recipe_hash(kind: NodeKind) -> str:
    source = hashlib.sha256(Path(__file__).read_bytes() + APP_SOURCE.read_bytes()).hexdigest()
    blob = json.dumps({"node": images.recipe_hash(kind), "source": source, "versions": DEMO_VERSIONS})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_workloads(kinds: list[NodeKind]) -> dict[str, list[Workload]]:
    """Build the demo archives each kind's architecture lacks; return them by kind name."""
    by_arch: dict[str, list[Workload]] = {}
    for kind in kinds:
        if kind.debian_arch not in by_arch:
            by_arch[kind.debian_arch] = _ensure_arch(kind)
    return {kind.name: by_arch[kind.debian_arch] for kind in kinds}


def _ensure_arch(kind: NodeKind) -> list[Workload]:
    arch = kind.debian_arch
    stamp = WORKLOAD_DIR / f"pico-demo_{arch}.recipe"
    wanted = recipe_hash(kind)
    if stamp.exists() and all(archive_path(arch, v).exists() for v in DEMO_VERSIONS):
        recorded = json.loads(stamp.read_text())
        if recorded.get("recipe") == wanted:
            return [Workload(f"{DEMO_IMAGE}:{v}", v, arch, archive_path(arch, v), recorded["ids"][v]) for v in DEMO_VERSIONS]
    print(f"lab: building the demo workload archives for {arch}", flush=True)
    files = _runtime_files(images.image_ref(kind))
    WORKLOAD_DIR.mkdir(parents=True, exist_ok=True)
    workloads = []
    for version in DEMO_VERSIONS:
        archive = archive_path(arch, version)
        image_id = _write_archive(archive, files, arch, version)
        workloads.append(Workload(f"{DEMO_IMAGE}:{version}", version, arch, archive, image_id))
    stamp.write_text(json.dumps({"recipe": wanted, "ids": {w.version: w.image_id for w in workloads}}) + "\n")
    return workloads


def _wanted(path: PurePosixPath) -> bool:
    text = str(path)
    if text == PYTHON or text == "usr/bin/python3":
        return True
    if text.startswith(STDLIB + "/"):
        rest = path.relative_to(STDLIB).parts
        if rest[0] in STDLIB_LEFT_OUT or "__pycache__" in rest and rest[-1].endswith((".opt-1.pyc", ".opt-2.pyc")):
            return False
        if rest[0] == "lib-dynload":
            return len(rest) == 1 or rest[1].startswith(DYNLOAD_KEPT)
        return True
    if path.parts[:2] in {("usr", "lib"), ("usr", "lib64")} and len(path.parts) <= 4:
        return path.name.startswith(LIBRARIES)
    # usrmerge: /bin, /lib, /lib64 are links into /usr
    return len(path.parts) == 1 and path.name in {"bin", "lib", "lib64", "sbin"}


def _runtime_files(node_image: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The interpreter, its libraries and trimmed standard library, read from the node image."""
    container = run(["docker", "create", node_image], what=f"creating a container of {node_image}").stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert export.stdout is not None
        files = []
        with tarfile.open(fileobj=export.stdout, mode="r|") as stream:
            for member in stream:
                path = PurePosixPath(member.name.lstrip("./"))
                if not path.parts or not _wanted(path) or not (member.isfile() or member.issym()):
                    continue
                data = stream.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                files.append((member, data))
        if export.wait() != 0:
            raise LabError(f"docker export of {node_image} failed: {export.stderr.read().decode().strip()}")  # type: ignore[union-attr]
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    if not any(m.name.lstrip("./") == PYTHON for m, _ in files):
        raise LabError(f"{node_image} has no {PYTHON}: cannot build the demo workload")
    return files


def _entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
    return info


def _layer(files: list[tuple[tarfile.TarInfo, bytes]], version: str) -> bytes:
    entries: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for member, data in files:
        name = member.name.lstrip("./")
        if member.issym():
            entries[name] = (_entry(name, tarfile.SYMTYPE, 0o777, link=member.linkname), b"")
        else:
            entries[name] = (_entry(name, tarfile.REGTYPE, member.mode & 0o755 or 0o644, len(data)), data)
    app = APP_SOURCE.read_bytes()
    for name, data in (("app/server.py", app), ("app/VERSION", f"{version}\n".encode())):
        entries[name] = (_entry(name, tarfile.REGTYPE, 0o644, len(data)), data)
    entries["tmp"] = (_entry("tmp", tarfile.DIRTYPE, 0o1777), b"")
    for name in list(entries):
        for parent in PurePosixPath(name).parents:
            if str(parent) != "." and str(parent) not in entries:
                entries[str(parent)] = (_entry(str(parent), tarfile.DIRTYPE, 0o755), b"")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name in sorted(entries):
            info, data = entries[name]
            layer.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _write_archive(archive: Path, files: list[tuple[tarfile.TarInfo, bytes]], arch: str, version: str) -> str:
    layer = _layer(files, version)
    diff_id = hashlib.sha256(layer).hexdigest()
    architecture, variant = OCI_PLATFORMS[arch]
    # A day apart per version, so "newest" (what image pruning keeps) follows the version order.
    created = datetime.fromtimestamp(FIXED_MTIME + 86400 * DEMO_VERSIONS.index(version), timezone.utc)
    created_text = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    config: dict[str, object] = {
        "architecture": architecture,
        "os": "linux",
        "created": created_text,
        "config": {
            "Cmd": [f"/{PYTHON}", "/app/server.py"],
            "Env": ["PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", f"PORT={DEMO_PORT}"],
            "ExposedPorts": {f"{DEMO_PORT}/tcp": {}},
            "WorkingDir": "/app",
            "StopSignal": "SIGTERM",
            "Labels": {"org.opencontainers.image.title": "pico-demo", "org.opencontainers.image.version": version},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": created_text, "created_by": f"pico lab: demo workload {version} for {arch}"}],
    }
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = json.dumps([{
        "Config": f"{image_id}.json", "RepoTags": [f"{DEMO_IMAGE}:{version}"], "Layers": [f"{diff_id}/layer.tar"],
    }]).encode()
    partial = archive.with_suffix(".tar.partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in ((f"{image_id}.json", config_bytes), (f"{diff_id}/layer.tar", layer), ("manifest.json", manifest)):
            if "/" in name:
                out.addfile(_entry(name.split("/")[0], tarfile.DIRTYPE, 0o755))
            out.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    partial.replace(archive)
    return f"sha256:{image_id}"
