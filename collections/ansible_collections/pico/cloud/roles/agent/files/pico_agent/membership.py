"""Gossip glue: keep a Serf RPC connection, publish this node's catalog version as a tag, and
fetch a peer's instances from its HTTP API when its version changes.

Serf tags are limited to 512 bytes per node, so they carry only `api` (the HTTP port) and `cv`
(a 12-character catalog version); the instance list can be as long as a node needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from . import httpclient
from .catalog import MAX_CATALOG_BYTES, Catalog, parse_remote_body
from .config import AgentConfig
from .log import Throttled, log
from .metrics import Metrics
from .serf import Member, SerfBroadcastLate, SerfClient, SerfError, read_rpc_auth

TAG_API, TAG_VERSION = "api", "cv"
# A catalog version reaches peers as a Serf tag, by gossip with a few retransmissions. Right after
# members fail, memberlist keeps gossiping to them for 30 s (GossipToTheDeadTime), so all of those
# retransmissions can miss a live peer, which then learns the version only at the next push-pull,
# up to 30 s later (seen in about 1 of 8 two-boards-lost chaos runs: one survivor 21 s late). The
# same tags are set again this long after each change: each time a new broadcast, a new chance.
REANNOUNCE_AFTER = (1.0, 3.0)
# Anti-entropy also reads this node's own tag back from Serf. Found behind its catalog's version at
# this many syncs in a row (the version unchanged), the tag is set again; one more, and the session
# is given up and a new one started (it publishes at its start). One look is not enough: a change
# may be on its way to the tag.
OWN_TAG_REPUBLISH, OWN_TAG_NEW_SESSION = 2, 3
# A peer whose catalog cannot be taken (refused, unreachable, or serving another version than its
# tag says) is asked again after a wait that doubles up to a minute, not at once: a tag that never
# matches once kept every peer fetching ~800 times a second.
FETCH_RETRY_FIRST, FETCH_RETRY_MAX = 1.0, 60.0


class Membership:
    def __init__(self, config: AgentConfig, catalog: Catalog, metrics: Metrics, *,
                 on_member_status: Callable[[], None] = lambda: None,
                 on_self_address: Callable[[], None] = lambda: None):
        """on_member_status: a member changed status (failover decides at once, not at the next
        tick); on_self_address: Serf told this node its own member address."""
        self.config = config
        self.catalog = catalog
        self.metrics = metrics
        self.client: SerfClient | None = None
        self.problem: str | None = "not connected yet"
        self.published: str | None = None
        self.publish_needed = asyncio.Event()
        self._fetching: dict[str, asyncio.Task] = {}
        self._retry_wait: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        self._served_last: dict[str, str] = {}
        self._fetch_failed = Throttled("warning", "peer_fetch_failed")
        self._version_mismatch = Throttled("warning", "peer_catalog_version_mismatch")
        self.self_address: str | None = None
        self.on_self_address = on_self_address
        self.on_member_status = on_member_status
        # The first look at the members after the agent starts finds them as they are; what
        # changes after it is seen happening (catalog.member_since).
        self._first_look_done = False
        # (this node's catalog version, syncs in a row that found its own tag behind it)
        self._own_tag_behind: tuple[str, int] = ("", 0)

    @property
    def connected(self) -> bool:
        return self.client is not None and not self.client.closed.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.5
        host, port = self.config.serf.rpc_host_port
        while not stop.is_set():
            try:
                client = SerfClient(host, port, read_rpc_auth(self.config.serf.rpc_auth_file))
                await client.connect()
            except SerfError as err:
                self._lost(str(err))
            else:
                self.client, self.published = client, None
                if self.problem:
                    log("info", "serf_connected", rpc=self.config.serf.rpc_address)
                self.problem, delay = None, 0.5
                try:
                    await self._session(client, stop)
                except (SerfError, OSError) as err:
                    self._lost(str(err))
                finally:
                    self.client = None
                    await client.close()
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 10.0)

    def _lost(self, problem: str) -> None:
        if self.problem != problem:
            log("warning", "serf_unavailable", error=problem)
        self.problem = problem

    async def _session(self, client: SerfClient, stop: asyncio.Event) -> None:
        """Until any of the session's tasks ends, however it ends, before stop: then the others
        are stopped, the session is lost and run() starts a new one. (A TaskGroup drops a task
        that ends cancelled without a word; on 2 of 30 lab nodes the tag publisher stopped
        without one, and their catalog changes no longer reached their peers.)"""
        self._own_tag_behind = ("", 0)  # this session publishes at its start
        await self.sync(client)
        await self._announce(client)
        self.publish_needed.set()
        tasks = {asyncio.create_task(work, name=f"serf-{name}"): name for name, work in (
            ("events", self._events(client)), ("publisher", self._publisher(client, stop)),
            ("anti-entropy", self._anti_entropy(client, stop)))}
        remaining = set(tasks)
        try:
            while remaining:
                done, remaining = await asyncio.wait(remaining, return_when=asyncio.FIRST_COMPLETED)
                # Stopping, the publisher and anti-entropy end; the connection stays open (the
                # event stream goes on) for the agent's leave, until this task is cancelled.
                if not stop.is_set():
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if stop.is_set():
            return
        ended = next(iter(done))
        if not ended.cancelled() and ended.exception() is not None:
            raise ended.exception()
        raise SerfError(f"the session's {tasks[ended]} task {'was cancelled' if ended.cancelled() else 'ended'}")

    async def _events(self, client: SerfClient) -> None:
        async for event in client.stream():
            for raw in event.get("Members", []):
                member = Member.from_rpc(raw)
                if event.get("Event") == "member-reap":
                    self.catalog.forget_member(member.name)
                    log("info", "member_reaped", node=member.name)
                    continue
                self._observe(member)
        raise SerfError("Serf event stream ended")

    def _observe(self, member: Member) -> None:
        before = self.catalog.members.get(member.name)
        self.catalog.update_member(member, observed=self._first_look_done)
        if before is None or before.status != member.status:
            log("info", "member_status", node=member.name, status=member.status, address=member.address)
            self.on_member_status()
        if member.name == self.config.node_name:
            if self.self_address != member.address:
                self.self_address = member.address
                self.on_self_address()
            return
        version = member.tags.get(TAG_VERSION)
        if member.status == "alive" and version and version != self.catalog.remote_version(member.name):
            self._fetch_soon(member)

    def _fetch_soon(self, member: Member) -> None:
        task = self._fetching.get(member.name)
        if task is None or task.done():
            self._fetching[member.name] = asyncio.create_task(self._fetch(member.name))

    def _retry_later(self, node: str) -> None:
        wait = min(FETCH_RETRY_MAX, max(FETCH_RETRY_FIRST, 2 * self._retry_wait.get(node, 0.0)))
        self._retry_wait[node] = wait
        self._retry_at[node] = time.monotonic() + wait

    async def _fetch(self, node: str) -> None:
        """Fetch `node`'s catalog until what it serves is what its tag announces, waiting between
        tries that did not get there."""
        while True:
            wait = self._retry_at.get(node, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            member = self.catalog.members.get(node)  # as it is now: its tags may have moved on
            if member is None or member.status != "alive":
                return
            wanted = member.tags.get(TAG_VERSION)
            if not wanted or wanted == self.catalog.remote_version(node):
                self._retry_wait.pop(node, None)
                self._retry_at.pop(node, None)
                return
            try:
                port = int(member.tags.get(TAG_API, ""))
            except ValueError:
                return
            try:
                response = await httpclient.request("GET", "/v1/catalog/local", host=member.address, port=port,
                                                    timeout=5, max_body=MAX_CATALOG_BYTES)
                if response.status != 200:
                    raise httpclient.HTTPError(f"HTTP {response.status}")
                version, instances = parse_remote_body(response.body, node, member.address)
            except (httpclient.HTTPError, ValueError) as err:
                self.metrics.peer_fetch_failures += 1
                self._fetch_failed(node=node, error=str(err)[:200])
                if isinstance(err, (ValueError, httpclient.BodyTooLarge)):
                    # What it serves now is refused: what it served before may be what it has since
                    # drained, so none of it is published (an unreachable API keeps the last one).
                    if self.catalog.remote_version(node):
                        self.catalog.set_remote(node, "", [])
                        log("warning", "peer_catalog_dropped", node=node, error=str(err)[:200])
                self._retry_later(node)
                continue
            current = self.catalog.members.get(node)
            if current is None or current.status != "alive":
                return
            if current.tags.get(TAG_VERSION) != version:
                # Not what the member announces: its tag moved on while we fetched (ask again at
                # once), or something else answers on its port. Nothing of it is taken; after a
                # second such answer, ask again after a wait.
                if version == self._served_last.get(node):
                    self._version_mismatch(node=node, announced=current.tags.get(TAG_VERSION), served=version)
                    self._retry_later(node)
                self._served_last[node] = version
                continue
            self._served_last.pop(node, None)
            self.catalog.set_remote(node, version, instances)
            log("debug", "peer_catalog", node=node, version=version, instances=len(instances))

    async def _publisher(self, client: SerfClient, stop: asyncio.Event) -> None:
        reannounce_at: list[float] = []
        while not stop.is_set():
            wait = max(0.0, reannounce_at[0] - time.monotonic()) if reannounce_at else None
            try:
                await asyncio.wait_for(self.publish_needed.wait(), wait)
            except asyncio.TimeoutError:
                pass
            self.publish_needed.clear()
            version, now = self.catalog.local_version, time.monotonic()
            tags = {TAG_API: str(self.config.http_port), TAG_VERSION: version}
            if version != self.published:
                await self._set_tags(client, tags)
                self.published = version
                reannounce_at = [now + delay for delay in REANNOUNCE_AFTER]
                log("debug", "catalog_published", version=version, instances=len(self.catalog.local))
            elif reannounce_at and now >= reannounce_at[0]:
                reannounce_at.pop(0)
                await self._set_tags(client, tags)
                log("debug", "catalog_reannounced", version=version)

    async def _set_tags(self, client: SerfClient, tags: dict[str, str]) -> None:
        """A broadcast Serf could not finish in time is published all the same: the tags are set
        on this node and gossip goes on (so do the reannouncements and push-pull). Taken as Serf
        lost, it started a new session and logged serf_unavailable, on 5 of a 30-board lab's boards."""
        try:
            await client.set_tags(tags)
        except SerfBroadcastLate as err:
            self.metrics.serf_broadcasts_late += 1
            log("warning", "catalog_broadcast_late", version=tags[TAG_VERSION], error=str(err))

    async def _anti_entropy(self, client: SerfClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.config.serf.sync_interval)
            except asyncio.TimeoutError:
                await self.sync(client)

    async def sync(self, client: SerfClient) -> None:
        members = await client.members()
        names = {m.name for m in members}
        for name in list(self.catalog.members):
            if name not in names:
                self.catalog.forget_member(name)
        for member in members:
            self._observe(member)
        self._first_look_done = True
        self._check_own_tag(next((m for m in members if m.name == self.config.node_name), None))

    def _check_own_tag(self, me: Member | None) -> None:
        """Whatever kept this node's catalog version from its tag (a change the publisher was never
        told of, a publisher stuck, a tag set by another client), peers would never fetch the
        catalog again: seen that way at consecutive syncs, the tags are set again, then the session
        is started again."""
        version = self.catalog.local_version
        if me is None or me.status != "alive" or me.tags.get(TAG_VERSION) == version:
            self._own_tag_behind = ("", 0)
            return
        seen_for, times = self._own_tag_behind
        times = times + 1 if seen_for == version else 1
        self._own_tag_behind = (version, times)
        if times == OWN_TAG_REPUBLISH:
            log("warning", "own_catalog_tag_stale", announced=me.tags.get(TAG_VERSION), version=version)
            self.published = None
            self.publish_needed.set()
        elif times >= OWN_TAG_NEW_SESSION:
            raise SerfError(f"this node's tag {TAG_VERSION}={me.tags.get(TAG_VERSION)} still is not its catalog version "
                            f"{version} after it was set again: a new session publishes it")

    async def _announce(self, client: SerfClient) -> None:
        """After a graceful leave (an agent restart) peers may still hold the leave intent and keep
        showing this node as left although Serf rejoined: a join through known members broadcasts
        a join intent with a newer Lamport time, which wins."""
        peers = [f"{m.address}:{m.port}" for m in self.catalog.members.values()
                 if m.name != self.config.node_name and m.status == "alive"][:3]
        if not peers:
            return
        try:
            joined = await client.join(peers)
            log("debug", "serf_join_announced", via=len(peers), joined=joined)
        except SerfError as err:
            log("debug", "serf_join_failed", error=str(err))

    def local_catalog_changed(self) -> None:
        self.publish_needed.set()

    async def leave(self, timeout: float = 10.0) -> None:
        """Tell the cluster this node is leaving, so peers drop its instances at once."""
        if not self.connected:
            return
        assert self.client is not None
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.client.leave(), timeout)
            log("info", "serf_left", seconds=round(time.monotonic() - started, 2))
        except (SerfError, asyncio.TimeoutError) as err:
            log("warning", "serf_leave_failed", error=str(err) or "timed out")
