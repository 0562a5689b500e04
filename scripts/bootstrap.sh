#!/usr/bin/env bash
# Prepare this machine for the lab and the tests: Debian packages, dockerd, qemu binfmt
# handlers and the controller virtualenv. Every step checks first and does nothing when the
# machine is already right, so re-running costs about a second.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${PICO_VENV:-$REPO_ROOT/.venv}"
# serf: the runtime agent's tests start real Serf agents on loopback. crun: emulated lab boards run
# their containers with this machine's own crun (lab/images.py). chromium: the agents' status page
# is tested in a real headless browser.
DEB_PACKAGES=(docker.io debootstrap python3-venv openssh-client iproute2 wireguard-tools serf crun chromium)
# qemu-user from bookworm-backports (10.x): bookworm's 7.2 deadlocks now and then when a
# multi-threaded program forks (Podman's API service hung at start in 3 of 25 tries; 10.0: 0 of 25).
QEMU_MIN_VERSION=10
UV_VERSION=0.13.9  # the installer for the controller virtualenv (make_venv)
BACKPORTS_LIST=/etc/apt/sources.list.d/pico-bookworm-backports.list
BINFMT_STAMP=/run/pico-binfmt-qemu.version  # /run is cleared at reboot, as registrations are

die() { echo "bootstrap: error: $*" >&2; exit 1; }
say() { echo "bootstrap: $*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (the lab needs dockerd, binfmt_misc and debootstrap): sudo make ..."
command -v apt-get >/dev/null || die "this needs a Debian 12 machine (apt-get not found)"

install_debian_packages() {
  local missing=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed: check the Debian mirror in /etc/apt/sources.list*"
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/var/log/pico-bootstrap-apt.log 2>&1 \
    || die "apt-get install ${missing[*]} failed: see /var/log/pico-bootstrap-apt.log"
}

debian_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep -v security | head -1)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

qemu_version() {
  local qemu
  for qemu in qemu-arm-static qemu-arm; do
    command -v "$qemu" >/dev/null || continue
    "$qemu" --version | sed -n 's/^qemu-arm version \([0-9.]*\).*/\1/p' | head -1
    return 0
  done
}

install_qemu() {
  local version
  version=$(qemu_version)
  [ -n "$version" ] && [ "${version%%.*}" -ge "$QEMU_MIN_VERSION" ] && return 0
  if ! apt-cache policy 2>/dev/null | grep -q bookworm-backports; then
    say "adding bookworm-backports (for qemu-user $QEMU_MIN_VERSION.x)"
    echo "deb $(debian_mirror) bookworm-backports main" >"$BACKPORTS_LIST"
    apt-get update -qq || die "apt-get update failed: check the Debian mirror in /etc/apt/sources.list*"
  fi
  say "installing qemu-user-static from bookworm-backports"
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-user-static >/var/log/pico-bootstrap-apt.log 2>&1 \
    || die "apt-get install -t bookworm-backports qemu-user-static failed: see /var/log/pico-bootstrap-apt.log"
}

start_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  if [ -d /run/systemd/system ]; then
    say "starting docker.service"
    systemctl start docker || die "systemctl start docker failed: see journalctl -u docker"
  else
    say "starting dockerd in the background (log: /var/log/pico-dockerd.log)"
    setsid nohup dockerd >/var/log/pico-dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "dockerd did not answer within 60 s: see /var/log/pico-dockerd.log"
}

register_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" \
    || die "cannot mount binfmt_misc: the kernel needs CONFIG_BINFMT_MISC for emulated ARM nodes"
  # The kernel keeps the interpreter it was given open (flag F): after a qemu upgrade the old
  # registration must go, or nodes keep running on the old qemu.
  local version
  version=$(qemu_version)
  if [ "$(cat "$BINFMT_STAMP" 2>/dev/null)" != "$version" ]; then
    for arch in arm aarch64; do
      [ -e "$dir/qemu-$arch" ] && echo -1 >"$dir/qemu-$arch"
    done
  fi
  for arch in arm aarch64; do
    [ -e "$dir/qemu-$arch" ] && continue   # registering twice fails; it lasts until reboot
    [ -f "/usr/lib/binfmt.d/qemu-$arch.conf" ] || die "/usr/lib/binfmt.d/qemu-$arch.conf missing: apt-get install --reinstall qemu-user-static"
    cat "/usr/lib/binfmt.d/qemu-$arch.conf" >"$dir/register" || die "registering qemu-$arch with binfmt_misc failed"
    say "registered qemu-$arch binfmt handler (qemu $version)"
  done
  echo "$version" >"$BINFMT_STAMP"
}

make_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$REPO_ROOT/requirements.txt" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  say "creating the controller virtualenv in $VENV"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv failed: apt-get install python3-venv"
  # uv installs the same pinned lock in about 5 s where pip takes about 50 s (it downloads and
  # unpacks in parallel). pip remains the way if uv cannot be had or fails, e.g. behind a
  # registry mirror that only pip is configured for.
  if "$VENV/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION" >"$VENV/pip-install.log" 2>&1 \
    && "$VENV/bin/uv" pip install -q --system-certs --python "$VENV/bin/python" -r "$REPO_ROOT/requirements.txt" \
      >>"$VENV/pip-install.log" 2>&1; then
    :
  else
    say "uv could not install the lock (see $VENV/pip-install.log); installing with pip"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO_ROOT/requirements.txt" \
      >>"$VENV/pip-install.log" 2>&1 \
      || die "pip install -r requirements.txt failed: see $VENV/pip-install.log (is PyPI reachable?)"
  fi
  echo "$want" >"$stamp"
}

# promtool checks and exercises the Prometheus rules the collection ships (tests/unit/
# test_monitoring.py). It is taken out of Debian's prometheus package rather than installed with
# it: the package would also start a Prometheus server on this machine.
install_promtool() {
  [ -x "$VENV/bin/promtool" ] && return 0
  local dir
  dir=$(mktemp -d)
  say "putting Debian's promtool into $VENV/bin"
  if ! (cd "$dir" && apt-get download prometheus) >"$dir/download.log" 2>&1; then
    apt-get update -qq || die "apt-get update failed: check the Debian mirror in /etc/apt/sources.list*"
    (cd "$dir" && apt-get download prometheus) >"$dir/download.log" 2>&1 \
      || die "apt-get download prometheus failed: $(tail -n 1 "$dir/download.log")"
  fi
  dpkg-deb --fsys-tarfile "$dir"/prometheus_*.deb | tar -x -C "$dir" ./usr/bin/promtool \
    || die "no usr/bin/promtool in Debian's prometheus package"
  install -m 0755 "$dir/usr/bin/promtool" "$VENV/bin/promtool"
  rm -rf "$dir"
}

install_debian_packages
install_qemu
start_dockerd
register_binfmt
make_venv
install_promtool
