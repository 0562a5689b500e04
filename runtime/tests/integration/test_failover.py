"""Failover with no controller: three real Serf agents and pico-agents on loopback, this machine's
dockerd, and the plan every node holds (as deploy.yml writes it). A node dies (its Serf and agent
SIGKILLed, its container removed: a board losing power); the node the rule picks starts its
replica, and nobody else does; the node comes back and the takeover is handed back.

The worker has no port: every node here shares 127.0.0.1, where a takeover and the returning
owner could not both listen on one port, as they can on real boards."""

import json
import os
import signal
import time

import pytest
from agentlab import (DOCKER_SOCKET, WORKER_TAG, AgentLab, docker, failover_plan, load_demo_image, remove_containers,
                      use_plan, wait_for, worker_containers, worker_copies, worker_spec)
from pico_agent.failover import FAILOVER_TAG, Slot, assign, parse_plan


def worker_instances(node):
    """(node, tags) of every healthy worker instance this node's agent knows of."""
    return sorted((i["node"], tuple(i["tags"])) for i in node.instances("worker"))




@pytest.fixture
def cluster(tmp_path):
    image = load_demo_image()
    lab = AgentLab(tmp_path, 3, docker_socket=DOCKER_SOCKET, interval=1, prefix="fo")
    owner = lab.nodes[0]
    plan = failover_plan(lab.nodes, image, {"worker": [owner.name]})
    use_plan(lab.nodes, plan, hold_down=3, drain_time=1)
    lab.start()
    owner.add_service(dict(worker_spec(image), replicas=1))
    wait_for(lambda: all(worker_instances(n) == [(owner.name, (WORKER_TAG,))] for n in lab.nodes), 60,
             what="the owner's worker published everywhere")
    yield lab, plan
    lab.stop()
    remove_containers(lab.nodes)


def roles_when_the_owner_dies(lab, plan):
    """(owner, the node the rule picks to take its slot, the other survivor, the takeover's tag)."""
    owner, others = lab.nodes[0], lab.nodes[1:]
    chosen, _ = assign(parse_plan(plan), failed={owner.name}, alive={n.name for n in others})
    taker = next(n for n in others if n.name == chosen[Slot("worker", 0, owner.name)])
    bystander = next(n for n in others if n is not taker)
    return owner, taker, bystander, f"{FAILOVER_TAG}{owner.name}:0"


def test_a_dead_nodes_slot_is_taken_by_the_node_the_rule_picks_and_handed_back(cluster):
    lab, plan = cluster
    owner, taker, bystander, tag = roles_when_the_owner_dies(lab, plan)

    owner.kill()  # the board loses power: Serf and agent gone, and its container with them
    for cid in worker_containers(owner):
        docker("rm", "-f", cid)
    wait_for(lambda: all(worker_instances(n) == [(taker.name, (WORKER_TAG, tag))] for n in (taker, bystander)), 30,
             what="the takeover published on both survivors")
    assert len(worker_containers(taker)) == 1 and worker_containers(bystander) == []
    status, health = taker.get("/v1/health")
    assert health["failover"]["takeovers"] == [{"service": "worker", "slot": 0, "owner": owner.name, "draining": False}]
    assert "pico_failover_takeovers 1" in taker.get("/metrics")[1]

    # The owner returns; once its own worker is healthy for the hold-down, the takeover drains and stops.
    owner.start_serf(lab.keyring, [taker.gossip_address])
    owner.start_agent()
    wait_for(lambda: worker_instances(bystander) == [(owner.name, (WORKER_TAG,))], 60,
             what="only the owner's worker left in discovery")
    wait_for(lambda: worker_containers(taker) == [], 10, what="the takeover container gone")
    assert worker_containers(bystander) == [] and len(worker_containers(owner)) == 1
    log = (taker.root / "agent.log").read_text()
    assert '"event":"failover_changed"' in log


def test_a_takeover_runs_untouched_while_deploy_folds_its_slot_in_then_retires(cluster):
    """What deploy.yml does while the owner is still down: the taker gets the service in its own
    file (the rollout), then every node a plan that moved the slot there. The takeover's container
    runs on, untouched beside the new replica, until that replica has served for the hold-down;
    the slot always has a healthy copy in discovery."""
    lab, plan = cluster
    owner, taker, bystander, tag = roles_when_the_owner_dies(lab, plan)
    owner.kill()
    remove_containers([owner])
    wait_for(lambda: worker_copies(bystander) == [(taker.name, tag)], 30, what="the takeover published")
    takeover = worker_containers(taker)

    image = load_demo_image()
    taker.add_service(dict(worker_spec(image), replicas=1))
    wait_for(lambda: set(worker_copies(bystander)) == {(taker.name, None), (taker.name, tag)}, 30,
             what="the planned replica published beside the takeover")
    assert set(takeover) < set(worker_containers(taker)), "the takeover was restarted when the node's own replica came"

    moved = dict(failover_plan(lab.nodes, image, {"worker": [taker.name]}), generation=2)
    for node in (taker, bystander):
        node.root.joinpath("plan.json").write_text(json.dumps(moved))
    deadline, seen = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        copies, running = worker_copies(bystander), worker_containers(taker)
        seen.append(copies)
        assert copies, "no healthy copy of the slot in discovery while the takeover retired"
        if copies == [(taker.name, None)]:
            break
        if len(running) == 2:
            assert set(takeover) < set(running)
        time.sleep(0.3)
    assert seen[-1] == [(taker.name, None)], seen[-5:]
    wait_for(lambda: len(worker_containers(taker)) == 1 and takeover[0] not in worker_containers(taker), 10,
             what="the takeover container gone, the planned one left")


def no_takeover_anywhere(lab, owner):
    return all(worker_instances(n) == [(owner.name, (WORKER_TAG,))] for n in lab.nodes[1:]) \
        and all(worker_containers(n) == [] for n in lab.nodes[1:])


@pytest.mark.parametrize("fault", ["freeze", "serf-only", "agent-only"])
def test_a_node_that_stalls_or_loses_a_process_ends_with_one_copy_and_its_state_intact(cluster, fault):
    """Freeze (SIGSTOP of Serf and agent, the container keeps running) and Serf killed: peers see
    the node failed and take its slot over, a duplicate while it lasts; once the node is back the
    copy goes. Agent killed: Serf still answers, so nothing is failed over; the restarted agent
    finds its container and restart count as they were."""
    lab, _ = cluster
    owner, taker = lab.nodes[0], lab.nodes[1]
    container = worker_containers(owner)
    if fault == "freeze":
        for proc in (owner.serf, owner.agent):
            os.kill(proc.pid, signal.SIGSTOP)
    elif fault == "serf-only":
        owner.serf.kill()
        owner.serf.wait()
    else:
        owner.agent.kill()
        owner.agent.wait()
    if fault == "agent-only":
        time.sleep(12)  # longer than Serf's failure detection: nothing may move
        assert no_takeover_anywhere(lab, owner)
        owner.start_agent()
    else:
        wait_for(lambda: any(n.name != owner.name and FAILOVER_TAG in "".join(t for _, tags in worker_instances(n) for t in tags)
                             for n in lab.nodes[1:]), 30, what="the slot taken over")
        if fault == "freeze":
            for proc in (owner.serf, owner.agent):
                os.kill(proc.pid, signal.SIGCONT)
        else:
            owner.start_serf(lab.keyring, [taker.gossip_address])
    wait_for(lambda: no_takeover_anywhere(lab, owner), 60, what="one copy left, the owner's")
    assert worker_containers(owner) == container  # the owner's own container was never touched
    health = wait_for(lambda: owner.get("/v1/health")[1] if owner.get("/v1/health")[0] == 200 else None, 20,
                      what="the owner's agent healthy")
    assert health["failover"]["takeovers"] == [] and health["instances"][0]["container"] == container[0][:12]
