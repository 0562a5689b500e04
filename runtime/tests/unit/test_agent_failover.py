"""Failover decisions: the same on every node, within capacity, duplicates over gaps, hand-back
with hysteresis, partitions converging to the plan, and plan files refused for cause."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pico_agent.catalog import Catalog, Instance
from pico_agent.failover import (FAILOVER_TAG, MAX_TAKEOVERS, Failover, PlanError, PlanSource, Slot, assign, parse_plan,
                                 rank)
from pico_agent.serf import Member

MB = 1024 * 1024
NODES = ["a", "b", "c", "d"]


def plan_data(slots=None, memory=256 * MB, request=64 * MB, candidates=NODES, generation=3, cluster="c1",
              archs=("armv6l",)):
    slots = slots or {"web": ["a", "b"], "db": ["c"]}
    return {
        "generation": generation, "cluster": cluster, "version": "x",
        "nodes": {n: {"arch": archs[i % len(archs)], "memory": memory, "cpus": 1.0,
                      "memory_requested": request * sum(s.count(n) for s in slots.values()),
                      "cpu_requested": 0.1 * sum(s.count(n) for s in slots.values())} for i, n in enumerate(NODES)},
        "services": {name: {"digest": "d", "slots": nodes, "failover": {
            "candidates": list(candidates), "requests": {"memory": request, "cpu": 0.1},
            "specs": {arch: {"name": name, "image": f"pico/{name}:1", "port": 8080, "tags": ["pico.spec:d"]}
                      for arch in archs}}} for name, nodes in slots.items()},
    }


def catalog_with(statuses, instances=()):
    catalog = Catalog("x")
    for name, status in statuses.items():
        catalog.update_member(Member(name, f"10.0.0.{ord(name)}", 7946, status, {}))
    by_node = {}
    for instance in instances:
        by_node.setdefault(instance.node, []).append(instance)
    for node, found in by_node.items():
        catalog.set_remote(node, "v", found)
    return catalog


def test_every_node_picks_the_same_taker_and_only_the_failed_nodes_slots_move():
    plan = parse_plan(plan_data())
    chosen, waiting = assign(plan, failed={"a"}, alive={"b", "c", "d"})
    assert list(chosen) == [Slot("web", 0, "a")] and not waiting
    assert chosen == assign(plan, failed={"a"}, alive={"d", "c", "b"})[0]  # order of the view does not matter
    assert chosen[Slot("web", 0, "a")] in {"b", "c", "d"}


def test_a_left_node_is_not_failed_over():
    """Drained or powered down on purpose: deploy.yml places its replicas, not failover."""
    plan = parse_plan(plan_data())

    def takers(status_of_a):
        """The nodes that take one of a's slots, every node deciding for itself."""
        found = []
        for node in ("b", "c", "d"):
            failover = Failover(node, plan)
            failover.update(catalog_with({"a": status_of_a, "b": "alive", "c": "alive", "d": "alive"}), now=0)
            found += [node] * len(failover.held)
        return found

    assert len(takers("failed")) == 1  # the contrast: a failed node's slot is taken, by one node
    assert takers("left") == []


def test_a_takeover_never_overcommits_and_what_fits_nowhere_waits():
    # Every node has room for exactly one more 64 MB replica beyond its own.
    data = plan_data(slots={"web": ["a", "a", "a", "b"]}, memory=192 * MB)
    data["nodes"]["a"]["memory_requested"] = 192 * MB
    plan = parse_plan(data)
    chosen, waiting = assign(plan, failed={"a"}, alive={"b", "c", "d"})
    takers = sorted(chosen.values())
    # b holds one (128 MB free), c and d none (192 MB free): 2 + 3 + 3 would fit, but a has only 3 slots.
    assert len(chosen) == 3 and not waiting and all(takers.count(n) * 64 * MB <= 192 * MB for n in set(takers))
    small = parse_plan(plan_data(slots={"web": ["a", "a", "a", "b"]}, memory=70 * MB, request=64 * MB))
    chosen, waiting = assign(small, failed={"a"}, alive={"b", "c", "d"})
    assert len(chosen) == 2 and len(waiting) == 1  # c and d take one each; b is full


def test_only_candidates_with_a_spec_for_their_architecture_take_over():
    plan = parse_plan(plan_data(candidates=["a", "b"]))
    chosen, waiting = assign(plan, failed={"a"}, alive={"b", "c", "d"})
    assert set(chosen.values()) == {"b"}
    chosen, waiting = assign(plan, failed={"a", "b"}, alive={"c", "d"})
    assert not chosen and sorted(s.index for s in waiting) == [0, 1]


def instance(service, node, slot_tag=None):
    tags = ("pico.spec:d",) + ((slot_tag,) if slot_tag else ())
    return Instance(service, node, "10.0.0.1", 8080, f"{node}/{service}", tags)


def taker_of(plan, slot, failed, alive):
    return assign(plan, failed, alive)[0][slot]


A_FAILED = {"a": "failed", "b": "alive", "c": "alive", "d": "alive"}


def taking_over_web_from_a(hold_down, drain_time):
    """The plan, and the Failover of the node that took a's web slot 0, right after a failed."""
    plan = parse_plan(plan_data())
    failover = Failover(taker_of(plan, Slot("web", 0, "a"), {"a"}, {"b", "c", "d"}), plan, hold_down, drain_time)
    assert failover.update(catalog_with(A_FAILED), now=0)
    return plan, failover


def test_the_takeover_runs_until_the_owner_is_back_healthy_for_the_hold_down_then_drains():
    _, failover = taking_over_web_from_a(hold_down=10, drain_time=3)
    down = A_FAILED
    (spec, drained, index), = failover.takeovers()
    assert spec.name == "web" and f"{FAILOVER_TAG}a:0" in spec.tags and not drained
    assert index == 2  # past web's two slots: the node's own replicas never take its number
    # The owner is alive again but its instance is not healthy yet: keep running.
    back = dict(down, a="alive")
    assert not failover.update(catalog_with(back), now=5)
    # Healthy now; a flap (gone again) restarts the hold-down.
    healthy = catalog_with(back, [instance("web", "a")])
    failover.update(healthy, now=6)
    failover.update(catalog_with(back), now=12)
    failover.update(healthy, now=13)
    assert not failover.update(healthy, now=22) and not failover.takeovers()[0][1]
    assert failover.update(healthy, now=23.5)  # 10 s covered: drained
    assert failover.takeovers()[0][1] is True
    assert failover.update(healthy, now=27) and failover.takeovers() == []


def test_a_duplicate_from_differing_views_converges_to_the_chosen_node():
    plan = parse_plan(plan_data())
    slot = Slot("web", 0, "a")
    chosen = taker_of(plan, slot, {"a"}, {"b", "c", "d"})
    other = next(n for n in ("b", "c", "d") if n != chosen)
    # `other` took the slot while it saw `chosen` failed too; now everyone agrees.
    stale = Failover(other, plan, hold_down=10)
    stale.update(catalog_with({"a": "failed", chosen: "failed", other: "alive"}), now=0)
    assert stale.held
    statuses = {"a": "failed", "b": "alive", "c": "alive", "d": "alive"}
    serving = catalog_with(statuses, [instance("web", chosen, slot.tag)])
    stale.update(serving, now=1)
    stale.update(serving, now=11)
    assert stale.held[slot].draining_since == 11  # the chosen node serves it: the stale copy drains
    # It had taken c's db too (it saw c failed); c is alive but serves no db yet: that copy stays.
    assert stale.held[Slot("db", 0, "c")].draining_since is None


def test_a_partition_heals_into_the_plan():
    """Each half failed the other over; once whole, every owner serves again and every copy goes."""
    plan = parse_plan(plan_data(slots={"web": ["a", "b", "c", "d"]}))
    halves = ({"a", "b"}, {"c", "d"})
    takeovers = {}
    for mine, theirs in (halves, halves[::-1]):
        for node in mine:
            failover = Failover(node, plan, hold_down=10, drain_time=3)
            failover.update(catalog_with({**{n: "alive" for n in mine}, **{n: "failed" for n in theirs}}), now=0)
            takeovers[node] = failover
    assert sum(len(f.held) for f in takeovers.values()) == 4  # each half took the other half's two slots
    whole = catalog_with({n: "alive" for n in NODES}, [instance("web", n) for n in NODES])
    for now in (1, 11.5, 15):
        for failover in takeovers.values():
            failover.update(whole, now)
    assert all(not f.held for f in takeovers.values())


def test_a_newer_plan_that_moved_the_slot_retires_the_takeover():
    _, failover = taking_over_web_from_a(hold_down=5, drain_time=1)
    statuses = A_FAILED
    # deploy.yml ran without a: web now on c and b (planned, untagged instances).
    failover.plan = parse_plan(plan_data(slots={"web": ["c", "b"], "db": ["c"]}, generation=4))
    served = catalog_with(statuses, [instance("web", "c"), instance("web", "b")])
    for now in (1, 6.5, 8):
        failover.update(served, now)
    assert not failover.held


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("cluster"), "no cluster id"),
    (lambda d: d["services"]["web"].pop("failover"), "no failover entry"),
    (lambda d: d["services"]["web"].update(slots=["zz"]), "must name nodes"),
    (lambda d: d.update(generation=-1), "generation"),
    # Made up: an agent that took it would refuse every real plan after it as older.
    (lambda d: d.update(generation=2**53 - 1), "generation"),
    # Shapes that once raised TypeError or AttributeError and took the supervisor loop down.
    (lambda d: d["services"]["web"]["failover"].update(requests=[64, 0.1]), "requests must be an object"),
    (lambda d: d["services"]["web"]["failover"].update(requests="64m"), "requests must be an object"),
    (lambda d: d["services"]["web"].update(slots=[["a"], "b"]), "must name nodes"),
    (lambda d: d["services"]["web"]["failover"].update(candidates=[{"a": 1}]), "candidates"),
    (lambda d: d["services"]["web"]["failover"]["specs"]["armv6l"].update(port="http"), "port"),
    (lambda d: d["services"]["web"]["failover"]["specs"]["armv6l"].update(env={"PASSWORD": "s3cret", "1": 2}), "env"),
])
def test_a_bad_plan_is_refused_with_the_reason_and_no_secret(mutate, message):
    data = plan_data()
    mutate(data)
    with pytest.raises(PlanError, match=message) as err:
        parse_plan(data)
    assert "s3cret" not in str(err.value)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


PLAN_PATHS = list(_paths(plan_data()))[1:]
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                           max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PLAN_PATHS), JSON_VALUES)
def test_any_json_in_any_place_of_a_plan_is_taken_or_refused_never_raised(path, value):
    data = plan_data()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        parse_plan(data)
    except PlanError:
        pass


def test_the_plan_file_is_refused_when_corrupt_foreign_or_older_and_the_last_good_one_kept(tmp_path):
    path, kept = tmp_path / "plan.json", tmp_path / "state" / "plan.json"
    source = PlanSource(path, kept, "c1", "b")
    assert not source.poll() and source.plan is None  # no plan yet: nothing to fail over
    path.write_text(json.dumps(plan_data(generation=3)))
    assert source.poll() and source.plan.generation == 3
    assert kept.stat().st_mode & 0o777 == 0o600  # specs may carry env
    for bad, why in ((json.dumps(plan_data(generation=2)), "older than"),
                     (json.dumps(plan_data(generation=5, cluster="other")), "another cluster"),
                     ("{not json", "refused"), ("[" * 100000, "nested too deeply")):
        path.write_text(bad)
        assert not source.poll()
        assert why in source.problem and source.plan.generation == 3
    # A kept plan of a shape that once raised is refused at start, not raised: the agent starts.
    bad_kept = plan_data(generation=9)
    bad_kept["services"]["web"]["failover"]["requests"] = "64m"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(bad_kept))
    assert PlanSource(path, other, "c1", "b").plan is None
    # A restart keeps the last good plan even though the file is still bad.
    assert PlanSource(path, kept, "c1", "b").plan.generation == 3
    path.write_text(json.dumps(plan_data(generation=4)))
    assert source.poll() and source.problem is None and source.plan.generation == 4


def test_a_takeover_whose_port_would_run_past_65535_waits_and_says_why():
    data = plan_data()
    data["services"]["web"]["failover"]["specs"]["armv6l"]["port"] = 65534
    plan = parse_plan(data)
    slot = Slot("web", 0, "a")
    failover = Failover(taker_of(plan, slot, {"a"}, {"b", "c", "d"}), plan)
    failover.update(catalog_with(A_FAILED), now=0)
    assert slot not in failover.held and slot in failover.waiting


def test_no_node_takes_more_than_its_cap_of_slots_whatever_the_requests_leave_room_for():
    """A plan of 400 slots without requests once had the survivors start 194 and 208 containers."""
    data = plan_data(slots={"web": ["a"] * 400}, request=0)
    data["services"]["web"]["failover"]["requests"]["cpu"] = 0
    for node in data["nodes"].values():
        node["cpu_requested"] = 0
    chosen, waiting = assign(parse_plan(data), failed={"a"}, alive={"b", "c", "d"})
    takers = list(chosen.values())
    assert max(takers.count(n) for n in set(takers)) == MAX_TAKEOVERS
    assert len(chosen) == 3 * MAX_TAKEOVERS and len(waiting) == 400 - 3 * MAX_TAKEOVERS


def test_a_takeover_that_cannot_be_made_is_logged_once_not_on_every_pass(capsys):
    data = plan_data()
    data["services"]["web"]["failover"]["specs"]["armv6l"]["port"] = 65534
    plan = parse_plan(data)
    failover = Failover(taker_of(plan, Slot("web", 0, "a"), {"a"}, {"b", "c", "d"}), plan)
    for now in range(30):
        failover.update(catalog_with(A_FAILED), now=now)
    assert capsys.readouterr().err.count("failover_spec_refused") == 1


def test_a_draining_takeover_whose_owner_fails_again_is_revived_not_replaced():
    """Replaced, the slot had no copy for up to 4.5 s: the container stopped, another started."""
    _, failover = taking_over_web_from_a(hold_down=1, drain_time=5)
    back = dict(A_FAILED, a="alive")
    healthy = catalog_with(back, [instance("web", "a")])
    failover.update(healthy, now=1)
    failover.update(healthy, now=2.5)
    (takeover,) = failover.held.values()
    assert takeover.draining_since is not None  # the owner is back: this copy drains
    assert failover.update(catalog_with(A_FAILED), now=3)  # and the owner fails again
    assert list(failover.held.values()) == [takeover] and takeover.draining_since is None
    assert failover.takeovers()[0][1] is False  # published again, the same replica
    assert not failover.update(catalog_with(A_FAILED), now=20) and failover.held


def test_survivors_on_different_plans_do_not_leave_a_slot_to_each_other_for_ever():
    """One survivor missed a deploy: by its plan the other takes a's slot, and by the other's plan
    it does. The slot shows as uncovered on both, and after escalate_after the next candidate by
    its own plan takes it: a duplicate may follow, a gap does not last."""
    first, second = sorted(["b", "c"], key=lambda n: rank("web", 0, n), reverse=True)

    def plan_where_full(full, generation):
        data = plan_data(slots={"web": ["a"]}, candidates=["b", "c"], memory=64 * MB, generation=generation)
        data["nodes"][full]["memory_requested"] = 64 * MB  # no room left on it, by this plan
        return parse_plan(data)

    # By the newer plan the first-ranked node is full, so the second takes the slot; by the older
    # one the first has room and takes it. Each node holds the plan that picks the other.
    views = {first: Failover(first, plan_where_full(first, 2), escalate_after=20),
             second: Failover(second, plan_where_full("d", 1), escalate_after=20)}
    down = {"a": "failed", "b": "alive", "c": "alive", "d": "alive"}
    for now in (0, 10, 19):
        for failover in views.values():
            failover.update(catalog_with(down), now=now)
            assert not failover.held and [u["slot"] for u in failover.status()["uncovered"]] == [0]
    assert views[first].status()["uncovered"][0]["for_s"] == 19
    for failover in views.values():
        failover.update(catalog_with(down), now=21)
    assert not views[first].held  # no room by its own plan: it never overcommits
    assert list(views[second].held) == [Slot("web", 0, "a")]
    # Once the copy serves, neither sees the slot uncovered, and the copy stays: its plan's taker
    # does not serve it.
    serving = catalog_with(down, [instance("web", second, f"{FAILOVER_TAG}a:0")])
    for now in (22, 60):
        for failover in views.values():
            failover.update(serving, now=now)
            assert failover.status()["uncovered"] == []
    assert list(views[second].held) == [Slot("web", 0, "a")] and not views[second].takeovers()[0][1]
