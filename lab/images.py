"""Node images built from debootstrap root file systems (no registry is reachable).

An image is tagged with a hash of its recipe (kind, Debian release and architecture, packages,
setup script), so a rebuild happens only when the recipe changes, and `:latest` always points at
the image of the current recipe. `docker import` either creates the whole image or nothing, so a
failed build never leaves an image behind that looks good.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from .model import NodeKind
from .shell import LabError, require_tools, run, stop_all

SUITE = "bookworm"
IMAGE_REPO = "pico-lab"
DEB_CACHE = Path("/var/cache/pico-lab/debootstrap")
BUILD_TIMEOUT_S = 2400


# What a node needs to boot, take SSH and run Ansible, plus what the roles install (the base
# package set, WireGuard's userspace tools) so the lab converges without a download.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "python3-apt",
    "ca-certificates", "iproute2", "iputils-ping", "procps", "tzdata", "systemd-timesyncd",
    "wireguard-tools", "wireguard-go",
)

# Installed with apt in the root file system after debootstrap, whose first stage cannot take
# podman. The container runtime (Podman, its netavark network stack, catatonit as container init)
# and what the runtime agent needs from Debian, so the lab provisions them without a download.
RUNTIME_PACKAGES = (
    "podman", "netavark", "catatonit", "iptables",
    "python3-docker", "python3-msgpack", "python3-netifaces", "python3-dnslib", "serf",
    # For people looking at a board: `dig @127.0.0.1 -p 8600 demo.service.pico`, `curl` over the mesh.
    "bind9-dnsutils", "curl",
)
# Docker is the optional runtime: the native node carries it for side-by-side tests and the
# memory benchmark; on ARM nodes the role installs it from the mirror when asked. Debian's
# docker-registry lets a native node play a site's registry in tests.
KIND_RUNTIME_PACKAGES = {"native": ("docker.io", "docker-registry")}

SETUP_SCRIPT = r"""#!/bin/sh
set -eu
# Each container makes its own SSH host key at first boot; nodes must not share one.
rm -f /etc/ssh/ssh_host_*
cat >/etc/systemd/system/pico-lab-ssh-hostkey.service <<'EOF'
[Unit]
Description=Generate this lab node's SSH host key
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=ssh.service
EOF
mkdir -p /etc/systemd/system/ssh.service.wants
ln -sf /etc/systemd/system/pico-lab-ssh-hostkey.service /etc/systemd/system/ssh.service.wants/
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nUseDNS no\n' \
  >/etc/ssh/sshd_config.d/pico-lab.conf
ln -sf /lib/systemd/system/ssh.service /etc/systemd/system/multi-user.target.wants/ssh.service
# No consoles in a container; an empty machine-id makes systemd create one per node.
ln -sf /dev/null /etc/systemd/system/getty@tty1.service
ln -sf /dev/null /etc/systemd/system/console-getty.service
: >/etc/machine-id
mkdir -p /root/.ssh && chmod 700 /root/.ssh
# Installed is not enabled: the roles choose and start what a node runs (one container runtime;
# Serf once it is configured). One unit at a time: a unit a kind lacks must not stop the rest.
for unit in docker.service docker.socket containerd.service podman.socket podman.service \
            podman-restart.service docker-registry.service serf.service; do
  systemctl disable "$unit" 2>/dev/null || true
done
rm -f /usr/sbin/policy-rc.d
rm -rf /var/cache/apt/archives/*.deb /var/log/*.log /var/log/apt/*
"""

# Emulated nodes only.
# - qemu-user reads QEMU_CPU from each process's own environment, and neither systemd services
#   nor SSH sessions inherit the container's: without these two files sshd, and so every
#   Ansible task, would run on qemu's default CPU (an ARMv7 for armel), not the board's. sudo
#   resets the environment too: a task run with become would see an armv7l Pi Zero.
# - The kernel sees the host's syscalls, so a unit's seccomp filter for the guest architecture
#   (SystemCallFilter, SystemCallArchitectures=native) kills it; qemu's code translator needs
#   writable+executable memory; qemu cannot set up a unit's private network namespace (EIO).
#   Without the drop-in, systemd-hostnamed and -timedated time out.
# Real boards need none of this.
QEMU_SETUP_SCRIPT = r"""
mkdir -p /etc/systemd/system.conf.d /etc/systemd/system/service.d
printf '[Manager]\nDefaultEnvironment=QEMU_CPU=%(cpu)s\n' >/etc/systemd/system.conf.d/pico-lab-qemu.conf
echo 'QEMU_CPU=%(cpu)s' >>/etc/environment
echo 'Defaults env_keep += "QEMU_CPU"' >/etc/sudoers.d/pico-lab-qemu
chmod 0440 /etc/sudoers.d/pico-lab-qemu
cat >/etc/systemd/system/service.d/pico-lab-qemu.conf <<'EOF'
[Service]
SystemCallFilter=
SystemCallArchitectures=
MemoryDenyWriteExecute=no
PrivateNetwork=no
EOF
"""


# Emulated boards get the config.txt a freshly flashed Raspberry Pi OS Lite (bookworm) card has,
# where the firmware partition is mounted, so the power role manages a real one.
RPI_CONFIG = Path(__file__).with_name("rpi-config.txt")
FIRMWARE_SETUP_SCRIPT = """
mkdir -p /boot/firmware
cat >/boot/firmware/config.txt <<'PICO_EOF'
%s
PICO_EOF
"""


# Containers on emulated boards. The board's own crun cannot run under qemu-user (it re-executes
# itself through /proc/self/exe, which qemu answers with the guest binary, and qemu refuses
# clone() with namespace flags), so Podman on an emulated board uses THIS machine's crun, copied
# into the image with its libraries: the kernel runs that x86-64 binary natively, and the
# container's own ARM processes still run through binfmt + qemu (flag F). Inside the container:
# - QEMU_CPU makes qemu emulate the board's CPU there too (`uname -m` says armv6l on a Pi Zero);
# - no seccomp filter: Podman, itself an ARM program, would install the ARM profile, which kills
#   qemu's own x86-64 system calls ("cannot set %fs base address for thread-local storage").
# A drop-in beside the role's containers.conf, so the role stays exactly what a real board gets.
HOST_CRUN = Path("/usr/bin/crun")
NODE_CRUN = "/usr/local/lib/pico-lab/crun-native"
NATIVE_LIBRARY_DIR = "usr/lib/x86_64-linux-gnu"
NATIVE_LOADER = "lib64/ld-linux-x86-64.so.2"
CONTAINERS_SETUP_SCRIPT = r"""
mkdir -p /etc/containers/containers.conf.d
cat >/etc/containers/containers.conf.d/90-pico-lab-emulated.conf <<'EOF'
# pico lab only (lab/images.py): containers of an emulated board run with the build machine's crun.
[containers]
env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "QEMU_CPU=%(cpu)s"]
seccomp_profile = "unconfined"

[engine]
runtime = "crun-native"

[engine.runtimes]
crun-native = ["%(crun)s"]
EOF
"""


def setup_script(kind: NodeKind) -> str:
    if not kind.qemu_cpu:
        return SETUP_SCRIPT
    firmware = FIRMWARE_SETUP_SCRIPT % RPI_CONFIG.read_text().rstrip("\n")
    containers = CONTAINERS_SETUP_SCRIPT % {"cpu": kind.qemu_cpu, "crun": NODE_CRUN}
    return SETUP_SCRIPT + QEMU_SETUP_SCRIPT % {"cpu": kind.qemu_cpu} + firmware + containers


def check_native_runtime(kind: NodeKind) -> None:
    """Emulated boards need this machine's crun (see CONTAINERS_SETUP_SCRIPT)."""
    if kind.qemu_cpu and not HOST_CRUN.is_file():
        raise LabError(f"{kind.name} nodes run their containers with this machine's own crun, and {HOST_CRUN} "
                       f"is missing: run `make bootstrap` as root (it installs Debian's crun)")


@functools.cache
def native_runtime_digest() -> str:
    """What the emulated images copy from this machine: a new crun means new images."""
    return hashlib.sha256(HOST_CRUN.read_bytes()).hexdigest()[:16]


def native_runtime_files() -> list[tuple[Path, str]]:
    """(file on this machine, path in the node's root file system) for crun and what it links."""
    out = run(["ldd", str(HOST_CRUN)], what=f"listing the libraries of {HOST_CRUN}").stdout
    files = [(HOST_CRUN, NODE_CRUN.lstrip("/"))]
    for line in out.splitlines():
        target = line.split("=>")[-1].split("(")[0].strip()
        if not target.startswith("/"):
            continue  # linux-vdso: provided by the kernel
        destination = NATIVE_LOADER if "/ld-linux" in target else f"{NATIVE_LIBRARY_DIR}/{Path(target).name}"
        files.append((Path(target).resolve(), destination))
    return files


def runtime_packages(kind: NodeKind) -> tuple[str, ...]:
    return RUNTIME_PACKAGES + KIND_RUNTIME_PACKAGES.get(kind.name, ())


def recipe(kind: NodeKind) -> dict[str, object]:
    found: dict[str, object] = {
        "kind": asdict(kind), "suite": SUITE, "packages": sorted(PACKAGES),
        "runtime_packages": sorted(runtime_packages(kind)), "setup": setup_script(kind),
    }
    if kind.qemu_cpu:
        check_native_runtime(kind)
        found["native_runtime"] = native_runtime_digest()
    return found


def recipe_hash(kind: NodeKind) -> str:
    blob = json.dumps(recipe(kind), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def image_ref(kind: NodeKind) -> str:
    return f"{IMAGE_REPO}/{kind.name}:{recipe_hash(kind)}"


def latest_ref(kind: NodeKind) -> str:
    return f"{IMAGE_REPO}/{kind.name}:latest"


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False).returncode == 0


APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
APT_LEGACY_SOURCES = Path("/etc/apt/sources.list")
FALLBACK_MIRROR = "http://deb.debian.org/debian"


def debian_mirror() -> str:
    """The mirror this machine's apt uses, so the lab builds from the same place."""
    if os.environ.get("PICO_LAB_MIRROR"):
        return os.environ["PICO_LAB_MIRROR"]
    sources = APT_SOURCES
    if sources.exists():
        for match in re.finditer(r"^URIs:\s*(\S+)", sources.read_text(), re.M):
            if not match.group(1).rstrip("/").endswith("-security"):
                return match.group(1)
    legacy = APT_LEGACY_SOURCES
    if legacy.exists():
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+\s", legacy.read_text(), re.M):
            if "security" not in match.group(1):
                return match.group(1)
    return FALLBACK_MIRROR


def check_binfmt(kind: NodeKind) -> None:
    if kind.binfmt and not Path(f"/proc/sys/fs/binfmt_misc/{kind.binfmt}").exists():
        raise LabError(f"{kind.name} nodes need the {kind.binfmt} binfmt handler: run `make bootstrap` as root")


def ensure_image(kind: NodeKind, log_dir: Path, force: bool = False) -> str:
    """Return the image reference for kind, building it when its recipe has no image yet."""
    ref = image_ref(kind)
    if force or not image_exists(ref):
        _build(kind, ref, log_dir)
    run(["docker", "tag", ref, latest_ref(kind)], what=f"tagging {ref}")
    return ref


def ensure_images(kinds: list[NodeKind], log_dir: Path, force: bool = False) -> list[str]:
    """Build the missing images side by side: downloads of one overlap emulated work of another."""
    with ThreadPoolExecutor(max_workers=len(kinds) or 1) as pool:
        futures = [pool.submit(ensure_image, kind, log_dir, force) for kind in kinds]
        errors, refs = [], []
        try:
            for future in futures:
                try:
                    refs.append(future.result())
                except LabError as exc:
                    errors.append(str(exc))
        except KeyboardInterrupt:
            # Stop the builds; each one's `finally` then removes its root file system.
            stop_all()
            raise
    if errors:
        raise LabError("; ".join(errors))
    return refs


def _build(kind: NodeKind, ref: str, log_dir: Path) -> None:
    require_tools("debootstrap", "docker", "tar", "chroot")
    if os.geteuid() != 0:
        raise LabError("building node images needs root (debootstrap, chroot): run as root")
    check_binfmt(kind)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"build-{kind.name}.log"
    log.write_text(f"# build of {ref}\n")
    cache = DEB_CACHE / kind.debian_arch
    cache.mkdir(parents=True, exist_ok=True)
    print(f"lab: building {ref} (Debian {SUITE} {kind.debian_arch}; log: {log})", flush=True)
    rootfs = Path(tempfile.mkdtemp(prefix=f"pico-lab-{kind.name}-", dir="/var/tmp"))
    try:
        run(
            ["debootstrap", f"--arch={kind.debian_arch}", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             f"--cache-dir={cache}", SUITE, str(rootfs), debian_mirror()],
            what=f"debootstrap of the {kind.name} root file system", log=log, timeout=BUILD_TIMEOUT_S,
        )
        _apt_install(kind, rootfs, cache, log)
        if kind.qemu_cpu:
            _copy_native_runtime(rootfs)
        setup = rootfs / "tmp/pico-lab-setup.sh"
        setup.write_text(setup_script(kind))
        run(["chroot", str(rootfs), "/bin/sh", "/tmp/pico-lab-setup.sh"], what=f"setting up the {kind.name} image", log=log)
        setup.unlink()
        _import(kind, ref, rootfs, log)
    finally:
        _remove_rootfs(rootfs)
    print(f"lab: built {ref}", flush=True)


def _apt_install(kind: NodeKind, rootfs: Path, cache: Path, log: Path) -> None:
    """Second stage: apt inside the new root file system, with its downloads kept in the cache."""
    archives = cache / "apt"
    archives.mkdir(exist_ok=True)
    # No service may start inside a chroot; the setup script removes this again.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    target = rootfs / "var/cache/apt/archives"
    run(["mount", "--bind", str(archives), str(target)], what="mounting the package cache")
    run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], what="mounting /proc in the root file system")
    try:
        run(
            ["env", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C",
             "chroot", str(rootfs), "apt-get", "install", "-y", "-q", "--no-install-recommends", *runtime_packages(kind)],
            what=f"apt-get install in the {kind.name} root file system", log=log, timeout=BUILD_TIMEOUT_S,
        )
    finally:
        for mountpoint in (rootfs / "proc", target):
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


def _copy_native_runtime(rootfs: Path) -> None:
    for source, relative in native_runtime_files():
        target = rootfs / relative
        # /lib64 is missing on an ARM root file system: the x86-64 loader's fixed path needs it.
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _import(kind: NodeKind, ref: str, rootfs: Path, log: Path) -> None:
    changes = [
        'CMD ["/lib/systemd/systemd"]', "ENV container=docker",
        f"LABEL pico.lab.kind={kind.name} pico.lab.recipe={recipe_hash(kind)}",
    ]
    cmd = ["docker", "import", f"--platform={kind.docker_platform}"]
    for change in changes:
        cmd += ["--change", change]
    cmd += ["-", ref]
    with log.open("a") as out:
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE, stderr=out)
        imp = subprocess.run(cmd, stdin=tar.stdout, stdout=out, stderr=subprocess.STDOUT, check=False)
        assert tar.stdout is not None
        tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or imp.returncode != 0:
        # An import fed by a broken tar stream may still have produced an image: drop it.
        subprocess.run(["docker", "image", "rm", "-f", ref], capture_output=True, check=False)
        raise LabError(f"importing {ref} into docker failed (tar exit {tar_rc}, import exit {imp.returncode}); see {log}")


def _remove_rootfs(rootfs: Path) -> None:
    """Unmount what a failed debootstrap may have left mounted inside, then delete the tree."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mountpoint in sorted((m for m in mounts if m.startswith(f"{rootfs}/")), reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)
    shutil.rmtree(rootfs, ignore_errors=True)
