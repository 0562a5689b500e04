"""The chaos suite on a LAN of network namespaces: real Serf agents and pico-agents, one pair per
namespace, each with its own address and the role's ports and Serf settings, this machine's
dockerd, and the plan every node holds (as deploy.yml writes it). Faults a loopback cluster
cannot have: two boards lost at once, the mesh cut in two halves for 60 s and healed, and a
lossy link.

After each: every slot is back to one copy, the owner's; no service file or owner container
was touched; every agent is healthy. Timings are bench/failover_chaos.py's job, not these tests'."""

import hashlib
import time
import warnings

import pytest
from agentlab import (DOCKER_SOCKET, NetnsLab, failover_plan, load_demo_image, plan_restored, remove_containers,
                      timeline, use_plan, wait_for, worker_containers, worker_copies, worker_spec)
from pico_agent.failover import FAILOVER_TAG, Slot, assign, parse_plan


@pytest.fixture
def chaos_lab(tmp_path, request):
    """request.param: (node count, {service: index of the node that owns its one slot}).
    Yields the lab, the plan and {service: owner node}."""
    count, owned = request.param
    image = load_demo_image()
    lab = NetnsLab(tmp_path, count, net=40, docker_socket=DOCKER_SOCKET, interval=1, prefix="ch")
    owners = {service: lab.nodes[index] for service, index in owned.items()}
    plan = failover_plan(lab.nodes, image, {service: [owner.name] for service, owner in owners.items()})
    use_plan(lab.nodes, plan, hold_down=3, drain_time=1)
    try:
        lab.start()
        for service, owner in owners.items():
            owner.add_service(dict(worker_spec(image, service), replicas=1))
        wait_for(lambda: plan_restored(lab.nodes, owners), 60, what="the owners' services published everywhere")
        yield lab, plan, owners
    finally:
        lab.stop()
        remove_containers(lab.nodes)


def fingerprint(node):
    """What must survive any fault: the node's service files and its containers."""
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(node.services_dir.iterdir())}
    running = {p.stem: worker_containers(node, p.stem) for p in node.services_dir.glob("*.json")}
    assert all(running.values()), f"{node.name} runs no container for one of its services: {running}"
    return files, running


def takeover_on(copies, side, owner):
    """The one copy a node lists is a takeover of the owner's slot, run on this side of a cut."""
    return len(copies) == 1 and copies[0][0] in {n.name for n in side} \
        and copies[0][1] == f"{FAILOVER_TAG}{owner.name}:0"


def all_healthy(lab):
    return all(n.running() and n.get("/v1/health")[0] == 200 for n in lab.nodes)


@pytest.mark.parametrize("chaos_lab", [(5, {"worker": 0, "helper": 1})], indirect=True)
def test_two_boards_lost_at_once_both_slots_come_back_on_the_nodes_the_rule_picks(chaos_lab):
    lab, plan, owners = chaos_lab
    dead = list(owners.values())
    survivors = [n for n in lab.nodes if n not in dead]
    chosen, waiting = assign(parse_plan(plan), failed={n.name for n in dead}, alive={n.name for n in survivors})
    assert waiting == []
    expected = {service: [(chosen[Slot(service, 0, owner.name)], f"{FAILOVER_TAG}{owner.name}:0")]
                for service, owner in owners.items()}

    since = time.time()
    for node in dead:  # both lose power: processes gone, containers with them
        node.kill()
    remove_containers(dead)
    # The bounds are generous on purpose: CI runs these beside the emulated boards' tests, which
    # load both cores; how fast failover is, bench/failover_chaos.py measures.
    wait_for(lambda: all(worker_copies(n, service) == copies for service, copies in expected.items()
                         for n in survivors), 120, what="both slots taken over where the rule says",
             explain=lambda: timeline(lab.nodes, since))
    for service in owners:  # nobody else started one
        assert sum(len(worker_containers(n, service)) for n in survivors) == 1

    lab.start(dead)  # power back: each owner's agent starts its service from its file again
    wait_for(lambda: plan_restored(lab.nodes, owners), 120, what="both slots handed back to their owners",
             explain=lambda: timeline(lab.nodes, since))
    assert all_healthy(lab)


@pytest.mark.parametrize("chaos_lab", [(4, {"worker": 0, "helper": 2})], indirect=True)
def test_a_mesh_cut_in_two_halves_for_60_s_converges_to_the_plan_once_healed(chaos_lab):
    """An even split: each half sees the other failed and takes over its slot, so while the cut
    lasts each slot runs once on each side (a duplicate, never a gap). Once healed, the takeovers go."""
    lab, plan, owners = chaos_lab
    left, right = lab.nodes[:2], lab.nodes[2:]
    before = {n.name: fingerprint(n) for n in owners.values()}
    start, since = time.monotonic(), time.time()
    lab.partition(left, right)
    for service, owner in owners.items():
        other_side = right if owner in left else left
        wait_for(lambda service=service, owner=owner, side=other_side: all(
            takeover_on(worker_copies(n, service), side, owner) for n in side), 120,
            what=f"{service}'s slot taken over on the side cut off from {owner.name}",
            explain=lambda: timeline(lab.nodes, since))
    for service, owner in owners.items():  # and the owner's side still has the owner's copy only
        own_side = left if owner in left else right
        assert all(worker_copies(n, service) == [(owner.name, None)] for n in own_side)
    time.sleep(max(0.0, 60 - (time.monotonic() - start)))
    lab.heal()
    wait_for(lambda: plan_restored(lab.nodes, owners), 120, what="one copy per slot, the owner's, after the heal",
             explain=lambda: timeline(lab.nodes, since))
    assert {n.name: fingerprint(n) for n in owners.values()} == before
    assert all_healthy(lab)


@pytest.mark.parametrize("chaos_lab", [(4, {"worker": 0})], indirect=True)
def test_a_lossy_slow_link_never_stops_the_owners_copy_and_ends_as_planned(chaos_lab):
    """30 % of the packets lost each way and 100 ms added to all it sends, on the owner's link for
    60 s (a weak Wi-Fi link). The owner's copy runs throughout, and once healed the slot is back
    to one copy, the owner's.

    Serf's lan profile (Lifeguard) refutes nearly every suspicion such a link raises, but not by
    construction: a rare one can run out and fail the owner, and its peer then starts a duplicate
    until the owner is back (the issue's "a duplicate, never a gap"). The rate is a number for
    bench/failover_chaos.py loss (target 0), so here a false failover is reported, not failed."""
    lab, plan, owners = chaos_lab
    owner, others = owners["worker"], lab.nodes[1:]
    before, since = fingerprint(owner), time.time()
    lab.lossy(owner, 0.3)
    lab.delayed(owner, 0.1)
    takeovers, deadline = set(), time.monotonic() + 60
    while time.monotonic() < deadline:
        assert fingerprint(owner) == before, "the owner's own copy was stopped or replaced on a lossy link"
        takeovers.update(cid for n in others for cid in worker_containers(n))
        time.sleep(1)
    lab.heal()
    wait_for(lambda: plan_restored(lab.nodes, owners), 120, what="the plan as it was",
             explain=lambda: timeline(lab.nodes, since))
    assert fingerprint(owner) == before
    assert all_healthy(lab)
    if takeovers:
        warnings.warn(f"a false failover under 30 % loss: {len(takeovers)} takeover(s) of the owner's slot "
                      "started, and were handed back after the heal", stacklevel=1)
