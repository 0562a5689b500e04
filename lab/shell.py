"""Running host commands with errors a user can act on."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence


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
    input_bytes: bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run cmd; on failure raise LabError naming `what`, the last error line and the log file."""
    try:
        if log is not None:
            with log.open("a") as out:
                out.write(f"$ {' '.join(cmd)}\n")
                out.flush()
                proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, input=input_bytes, timeout=timeout, check=False)
            result = subprocess.CompletedProcess(cmd, proc.returncode, "", "")
        else:
            proc = subprocess.run(cmd, capture_output=True, input=input_bytes, timeout=timeout, check=False)
            result = subprocess.CompletedProcess(cmd, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
    except FileNotFoundError as exc:
        raise LabError(f"{what}: {cmd[0]} is not installed; run `make bootstrap` as root") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: timed out after {timeout:.0f} s" + (f"; see {log}" if log else "")) from exc
    if check and result.returncode != 0:
        raise LabError(f"{what} failed (exit {result.returncode}): {_last_line(result, log)}")
    return result


def _last_line(result: subprocess.CompletedProcess[str], log: Path | None) -> str:
    if log is not None:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        tail = lines[-1].strip() if lines else "no output"
        return f"{tail} (full log: {log})"
    text = (result.stderr or result.stdout).strip().splitlines()
    return text[-1] if text else "no output"
