"""Client for the local Serf agent's msgpack RPC (handshake, auth, members, tags, events, stream, leave).

Each request is a header {Command, Seq} plus an optional body; each answer a header {Seq, Error},
followed by a body for the commands that return one. A stream keeps sending header + body pairs
with the stream's Seq.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from .files import FileProblem, loads_json, read_small_file

_WITH_BODY = {"members", "members-filtered", "stats", "join"}
EVENT_TYPES = "member-join,member-leave,member-failed,member-update,member-reap"


class SerfError(Exception):
    """The Serf agent is unreachable or refused a command."""


# memberlist's answer to a tags change it made on this node and queued for gossip but did not send
# to enough peers within Serf's broadcast_timeout (5 s; on a CPU-starved board): late, not lost.
_BROADCAST_LATE = "timeout waiting for update broadcast"


class SerfBroadcastLate(SerfError):
    """The tags are set on this node; their gossip to the peers goes on after Serf's answer."""


@dataclass(frozen=True)
class Member:
    name: str
    address: str
    port: int
    status: str  # alive, leaving, left, failed
    tags: dict[str, str]

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> Member:
        return cls(raw["Name"], _address(raw.get("Addr", b"")), int(raw.get("Port", 0)),
                   raw.get("Status", "none"), dict(raw.get("Tags") or {}))


def _address(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    if len(raw) in (4, 16):
        address = ipaddress.ip_address(bytes(raw))
        mapped = getattr(address, "ipv4_mapped", None)
        return str(mapped or address)
    return ""


def read_rpc_auth(path: Path | None) -> str | None:
    """The RPC token from a Serf JSON config file ({"rpc_auth": ...}), shared with the Serf agent."""
    if path is None:
        return None
    try:
        raw, _status = read_small_file(path, 64 * 1024)
        data = loads_json(raw)
    except FileProblem as err:
        raise SerfError(f"cannot read the Serf RPC token: {err}") from None
    except OSError as err:
        raise SerfError(f"{path}: cannot read the Serf RPC token: {err.strerror}") from None
    except ValueError:
        raise SerfError(f"{path}: not JSON; expected {{\"rpc_auth\": \"...\"}}") from None
    token = data.get("rpc_auth") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise SerfError(f"{path}: no rpc_auth key")
    return token


class SerfClient:
    def __init__(self, host: str, port: int, auth_key: str | None = None):
        self.host, self.port, self._auth_key = host, port, auth_key
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self._seq = 0
        self._pending: dict[int, tuple[asyncio.Future, bool]] = {}
        self._streams: dict[int, asyncio.Queue] = {}
        self.closed = asyncio.Event()

    async def connect(self, timeout: float = 5.0) -> None:
        try:
            reader, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
        except (OSError, asyncio.TimeoutError) as err:
            raise SerfError(f"Serf RPC at {self.host}:{self.port}: {err or 'timed out'}") from None
        self._reader_task = asyncio.create_task(self._read_loop(reader), name="serf-rpc-reader")
        try:
            await self._call("handshake", {"Version": 1})
            if self._auth_key:
                await self._call("auth", {"AuthKey": self._auth_key})
        except BaseException:
            await self.close()  # a refused token must not leave the connection open
            raise

    async def close(self) -> None:
        if self._writer:
            self._writer.close()
        if self._reader_task:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):
                pass

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=16 * 1024 * 1024)
        awaiting_body: int | None = None
        header: dict[str, Any] = {}
        try:
            while data := await reader.read(65536):
                unpacker.feed(data)
                for obj in unpacker:
                    if awaiting_body is not None:
                        self._deliver(awaiting_body, header, obj)
                        awaiting_body = None
                        continue
                    header = obj
                    seq = obj.get("Seq")
                    if seq in self._streams:
                        pending = self._pending.pop(seq, None)
                        if pending:  # the stream's acknowledgement
                            self._settle(pending[0], obj, None)
                        elif not obj.get("Error"):
                            awaiting_body = seq
                    elif seq in self._pending:
                        future, with_body = self._pending[seq]
                        if with_body:
                            awaiting_body = seq
                        else:
                            del self._pending[seq]
                            self._settle(future, obj, None)
        except (OSError, ValueError):
            pass
        finally:
            for future, _with_body in self._pending.values():
                if not future.done():
                    future.set_exception(SerfError("Serf RPC connection closed"))
            for queue in self._streams.values():
                queue.put_nowait(None)
            self.closed.set()

    def _deliver(self, seq: int, header: dict[str, Any], body: Any) -> None:
        if seq in self._streams and seq not in self._pending:
            self._streams[seq].put_nowait(body)
            return
        future, _with_body = self._pending.pop(seq, (None, False))
        if future:
            self._settle(future, header, body)

    @staticmethod
    def _settle(future: asyncio.Future, header: dict[str, Any], body: Any) -> None:
        if future.done():
            return
        if header.get("Error"):
            future.set_exception(SerfError(header["Error"]))
        else:
            future.set_result(body)

    def _send(self, command: str, body: Any, with_body: bool) -> tuple[int, asyncio.Future]:
        if self._writer is None or self.closed.is_set():
            raise SerfError("not connected to the Serf agent")
        self._seq += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = (future, with_body)
        payload = msgpack.packb({"Command": command, "Seq": self._seq})
        if body is not None:
            payload += msgpack.packb(body, use_bin_type=True)
        self._writer.write(payload)
        return self._seq, future

    async def _call(self, command: str, body: Any = None, timeout: float = 10.0) -> Any:
        _seq, future = self._send(command, body, command in _WITH_BODY)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise SerfError(f"Serf RPC {command}: no answer within {timeout:g} s") from None

    async def members(self) -> list[Member]:
        body = await self._call("members")
        return [Member.from_rpc(raw) for raw in body.get("Members", [])]

    async def set_tags(self, tags: dict[str, str], delete: list[str] | None = None) -> None:
        try:
            await self._call("tags", {"Tags": tags, "DeleteTags": delete or []})
        except SerfError as err:
            if _BROADCAST_LATE in str(err):
                raise SerfBroadcastLate(str(err)) from None
            raise

    async def join(self, addresses: list[str]) -> int:
        """Join through these members; Serf then broadcasts a fresh join intent."""
        body = await self._call("join", {"Existing": addresses, "Replay": False}, timeout=15.0)
        return int((body or {}).get("Num", 0))

    async def leave(self) -> None:
        await self._call("leave", timeout=15.0)

    async def stream(self, types: str = EVENT_TYPES) -> AsyncIterator[dict[str, Any]]:
        """Yield membership events ({"Event": "member-join", "Members": [...]}) until the connection ends."""
        self._seq += 1
        seq = self._seq
        queue: asyncio.Queue = asyncio.Queue()
        self._streams[seq] = queue
        future = asyncio.get_running_loop().create_future()
        self._pending[seq] = (future, False)
        assert self._writer is not None
        self._writer.write(msgpack.packb({"Command": "stream", "Seq": seq}) + msgpack.packb({"Type": types}))
        try:
            await asyncio.wait_for(future, 10.0)
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._streams.pop(seq, None)
