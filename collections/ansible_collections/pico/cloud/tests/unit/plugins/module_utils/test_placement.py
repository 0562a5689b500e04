"""The placement planner: declarations validated, every slot placed or a clear error, and the
properties the failover and energy work build on (determinism, stability, capacity, constraints)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pico.cloud.plugins.module_utils._placement import (
    PlacementError, consolidate, moves, plan, plan_waking, validate_service, validate_services)

MB = 1024 ** 2


def node(name, arch="armv6l", board="pizero", memory=352, cpus=1.0, labels=None, images=("pico/demo:1.0.0",), alive=True):
    return {"name": name, "arch": arch, "board": board, "memory": memory * MB, "cpus": cpus,
            "labels": labels or {}, "images": list(images) if images is not None else None, "alive": alive}


def service(name="demo", replicas=3, memory="32m", cpu=0.1, **extra):
    return validate_service({"name": name, "image": "pico/demo:1.0.0", "replicas": replicas,
                             "resources": {"memory": memory, "cpu": cpu}, **extra})


def lab(count=3, **extra):
    return [node("pizero-%d" % i, **extra) for i in range(1, count + 1)]


# -- declarations --------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "message"), [
    ({"name": "Demo", "image": "x:1"}, "service name 'Demo'"),
    ({"name": "demo"}, "service demo: image is required"),
    ({"name": "demo", "image": "x:1", "replica": 2}, "service demo: unknown field replica"),
    ({"name": "demo", "image": "x:1", "replicas": -1}, "replicas = -1"),
    ({"name": "demo", "image": "x:1", "resources": {"memory": "lots"}}, "resources.memory = 'lots'"),
    ({"name": "demo", "image": "x:1", "resources": {"cpu": float("nan")}}, "resources.cpu = nan: must be a number"),
    ({"name": "demo", "image": "x:1", "constraints": {"arch": ["armv6l"], "zone": "a"}}, "constraints: unknown field zone"),
    ({"name": "demo", "image": "x:1", "spread": "site"}, "spread = 'site'"),
    ({"name": "demo", "image": "x:1", "strategy": "binpack"}, "strategy = 'binpack'"),
    ({"name": "demo", "image": "x:1", "update": {"order": "parallel"}}, "update.order = 'parallel'"),
    ({"name": "demo", "image": "x:1", "update": {"order": "start-first"}}, "cannot be kept on one node"),
    ({"name": "demo", "image": "x:1", "update": {"bath_size": 2}}, "update: unknown field bath_size"),
    ({"name": "demo", "image": "x:1", "replicas": 2, "update": {"canary": 3}}, "update.canary = 3"),
])
def test_a_bad_declaration_names_the_service_the_field_and_the_value(raw, message):
    with pytest.raises(PlacementError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_service(raw)


def test_a_service_declared_twice_is_refused():
    with pytest.raises(PlacementError, match="services declared twice: demo"):
        validate_services([{"name": "demo", "image": "x:1"}, {"name": "demo", "image": "x:2"}])


def test_defaults_are_a_safe_rolling_update():
    update = service()["update"]
    assert update == {"batch_size": 1, "order": "stop-first", "min_healthy_time": 5.0, "healthy_deadline": 180.0,
                      "canary": 0, "auto_rollback": True, "drain_time": 3.0}


# -- placing ---------------------------------------------------------------------------------------

def test_spread_puts_one_replica_on_each_node():
    result = plan([service(replicas=3)], lab(3))
    assert sorted(result["services"]["demo"]["slots"]) == ["pizero-1", "pizero-2", "pizero-3"]
    assert result["nodes"]["pizero-1"] == {"memory_requested": 32 * MB, "cpu_requested": 0.1, "replicas": {"demo": 1},
                                           "arch": "armv6l", "memory": 352 * MB, "cpus": 1.0}


def test_more_replicas_than_nodes_share_them_evenly():
    slots = plan([service(replicas=5)], lab(3))["services"]["demo"]["slots"]
    assert sorted(slots.count(n) for n in set(slots)) == [1, 2, 2]


def test_pack_fills_as_few_nodes_as_fit_and_names_the_empty_ones():
    packed = plan([service(replicas=4, memory="100m", strategy="pack")], lab(3))
    assert packed["services"]["demo"]["slots"] == ["pizero-1", "pizero-1", "pizero-1", "pizero-2"]
    assert packed["nodes"]["pizero-3"]["replicas"] == {}


def test_min_nodes_keeps_a_packed_service_on_that_many_nodes():
    packed = plan([service(replicas=3, strategy="pack", min_nodes=2)], lab(4))
    assert packed["services"]["demo"]["slots"] == ["pizero-1", "pizero-1", "pizero-2"]
    assert packed["empty"] == ["pizero-3", "pizero-4"]


@pytest.mark.parametrize(("extra", "message"), [
    (dict(replicas=2, min_nodes=3), "min_nodes = 3 but replicas = 2: a node holds at least one replica"),
    (dict(min_nodes=0), "min_nodes = 0: a whole number from 1"),
    (dict(min_nodes=True), "min_nodes = True"),
])
def test_a_bad_min_nodes_is_refused(extra, message):
    with pytest.raises(PlacementError, match=message):
        service(**extra)


def test_pack_with_any_min_nodes_the_nodes_allow_is_placed():
    """4 replicas, min_nodes 3, on 3 roomy nodes: 2 + 1 + 1 (first fit alone gave 2 + 2 and a refusal)."""
    packed = plan([service(replicas=4, strategy="pack", min_nodes=3)], lab(3))
    assert sorted(packed["services"]["demo"]["slots"]) == ["pizero-1", "pizero-1", "pizero-2", "pizero-3"]
    for replicas in range(1, 13):
        for min_nodes in range(1, min(replicas, 6) + 1):
            slots = plan([service(replicas=replicas, strategy="pack", min_nodes=min_nodes, memory="8m", cpu=0.01)],
                         lab(6))["services"]["demo"]["slots"]
            assert len(set(slots)) >= min_nodes and None not in slots, (replicas, min_nodes, slots)


def test_slots_held_now_never_make_a_declaration_that_fits_fail():
    """Kept where they run, 4 replicas on 2 nodes cannot meet min_nodes 3: that service is placed
    again, moving as few as it takes, and the other service keeps its slots."""
    current = {"demo": {"slots": ["pizero-1", "pizero-1", "pizero-2", "pizero-2"]},
               "web": {"slots": ["pizero-3", "pizero-1"]}}
    services = [service(replicas=4, strategy="pack", min_nodes=3), service("web", replicas=2)]
    result = plan(services, lab(3), current)
    slots = result["services"]["demo"]["slots"]
    assert len(set(slots)) == 3
    assert len(moves({"services": current}, result)) == 1
    assert result["services"]["web"]["slots"] == ["pizero-3", "pizero-1"]


def test_min_nodes_that_the_eligible_nodes_cannot_give_fails_whole():
    with pytest.raises(PlacementError, match="service demo: its replicas fit on 1 node, and min_nodes asks for 2"):
        plan([service(replicas=2, min_nodes=2)], lab(1))


def test_consolidation_moves_only_what_sits_on_nodes_it_empties():
    services = [service("web", replicas=2, strategy="pack", min_nodes=2), service("db", replicas=1, strategy="pack")]
    nodes = lab(6)
    spread_before = {"web": {"slots": ["pizero-5", "pizero-2"]}, "db": {"slots": ["pizero-6"]}}
    result = consolidate(services, nodes, spread_before)
    assert result["empty"] == ["pizero-3", "pizero-4", "pizero-5", "pizero-6"]
    assert result["services"]["web"]["slots"][1] == "pizero-2"  # already on a node that stays: kept
    assert [m[:2] for m in moves({"services": spread_before}, result)] == [("db", 0), ("web", 0)]


def test_consolidation_never_uses_more_nodes_than_a_fresh_pack():
    services = [service("a", replicas=2, memory="200m", strategy="pack"), service("b", replicas=2, memory="150m", strategy="pack")]
    scattered = {"a": {"slots": ["pizero-1", "pizero-2"]}, "b": {"slots": ["pizero-3", "pizero-4"]}}
    assert len(consolidate(services, lab(4), scattered)["empty"]) >= len(plan(services, lab(4))["empty"])


def test_powered_down_nodes_are_woken_only_as_many_as_needed():
    live = lab(2)
    standby = [node("pizero-9"), node("pizero-3"), node("pizero-4", labels={"pack_order": "1"})]
    fits, woken = plan_waking([service(replicas=2, memory="300m", strategy="pack")], live, None, standby)
    assert woken == []
    bigger, woken = plan_waking([service(replicas=3, memory="300m", strategy="pack")], live, None, standby)
    assert woken == ["pizero-4"]  # its pack_order comes first
    assert "pizero-4" in bigger["services"]["demo"]["slots"]


def test_waking_for_a_label_wakes_the_one_board_that_has_it_and_moves_nothing_that_runs():
    """A replica needs a label only the last standby board has; a spread service runs 3 + 3 on
    the live boards. One board is woken, and the spread service stays where it runs."""
    live = lab(2)
    running = plan([service("web", replicas=6)], live)
    standby = [node("spare-%d" % i) for i in range(1, 6)] + [node("spare-gpu", labels={"gpu": "1"})]
    needs_gpu = service("ml", replicas=1, constraints={"labels": {"gpu": "1"}})
    result, wake = plan_waking([service("web", replicas=6), needs_gpu], live, running["services"], standby)
    assert wake == ["spare-gpu"]
    assert [m for m in moves(running, result) if m[0] == "web"] == []
    assert result["services"]["ml"]["slots"] == ["spare-gpu"]


def test_boards_are_woken_before_running_replicas_are_moved_and_without_boards_they_move():
    """Four live boards hold web and api (48 MiB) and batch (150 MiB); a new 150 MiB service fits
    only if batch and web swap places. With boards to wake, two are woken and nothing moves;
    with none, the swap is made rather than the declaration refused."""
    def packed(name, memory="48m"):
        return service(name, replicas=2, memory=memory, cpu=0.2, strategy="pack", min_nodes=2)
    live = [node("native-%d" % i, memory=200) for i in range(1, 5)]
    current = {"web": {"slots": ["native-1", "native-2"]}, "api": {"slots": ["native-1", "native-2"]},
               "batch": {"slots": ["native-3", "native-4"]}}
    declared = [packed("web"), packed("api"), packed("batch", "150m"), packed("more", "150m")]
    result, wake = plan_waking(declared, live, current, [node("native-5", memory=200), node("native-6", memory=200)])
    assert wake == ["native-5", "native-6"]
    assert [m for m in moves({"services": current}, result) if m[0] != "more"] == []
    result, wake = plan_waking(declared, live, current, [])
    assert wake == [] and None not in result["services"]["more"]["slots"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(live_room=st.lists(st.integers(0, 3), min_size=1, max_size=3),
       spare_room=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       replicas=st.integers(1, 8), strategy=st.sampled_from(["spread", "pack"]))
def test_waking_wakes_no_more_boards_than_the_fewest_that_fit(live_room, spare_room, replicas, strategy):
    """Against brute force: every subset of the powered-down boards, smallest first."""
    import itertools
    unit = 100
    live = [node("live-%d" % i, memory=room * unit) if room else node("live-%d" % i, memory=1) for i, room in enumerate(live_room)]
    standby = [node("spare-%d" % i, memory=room * unit) for i, room in enumerate(spare_room)]
    declared = [service(replicas=replicas, memory="%dm" % unit, cpu=0.01, strategy=strategy)]
    fewest = None
    for count in range(0, len(standby) + 1):
        for chosen in itertools.combinations(standby, count):
            try:
                plan(declared, live + list(chosen))
            except PlacementError:
                continue
            fewest = count
            break
        if fewest is not None:
            break
    if fewest is None:
        with pytest.raises(PlacementError):
            plan_waking(declared, live, None, standby)
        return
    result, wake = plan_waking(declared, live, None, standby)
    assert len(wake) <= fewest and None not in result["services"]["demo"]["slots"]


def test_when_even_every_powered_down_node_is_not_enough_the_error_says_so():
    with pytest.raises(PlacementError, match=r"2 of 6 replicas fit.*every powered-down node \(pizero-9\)"):
        plan_waking([service(replicas=6, memory="300m")], lab(2), None, [node("pizero-9")])


def test_spread_over_a_label_puts_replicas_on_different_sites():
    nodes = [node("a-1", labels={"site": "a"}), node("a-2", labels={"site": "a"}), node("b-1", labels={"site": "b"})]
    slots = plan([service(replicas=2, spread="label:site")], nodes)["services"]["demo"]["slots"]
    assert sorted(n[0] for n in slots) == ["a", "b"]


def test_constraints_choose_the_nodes():
    nodes = lab(2) + [node("zero2-1", arch="aarch64", board="pizero2", labels={"role": "edge"})]
    only_arm64 = service(replicas=2, constraints={"arch": "aarch64"})
    assert plan([only_arm64], nodes)["services"]["demo"]["slots"] == ["zero2-1", "zero2-1"]
    by_label = service(replicas=1, constraints={"labels": {"role": "edge"}})
    assert plan([by_label], nodes)["services"]["demo"]["slots"] == ["zero2-1"]


@pytest.mark.parametrize(("declared", "nodes", "message"), [
    (dict(memory="600m"), lab(3), "service demo: 0 of 3 replicas fit (requests 600 MiB memory / 0.1 CPU, it has 352 MiB / 1"),
    (dict(replicas=12, memory="100m"), lab(3), "service demo: 9 of 12 replicas fit (no room left: pizero-1, pizero-2, pizero-3)"),
    (dict(constraints={"labels": {"site": "mars"}}), lab(2), "no label site=mars: pizero-1, pizero-2"),
    (dict(constraints={"arch": "aarch64", "board": "pizero"}), lab(2), "architecture armv6l not in aarch64"),
])
def test_what_cannot_be_placed_fails_whole_with_the_reason(declared, nodes, message):
    with pytest.raises(PlacementError) as err:
        plan([service(**declared)], nodes)
    assert message in str(err.value)
    assert "Nothing was changed" in str(err.value)


def test_an_image_missing_for_an_architecture_is_named():
    nodes = [node("pizero-1", images=["other:1"]), node("zero2-1", arch="aarch64", board="pizero2")]
    with pytest.raises(PlacementError, match=r"image pico/demo:1.0.0 is not among its images .*pizero-1.*load the image on those nodes"):
        plan([service(replicas=2, constraints={"arch": "armv6l"})], nodes)
    per_arch = validate_service({"name": "demo", "image": {"aarch64": "pico/demo:1.0.0"}, "replicas": 1})
    assert plan([per_arch], nodes)["services"]["demo"]["slots"] == ["zero2-1"]


def test_dead_nodes_take_nothing():
    nodes = lab(3)
    nodes[1]["alive"] = False
    assert "pizero-2" not in plan([service(replicas=4)], nodes)["services"]["demo"]["slots"]


# -- stability -------------------------------------------------------------------------------------

def test_nothing_changed_moves_nothing():
    services, nodes = [service(replicas=3), service("web", replicas=2, memory="64m")], lab(4)
    first = plan(services, nodes)
    assert plan(services, nodes, first["services"]) == first
    assert moves(first, plan(services, nodes, first["services"])) == []


def test_adding_a_node_moves_only_what_spread_needs():
    two = plan([service(replicas=3)], lab(2))
    three = plan([service(replicas=3)], lab(3), two["services"])
    assert len(moves(two, three)) == 1  # 2+1 becomes 1+1+1: one slot moves, to the new node
    assert [m[3] for m in moves(two, three)] == ["pizero-3"]


def test_slots_kept_from_the_current_plan_never_overcommit_a_node():
    """The keep phase checks room too: a service whose request grew keeps on a node only what
    still fits there, and the rest is placed elsewhere."""
    grown = service(replicas=3, memory="150m", strategy="pack")
    result = plan([grown], lab(2), {"demo": {"slots": ["pizero-1"] * 3}})
    slots = result["services"]["demo"]["slots"]
    assert (slots.count("pizero-1"), slots.count("pizero-2")) == (2, 1)


def test_removing_a_node_moves_only_its_replicas():
    four = plan([service(replicas=4)], lab(4))
    nodes = lab(4)
    nodes[2]["alive"] = False
    three = plan([service(replicas=4)], nodes, four["services"])
    assert [(m[2]) for m in moves(four, three)] == ["pizero-3"]


# -- properties --------------------------------------------------------------------------------------

node_strategy = st.builds(
    lambda i, arch, memory, cpus, site, alive: node("n%02d" % i, arch=arch, board="pizero" if arch == "armv6l" else "pizero2",
                                                    memory=memory, cpus=cpus, labels={"site": site}, alive=alive),
    st.integers(0, 99), st.sampled_from(["armv6l", "aarch64"]), st.integers(64, 512), st.sampled_from([1.0, 4.0]),
    st.sampled_from(["a", "b", "c"]), st.booleans())
service_strategy = st.builds(
    lambda i, replicas, memory, cpu, strategy, arch, spread: service(
        "s%d" % i, replicas=replicas, memory="%dm" % memory, cpu=cpu, strategy=strategy, spread=spread,
        constraints={"arch": arch} if arch else {}),
    st.integers(0, 20), st.integers(0, 6), st.integers(8, 128), st.sampled_from([0.05, 0.1, 0.5]),
    st.sampled_from(["spread", "pack"]), st.sampled_from([None, "armv6l", "aarch64"]), st.sampled_from(["node", "label:site"]))
cluster = st.tuples(st.lists(service_strategy, max_size=5, unique_by=lambda s: s["name"]),
                    st.lists(node_strategy, min_size=1, max_size=12, unique_by=lambda n: n["name"]))


def check(services, nodes, result):
    """What every plan guarantees: every slot placed, on a live node meeting the constraints,
    within every node's capacity; min_nodes met."""
    by_name = dict((n["name"], n) for n in nodes)
    used = dict((n["name"], [0, 0.0]) for n in nodes)
    for s in services:
        slots = result["services"][s["name"]]["slots"]
        assert len(slots) == s["replicas"] and None not in slots
        assert len(set(slots)) >= min(s["min_nodes"], s["replicas"])
        for name in slots:
            n = by_name[name]
            assert n["alive"]
            assert not s["constraints"]["arch"] or n["arch"] in s["constraints"]["arch"]
            used[name][0] += s["resources"]["memory"]
            used[name][1] += s["resources"]["cpu"]
    for name, (memory, cpu) in used.items():
        assert memory <= by_name[name]["memory"] and cpu <= by_name[name]["cpus"] + 1e-6


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster)
def test_every_plan_meets_constraints_and_capacity_and_is_deterministic(case):
    services, nodes = case
    try:
        result = plan(services, nodes)
    except PlacementError as err:
        assert "Nothing was changed" in str(err)
        return
    assert plan(list(reversed(services)), list(reversed(nodes))) == result  # input order does not matter
    check(services, nodes, result)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster)
def test_consolidation_gives_the_same_answer_whatever_order_its_input_comes_in(case):
    services, nodes = case
    try:
        result = consolidate(services, nodes, plan(services, nodes)["services"])
    except PlacementError:
        return
    again = consolidate(list(reversed(services)), list(reversed(nodes)), plan(services, nodes)["services"])
    assert again == result and result["empty"] == sorted(result["empty"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster, st.data())
def test_a_plan_that_keeps_current_slots_holds_the_same_and_never_refuses_what_fits(case, data):
    """Current slots drawn anywhere (on nodes that are down, gone or full, too many, too few):
    the plan still meets every guarantee, and fits whenever a fresh plan fits."""
    services, nodes = case
    names = [n["name"] for n in nodes] + ["gone", None]
    current = dict((s["name"], {"slots": data.draw(st.lists(st.sampled_from(names), max_size=8))})
                   for s in services if data.draw(st.booleans()))
    try:
        fresh = plan(services, nodes)
    except PlacementError:
        fresh = None
    try:
        kept = plan(services, nodes, current)
    except PlacementError:
        assert fresh is None, "a declaration that fits was refused for where it runs now"
        return
    check(services, nodes, kept)
    assert plan(services, nodes, current) == kept


def test_most_generated_clusters_place_something():
    """The properties above are worth something only if the generator's clusters mostly fit."""
    import random
    rng = random.Random(7)
    placed = 0
    for attempt in range(300):
        nodes = [node("n%02d" % i, arch=rng.choice(["armv6l", "aarch64"]), memory=rng.randint(64, 512),
                      cpus=rng.choice([1.0, 4.0]), labels={"site": rng.choice("abc")}, alive=rng.random() < 0.5)
                 for i in range(rng.randint(1, 12))]
        services = [service("s%d" % i, replicas=rng.randint(0, 6), memory="%dm" % rng.randint(8, 128),
                            cpu=rng.choice([0.05, 0.1, 0.5]), strategy=rng.choice(["spread", "pack"]),
                            spread=rng.choice(["node", "label:site"]),
                            constraints={"arch": rng.choice(["armv6l", "aarch64"])} if rng.random() < 0.67 else {})
                    for i in range(rng.randint(0, 5))]
        try:
            plan(services, nodes)
            placed += 1
        except PlacementError:
            pass
    assert placed >= 150, placed


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
garbage_service = st.fixed_dictionaries({"name": st.just("web"), "image": st.just("app:1")}, optional=dict(
    (key, json_values) for key in ("replicas", "resources", "constraints", "spread", "strategy", "update", "tags",
                                   "min_nodes", "port", "bogus")))


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.lists(garbage_service, max_size=3)))
def test_garbage_declarations_get_a_clean_error(raw):
    try:
        services = validate_services(raw)
    except PlacementError:
        return
    plan_or_error(services)


def plan_or_error(services):
    try:
        plan(services, lab(3))
    except PlacementError:
        pass


@settings(max_examples=100, deadline=None)
@given(cluster)
def test_a_plan_is_stable_under_no_change(case):
    services, nodes = case
    try:
        first = plan(services, nodes)
    except PlacementError:
        return
    assert moves(first, plan(services, nodes, first["services"])) == []


# -- rollouts --------------------------------------------------------------------------------------

from ansible_collections.pico.cloud.plugins.module_utils._placement import node_specs, rollout_steps  # noqa: E402

ARCH = {"pizero-%d" % i: "armv6l" for i in range(1, 5)}


def specs(svc, nodes):
    return node_specs(svc, plan([svc], nodes)["services"][svc["name"]]["slots"], ARCH)


def test_one_file_per_node_tagged_with_the_spec():
    files = specs(service(replicas=4, port=8080, health={"type": "http", "path": "/healthz"}), lab(3))
    assert sorted(f["replicas"] for f in files.values()) == [1, 1, 2]
    first = next(iter(files.values()))
    assert first["image"] == "pico/demo:1.0.0" and first["port"] == 8080
    assert [t for t in first["tags"] if t.startswith("pico.spec:")] and "resources" not in first


def test_a_new_version_replaces_node_by_node_with_the_canary_first():
    nodes = lab(3, images=("pico/demo:1.0.0", "pico/demo:2.0.0"))
    old = specs(service(replicas=3), nodes)
    new_service = validate_service({"name": "demo", "image": "pico/demo:2.0.0", "replicas": 3,
                                    "update": {"canary": 1, "batch_size": 2}})
    batches = rollout_steps(new_service, old, specs(new_service, nodes))
    assert [(b["canary"], [s["action"] for s in b["steps"]]) for b in batches] == [
        (True, ["replace"]), (False, ["replace", "replace"])]


def test_moves_start_the_new_instances_before_the_old_stop():
    svc = service(replicas=2)
    old = {"pizero-1": specs(svc, lab(2))["pizero-1"], "pizero-2": specs(svc, lab(2))["pizero-2"]}
    new = {"pizero-1": old["pizero-1"], "pizero-3": old["pizero-2"]}
    batches = rollout_steps(svc, old, new)
    assert [[(s["node"], s["action"]) for s in b["steps"]] for b in batches] == [[("pizero-3", "start")], [("pizero-2", "stop")]]


def test_nothing_changed_means_no_batches():
    svc = service(replicas=3)
    files = specs(svc, lab(3))
    assert rollout_steps(svc, files, dict(files)) == []


def test_scaling_keeps_the_running_replicas():
    svc = service(replicas=1)
    one = specs(svc, lab(1))
    two = specs(service(replicas=2), lab(1))
    assert [[s["action"] for s in b["steps"]] for b in rollout_steps(svc, one, two)] == [["scale-up"]]
    down = rollout_steps(svc, two, one)
    assert [[(s["action"], s["drain"]) for s in b["steps"]] for b in down] == [[("scale-down", [1])]]
