"""An agent's status page in a real headless browser (Debian's chromium): the text a person sees
once the page's script has drawn it, and a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

# Headless, as root in a container: no sandbox, no GPU. The page's script runs within this much
# virtual time (it draws after its first fetch).
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                  "--virtual-time-budget=5000")


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium not found: scripts/bootstrap.sh (make bootstrap) installs Debian's"
    return path


def page_text(url: str, profile: Path) -> str:
    """The page's text after its script ran, one line per table row."""
    run = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0 and "<html" in run.stdout, f"chromium: {run.returncode} {run.stderr[-2000:]}"
    dom = re.sub(r"<script.*?</script>|<style.*?</style>", "", run.stdout, flags=re.S)
    rows = re.sub(r"</tr>|</h1>|</h2>|</p>", "\n", dom)
    cells = re.sub(r"<[^>]+>", " ", rows)
    return "\n".join(" ".join(unescape(line).split()) for line in cells.splitlines() if line.strip())


def screenshot(url: str, profile: Path, path: Path) -> Path:
    run = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1100",
                          f"--screenshot={path}", url], capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0 and path.exists() and path.stat().st_size > 0, f"chromium: {run.stderr[-2000:]}"
    return path
