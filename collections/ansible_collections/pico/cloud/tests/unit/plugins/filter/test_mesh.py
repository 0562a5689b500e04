"""Mesh address allocation and the mesh plan checks."""
import ipaddress
import random

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter import mesh_address as address_plugin
from ansible_collections.pico.cloud.plugins.filter import mesh_problems as problems_plugin

mesh_address = address_plugin.FilterModule().filters()["mesh_address"]
mesh_problems = problems_plugin.FilterModule().filters()["mesh_problems"]


def test_address_depends_on_name_and_network_only():
    names = [f"node-{i}" for i in range(20)]
    before = {n: mesh_address(n, "10.99.0.0/16") for n in names}
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    after = {n: mesh_address(n, "10.99.0.0/16") for n in shuffled + ["new-node"]}
    assert all(after[n] == before[n] for n in names)  # adding and reordering renumbers nobody
    for address in before.values():
        ip = ipaddress.ip_address(address)
        assert ip in ipaddress.ip_network("10.99.0.0/16")
        assert address not in ("10.99.0.0", "10.99.255.255")


def test_bad_network_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="bad mesh network"):
        mesh_address("node-1", "10.99.0.1/16")
    with pytest.raises(AnsibleFilterError, match="too small"):
        mesh_address("node-1", "10.99.0.0/31")


def node(address, endpoint="172.28.10.11", lan=("172.28.10.11/24",), unreachable=()):
    return {"address": address, "endpoint": endpoint, "lan_networks": list(lan), "unreachable": list(unreachable)}


def test_a_sound_plan_has_no_problems():
    nodes = {"a": node("10.99.0.1"), "b": node("10.99.0.2", "172.28.10.12", ("172.28.10.12/24",))}
    assert mesh_problems(nodes, "10.99.0.0/16") == []


def test_each_problem_names_the_host_and_the_value():
    nodes = {
        "a": node("10.99.0.7"),
        "b": node("10.99.0.7", endpoint="172.28.10.12"),
        "c": node("10.98.0.1", endpoint=""),
        "d": node("10.99.0.9", endpoint="10.99.3.3", lan=("10.99.3.3/24",)),
        "e": node("10.99.0.10", unreachable=["172.28.10.99"]),
        "f": node("banana"),
    }
    problems = mesh_problems(nodes, "10.99.0.0/16")
    assert "a and b share the mesh address 10.99.0.7: set pico_wireguard_address explicitly for all but one" in problems
    assert "c: mesh address 10.98.0.1 is not a host address of pico_wireguard_network 10.99.0.0/16" in problems
    assert any(p.startswith("c: no WireGuard endpoint") for p in problems)
    assert any(p.startswith("d: endpoint 10.99.3.3 lies inside the mesh network") for p in problems)
    assert any(p.startswith("d: LAN network 10.99.3.3/24 overlaps the mesh network 10.99.0.0/16") for p in problems)
    assert any(p.startswith("e cannot reach the endpoint 172.28.10.99") for p in problems)
    assert any(p.startswith("f: mesh address 'banana' is not an IP address") for p in problems)


def test_bad_mesh_network_is_reported_not_raised():
    assert mesh_problems({"a": node("10.99.0.1")}, "10.99.0.1/16")[0].startswith("pico_wireguard_network '10.99.0.1/16'")
    with pytest.raises(AnsibleFilterError):
        mesh_problems(["a"], "10.99.0.0/16")
