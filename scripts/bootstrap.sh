#!/usr/bin/env bash
# Prepare this machine for the lab and the tests: Debian packages, dockerd, qemu binfmt
# handlers and the controller virtualenv. Every step checks first and does nothing when the
# machine is already right, so re-running costs about a second.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${PICO_VENV:-$REPO_ROOT/.venv}"
DEB_PACKAGES=(docker.io qemu-user-static debootstrap python3-venv openssh-client iproute2 wireguard-tools)

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
  for arch in arm aarch64; do
    [ -e "$dir/qemu-$arch" ] && continue   # registering twice fails; it lasts until reboot
    [ -f "/usr/lib/binfmt.d/qemu-$arch.conf" ] || die "/usr/lib/binfmt.d/qemu-$arch.conf missing: apt-get install --reinstall qemu-user-static"
    cat "/usr/lib/binfmt.d/qemu-$arch.conf" >"$dir/register" || die "registering qemu-$arch with binfmt_misc failed"
    say "registered qemu-$arch binfmt handler"
  done
}

make_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$REPO_ROOT/requirements.txt" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  say "creating the controller virtualenv in $VENV"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv failed: apt-get install python3-venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO_ROOT/requirements.txt" \
    >"$VENV/pip-install.log" 2>&1 \
    || die "pip install -r requirements.txt failed: see $VENV/pip-install.log (is PyPI reachable?)"
  echo "$want" >"$stamp"
}

install_debian_packages
start_dockerd
register_binfmt
make_venv
