"""Build the agent as one zipapp (python3 runs it; nodes need nothing from PyPI).

Usage: build_bundle.py SOURCE_PACKAGE_DIR DEST.pyz
Byte-identical output for identical sources (sorted entries, fixed timestamps and modes, hash-based
.pyc), so a re-run of the role copies nothing. Prints "changed" or "unchanged".

The .pyc files spare a Pi Zero compiling the agent at every start (seconds of CPU, and ~2 MB of
RSS that compiling leaves behind). zipimport uses them only where the node's Python has the
controller's bytecode version (Debian 12 on both: 3.11) and falls back to the sources otherwise.
"""

import importlib.util
import io
import marshal
import os
import sys
import zipfile
from pathlib import Path

ENTRY = b"import sys\nfrom pico_agent.__main__ import main\nsys.exit(main())\n"


def pyc(source: bytes, name: str) -> bytes:
    """An unchecked hash-based .pyc (PEP 552): no timestamp inside, so the same source gives the same bytes."""
    code = compile(source, name, "exec", dont_inherit=True)
    flags = (0b01).to_bytes(4, "little")  # hash-based, not checked against the source
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def build(source: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)

        add("__main__.py", ENTRY)
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".typed") and "__pycache__" not in path.parts:
                name = f"{source.name}/{path.relative_to(source).as_posix()}"
                data = path.read_bytes()
                add(name, data)
                if path.suffix == ".py":
                    add(name + "c", pyc(data, name))
    return buffer.getvalue()


def main() -> int:
    source, dest = Path(sys.argv[1]), Path(sys.argv[2]).expanduser()
    if not (source / "__main__.py").is_file():
        print(f"{source} is not the pico_agent package (no __main__.py): set pico_agent_source", file=sys.stderr)
        return 2
    data = build(source)
    if dest.exists() and dest.read_bytes() == data:
        print("unchanged")
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, dest)  # concurrent runs each write a whole file
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
