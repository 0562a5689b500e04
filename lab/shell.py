"""Running host commands with errors a user can act on."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Sequence

# Commands running now, so an interrupted build can stop them (and their children) and clean up.
_active: set[subprocess.Popen[bytes]] = set()
_active_lock = threading.Lock()


class LabError(Exception):
    """A failure the user can fix; the message says what was wrong and what to do."""


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing {', '.join(missing)} on this machine: run `make bootstrap` (scripts/bootstrap.sh) as root")


def run(
    cmd: Sequence[str],
    *,
    what: str,
    log: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run cmd; on failure raise LabError naming `what`, the last error line and the log file."""
    try:
        if log is not None:
            with log.open("a") as out:
                out.write(f"$ {' '.join(cmd)}\n")
                out.flush()
                code, stdout, stderr = _communicate(cmd, timeout, out)
        else:
            code, stdout, stderr = _communicate(cmd, timeout, subprocess.PIPE)
    except FileNotFoundError as exc:
        raise LabError(f"{what}: {cmd[0]} is not installed; run `make bootstrap` as root") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: timed out after {timeout:.0f} s" + (f"; see {log}" if log else "")) from exc
    result = subprocess.CompletedProcess(list(cmd), code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    if result.returncode != 0:
        raise LabError(f"{what} failed (exit {result.returncode}): {_last_line(result, log)}")
    return result


def _communicate(cmd: Sequence[str], timeout: float | None, out) -> tuple[int, bytes, bytes]:
    # A session of its own, so stopping it reaches debootstrap's chroot children too.
    stderr = subprocess.STDOUT if out is not subprocess.PIPE else subprocess.PIPE
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=stderr, start_new_session=True)
    with _active_lock:
        _active.add(proc)
    try:
        stdout, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise
    finally:
        with _active_lock:
            _active.discard(proc)
    return proc.returncode, stdout or b"", err or b""


def stop_all() -> None:
    """Stop every command that run() has running (used when the user interrupts a build)."""
    with _active_lock:
        procs = list(_active)
    for proc in procs:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _last_line(result: subprocess.CompletedProcess[str], log: Path | None) -> str:
    if log is not None:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        tail = lines[-1].strip() if lines else "no output"
        return f"{tail} (full log: {log})"
    text = (result.stderr or result.stdout).strip().splitlines()
    return text[-1] if text else "no output"
