"""Desired state: one JSON file per service in the services directory, written by Ansible.

A service with an image is run as containers through the Docker API; one without an image is
something the node already runs (sshd, a host daemon) that the agent only health-checks and
publishes. A file that does not validate is reported and its service is left exactly as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .files import FileProblem, loads_json, read_small_file
# The service file's rules: one copy, shared with the collection's planner.
from ._service_spec import MAX_REPLICAS, MAX_SERVICE_FILES, HealthSpec, ServiceSpec, SpecError, parse_memory, parse_spec

__all__ = ["MAX_REPLICAS", "MAX_SPEC_BYTES", "MAX_SERVICE_FILES", "DesiredState", "HealthSpec", "ServiceSpec",
           "SpecError", "directory_stamp", "load_desired", "load_spec_file", "parse_memory", "parse_spec"]

MAX_SPEC_BYTES = 64 * 1024


def load_spec_file(path: Path) -> ServiceSpec:
    try:
        raw, _status = read_small_file(path, MAX_SPEC_BYTES)
    except FileProblem as err:
        raise SpecError(str(err)) from None
    except OSError as err:
        raise SpecError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = loads_json(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid JSON: {err}") from None
    try:
        return parse_spec(data, expected_name=path.stem)
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None


@dataclass(frozen=True)
class DesiredState:
    services: dict[str, ServiceSpec]
    # Service name -> problem. These services are neither started, changed nor removed.
    errors: dict[str, str]
    # A cheap fingerprint of the directory: names, sizes and mtimes.
    stamp: tuple[tuple[str, int, int], ...]


def directory_stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Raises OSError if the directory exists but cannot be listed: the caller keeps what it has,
    as an unreadable directory is not an empty desired state."""
    try:
        entries = sorted(p for p in directory.iterdir() if p.suffix == ".json")
    except FileNotFoundError:
        return ()
    stamp = []
    for entry in entries:
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue
        except OSError:  # a symlink loop or the like: listed, so that reading it reports why
            stamp.append((entry.name, -1, 0))
            continue
        stamp.append((entry.name, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def load_desired(directory: Path, stamp: tuple[tuple[str, int, int], ...] | None = None) -> DesiredState:
    """The services in `directory`; `stamp`: its directory_stamp, if the caller has just taken it."""
    stamp = directory_stamp(directory) if stamp is None else stamp
    services: dict[str, ServiceSpec] = {}
    errors: dict[str, str] = {}
    for index, (name, _size, _mtime) in enumerate(stamp):
        path = directory / name
        if index >= MAX_SERVICE_FILES:
            errors[path.stem[:64]] = f"{path}: more than {MAX_SERVICE_FILES} service files; not read"
            continue
        try:
            spec = load_spec_file(path)
        except SpecError as err:
            errors[path.stem[:64]] = str(err)
            continue
        services[spec.name] = spec
    return DesiredState(services, errors, stamp)
