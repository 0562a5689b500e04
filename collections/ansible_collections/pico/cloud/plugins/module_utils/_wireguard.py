# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""WireGuard helpers shared by the keypair and peers modules and the mesh filters."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import ipaddress
import re


def is_valid_key(text):
    """A WireGuard key is 32 bytes in standard base64 (44 characters ending in '=')."""
    text = text.strip()
    if len(text) != 44:
        return False
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def key_fingerprint(public_key):
    """A short, stable name for a public key, for logs and reports (never for private keys)."""
    return "SHA256:" + hashlib.sha256(public_key.strip().encode()).hexdigest()[:16]


def mesh_address(name, network):
    """The mesh address of a node: a hash of its name inside the network.

    It depends on the name and the network alone, so adding or removing other nodes, or
    reordering the inventory, never renumbers a node. Two names can land on the same address
    (about 0.3% for 20 nodes in a /16); the role's preflight finds that and asks for an explicit
    address for one of them.
    """
    net = ipaddress.ip_network(network, strict=True)
    usable = net.num_addresses - 2 if net.version == 4 else net.num_addresses - 1
    if usable < 2:
        raise ValueError("mesh network %s is too small: use a /16 or at least a /24" % network)
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return str(net.network_address + 1 + digest % usable)


def mesh_problems(nodes, network):
    """Everything wrong with a planned mesh, one sentence per problem naming the host and value.

    nodes: {name: {"address": str, "endpoint": str, "lan_networks": [cidr, ...],
                   "unreachable": [endpoint, ...]}}
    """
    problems = []
    try:
        mesh = ipaddress.ip_network(network, strict=True)
    except ValueError as exc:
        return ["pico_wireguard_network %r is not a network address with prefix (%s), e.g. 10.99.0.0/16" % (network, exc)]
    by_address = {}
    for name in sorted(nodes):
        node = nodes[name]
        address = node.get("address") or ""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            problems.append("%s: mesh address %r is not an IP address: fix pico_wireguard_address" % (name, address))
            continue
        if ip not in mesh or ip in (mesh.network_address, mesh.broadcast_address):
            problems.append("%s: mesh address %s is not a host address of pico_wireguard_network %s" % (name, address, network))
        by_address.setdefault(address, []).append(name)
        endpoint = (node.get("endpoint") or "").strip()
        if not endpoint:
            problems.append("%s: no WireGuard endpoint: set pico_wireguard_endpoint (or ansible_host) to its LAN address" % name)
        else:
            try:
                if ipaddress.ip_address(endpoint) in mesh:
                    problems.append("%s: endpoint %s lies inside the mesh network %s: the tunnel would route into itself; "
                                    "choose another pico_wireguard_network" % (name, endpoint, network))
            except ValueError:
                pass  # a DNS name; reachability is checked from the nodes
        for lan in node.get("lan_networks") or []:
            if ipaddress.ip_network(lan, strict=False).overlaps(mesh):
                problems.append("%s: LAN network %s overlaps the mesh network %s: choose another pico_wireguard_network"
                                % (name, lan, network))
        for target in node.get("unreachable") or []:
            problems.append("%s cannot reach the endpoint %s: check the address (pico_wireguard_endpoint) and the LAN"
                            % (name, target))
    for address, names in sorted(by_address.items()):
        if len(names) > 1:
            problems.append("%s share the mesh address %s: set pico_wireguard_address explicitly for all but one"
                            % (" and ".join(names), address))
    return problems


def parse_peer_records(lines):
    """The peers a node's WireGuard configuration holds, from the role's probe of that file.

    Each line is `peer NAME KEY_TIME PUBLIC_KEY ADDRESS ENDPOINT:PORT` (the template writes the
    name and key time in the comment that opens each [Peer] section); other lines are ignored.
    """
    records = {}
    for line in lines:
        fields = line.split()
        if len(fields) != 6 or fields[0] != "peer":
            continue
        dummy, name, key_time, public_key, address, endpoint = fields
        host, sep, port = endpoint.rpartition(":")
        if not sep or not port.isdigit() or not is_valid_key(public_key):
            continue
        records[name] = {"public_key": public_key, "address": address, "endpoint": host.strip("[]"),
                         "port": int(port), "key_time": int(key_time) if key_time.isdigit() else 0}
    return records


def keys_not_held(held_peers, current_keys, skip=()):
    """The nodes whose current mesh key a node does not hold as a peer, sorted by name.

    held_peers: the peer keys the node holds (`wg show IF peers`: one per line, or a list).
    current_keys: every node's current public key, by name ('' or None where it runs no mesh,
    which is never counted). skip: names not to check (the node itself). Such a node was away
    while those nodes' keys were rotated, or while they joined: its tunnels to them are down.
    """
    held = set(held_peers.split() if isinstance(held_peers, str) else held_peers or ())
    return sorted(name for name, key in current_keys.items()
                  if key and name not in skip and key.strip() not in held)


def mesh_peers(members, fresh, records):
    """Every member of the mesh with what its peers need: address, endpoint, port, public key.

    members: the group's names. fresh: what this run learned from the members it reached, by
    name ({address, endpoint, port, public_key, key_time}). records: per member reached, the peers
    its own configuration holds (parse_peer_records). A member this run did not reach keeps the
    entry its peers hold, so it rejoins the mesh by itself when it is back: of differing records
    the one of the newest key wins (a peer that was away during a rotation holds an older one),
    then the one most peers hold, then the smaller key, so every run decides alike.
    Returns (peers, unknown): peers by name, and the members no one has a key of (never joined).
    """
    peers, unknown = {}, []
    for name in members:
        if name in fresh and fresh[name].get("public_key"):
            peers[name] = dict(fresh[name])
            continue
        held = [record[name] for observer, record in sorted(records.items()) if observer != name and name in record]
        if not held:
            unknown.append(name)
            continue
        votes = {}
        for entry in held:
            key = (entry["key_time"], entry["public_key"], entry["address"], entry["endpoint"], entry["port"])
            votes[key] = votes.get(key, 0) + 1
        key_time, public_key, address, endpoint, port = sorted(votes, key=lambda k: (-k[0], -votes[k], k[1:]))[0]
        peers[name] = {"public_key": public_key, "address": address, "endpoint": endpoint, "port": port,
                       "key_time": key_time, "last_known": True}
    return peers, unknown


def mesh_from_probes(members, fresh, records):
    """mesh_peers() with each reached member's records as its probe printed them: lines of
    `peer NAME KEY_TIME PUBLIC_KEY ADDRESS ENDPOINT:PORT` (parse_peer_records), by member."""
    parsed = dict((observer, parse_peer_records(lines or [])) for observer, lines in records.items())
    return mesh_peers(list(members), fresh, parsed)


def limit_problems(members, in_play, fresh, records):
    """What a run limited to some members (--limit) would leave wrong on the members outside it.

    Those members are not changed, so the run is sound only where they need to learn nothing:
    every member in the play has its key already and keeps the mesh address and port its
    interface runs with (an endpoint that moves is learned by WireGuard's roaming, from the first
    packet of the moved member). And the entry kept for each member outside must be current: a
    member in the play shook hands with it at that key in the last 3 minutes. A key rotated while
    the members in the play were away is found so, and so is a member outside that is down (its
    key could have changed without them): both need the run without --limit.

    members: the group's names. in_play: the names the play started with (a board unreachable
    now is in it: it is away, not outside). fresh: what this run learned from the members it
    reached, each with C(public_key) (None where a key would be made), C(applied), the probe's
    line `applied ADDRESS PORT` of the settings its interface runs with ('' where it has none),
    and C(shook_hands), the public keys of the peers it shook hands with in the last 3 minutes.
    records: per member reached, its probe's peer lines (mesh_from_probes).
    Returns one sentence per problem, naming the member and the fix; empty outside a limited run.
    """
    outside = [name for name in members if name not in in_play]
    if not outside:
        return []
    fix = "run without --limit, so %s learn%s it" % (", ".join(outside), "s" if len(outside) == 1 else "")
    problems = []
    for name in sorted(fresh):
        entry = fresh[name]
        applied = (entry.get("applied") or "").split()
        if not entry.get("public_key"):
            problems.append("%s has no WireGuard key yet: %s" % (name, fix))
        elif len(applied) != 3:
            problems.append("%s has not joined the mesh yet: %s" % (name, fix))
        elif applied[1] != str(entry.get("address")) or applied[2] != str(entry.get("port")):
            problems.append("%s would change its mesh address or port, from %s port %s to %s port %s: %s"
                            % (name, applied[1], applied[2], entry.get("address"), entry.get("port"), fix))
    peers, unknown = mesh_from_probes(members, fresh, records)
    unheld = [name for name in outside if name in unknown]
    if unheld:
        problems.append("no member in this run holds a WireGuard peer entry for %s, outside --limit (the members in it "
                        "never joined the mesh with %s): run without --limit"
                        % (", ".join(unheld), "it" if len(unheld) == 1 else "them"))
    shaken = set(key for entry in fresh.values() for key in entry.get("shook_hands") or [])
    silent = [name for name in outside if name in peers and peers[name]["public_key"] not in shaken]
    if silent:
        problems.append("no member in this run has shaken hands with %s (outside --limit) over the mesh in the last 3 "
                        "minutes, so the entry they hold is not known to be current (down, or a key changed while they "
                        "were away): run without --limit" % ", ".join(silent))
    return problems


def config_peers(text):
    """The peers a WireGuard configuration file declares, by public key: {name, allowed_ips,
    endpoint, keepalive}. name is the first word of the comment that opens the [Peer] section (the
    role's template writes the peer's inventory name there), or None. Raises ValueError naming
    the line the file holds that cannot be applied peer by peer."""
    sections = []  # (line number, {settings} or None outside a [Peer] section)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("["):
            sections.append((number, {"name": None, "allowed_ips": [], "endpoint": None, "keepalive": 0, "key": None}
                             if line.lower() == "[peer]" else None))
            continue
        peer = sections[-1][1] if sections else None
        if peer is None:
            continue
        if line.startswith("#"):
            if peer["name"] is None and peer["key"] is None and line.lstrip("#").split():
                peer["name"] = line.lstrip("#").split()[0]
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        setting, sep, value = (part.strip() for part in line.partition("="))
        key = setting.lower()
        if not sep:
            raise ValueError("line %d: %r is not KEY = VALUE" % (number, line))
        if key == "publickey":
            if not is_valid_key(value):
                raise ValueError("line %d: PublicKey is not a WireGuard key" % number)
            peer["key"] = value
        elif key == "allowedips":
            peer["allowed_ips"] += [_network(ip, number) for ip in value.split(",") if ip.strip()]
        elif key == "endpoint":
            peer["endpoint"] = value
        elif key == "persistentkeepalive":
            peer["keepalive"] = 0 if value == "off" else _number(value, number, "PersistentKeepalive")
        else:  # PresharedKey among them: the role never writes one, and a secret stays off command lines
            raise ValueError("line %d: %s in a [Peer] section is not applied by this module" % (number, setting))
    peers = {}
    for number, peer in sections:
        if peer is None:
            continue
        public_key = peer.pop("key")
        if public_key is None:
            raise ValueError("the [Peer] section at line %d has no PublicKey" % number)
        peer["allowed_ips"] = sorted(set(peer["allowed_ips"]))
        peers[public_key] = peer
    return peers


def dump_peers(text):
    """The peers an interface runs with, from `wg show IF dump`, in config_peers()'s form (name
    None). The dump's first line, the interface's own and with its private key, is skipped."""
    peers = {}
    for line in text.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 8:
            continue
        public_key, endpoint, allowed, keepalive = fields[0], fields[2], fields[3], fields[7]
        peers[public_key] = {
            "name": None,
            "allowed_ips": sorted(set(_network(ip, 0) for ip in allowed.split(",") if ip and ip != "(none)")),
            "endpoint": None if endpoint == "(none)" else endpoint,
            "keepalive": 0 if keepalive in ("off", "0", "") else int(keepalive),
        }
    return peers


def peer_changes(wanted, running, endpoints_of=None):
    """The `wg set` arguments that make the running peers the wanted ones, touching no peer that
    is already as wanted: a peer's allowed IPs are replaced only when they differ, since replacing
    them (as `wg syncconf` does for every peer) leaves a moment in which that peer's packets have
    no route. Added and changed peers come first, removed ones last, so an address that moves to a
    new key (a rotation) is routed all along.

    wanted, running: config_peers() and dump_peers(). endpoints_of(endpoint) gives the host:port
    forms an endpoint of the file may run as (a DNS name resolves to addresses); by default only
    itself. Returns (args, report): report is {added, updated, removed}, lists of names (the
    public key where the file names no peer).
    """
    endpoints_of = endpoints_of or (lambda endpoint: [endpoint])
    args, report = [], {"added": [], "updated": [], "removed": []}
    for public_key in sorted(wanted, key=lambda k: (wanted[k]["name"] or "", k)):
        peer, now = wanted[public_key], running.get(public_key)
        peer_args = []
        if peer["endpoint"] and (now is None or now["endpoint"] not in endpoints_of(peer["endpoint"])):
            peer_args += ["endpoint", peer["endpoint"]]
        if now is None or now["keepalive"] != peer["keepalive"]:
            peer_args += ["persistent-keepalive", str(peer["keepalive"]) if peer["keepalive"] else "off"]
        if now is None or now["allowed_ips"] != peer["allowed_ips"]:
            peer_args += ["allowed-ips", ",".join(peer["allowed_ips"])]
        if peer_args:
            args += ["peer", public_key] + peer_args
            report["added" if now is None else "updated"].append(peer["name"] or public_key)
    for public_key in sorted(set(running) - set(wanted)):
        args += ["peer", public_key, "remove"]
        report["removed"].append(public_key)
    return args, report


def _network(text, number):
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise ValueError("line %d: %r is not an IP network" % (number, text.strip()))


def _number(text, number, what):
    if not re.match(r"^\d+$", text):
        raise ValueError("line %d: %s %r is not a number of seconds" % (number, what, text))
    return int(text)
