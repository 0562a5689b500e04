"""The /metrics text: catalog, restarts, local health, the board's temperature and throttling."""

import re

from pico_agent._plan_document import Plan, ServicePlan
from pico_agent.catalog import Catalog, Instance
from pico_agent.metrics import Metrics


def test_metrics_text(tmp_path):
    catalog = Catalog("a")
    catalog.set_local([Instance("web", "a", "10.99.0.1", 80, "a/web-0")])
    thermal = tmp_path / "temp"
    thermal.write_text("48312\n")
    throttled = tmp_path / "throttled"
    throttled.write_text("50005\n")
    metrics = Metrics()
    metrics.observe_reconcile(0.25)
    plan = Plan(7, "c", {"web": ServicePlan(("a", "b", None), ("a", "b"), 0, 0.0, {}),
                         "down": ServicePlan(("b",), ("b",), 0, 0.0, {})}, {})
    text = metrics.render(catalog, [{"service": "web", "health": "healthy"}], {"web": 3}, 1, True, plan,
                          thermal=thermal, throttled=throttled)
    # Desired beside healthy, from the plan: a service with no healthy instance still has a sample.
    assert 'pico_service_desired{service="web"} 3' in text and 'pico_service_desired{service="down"} 1' in text
    assert 'pico_service_instances{service="down"}' not in text
    assert "pico_plan_generation 7" in text
    assert 'pico_service_instances{service="web"} 1' in text
    assert 'pico_restarts_total{service="web"} 3' in text
    assert 'pico_local_instances{service="web",health="healthy"} 1' in text
    assert "pico_node_temperature_celsius 48.312" in text
    assert 'pico_node_throttled{reason="under_voltage"} 1' in text
    assert 'pico_node_throttled{reason="throttled"} 1' in text
    assert 'pico_node_throttled_since_boot{reason="under_voltage"} 1' in text
    assert "pico_reconcile_duration_seconds_count 1" in text
    assert "pico_reconcile_last_duration_seconds 0.25" in text
    assert "quantile" not in text  # a last value is no quantile
    assert re.search(r'^pico_build_info\{version="[0-9.]+",python="3\.[0-9.]+"\} 1$', text, re.M)
    absent = metrics.render(catalog, [], {}, 0, False, thermal=tmp_path / "x", throttled=tmp_path / "y")
    assert "temperature" not in absent and "pico_serf_connected 0" in absent
    assert "pico_plan_generation 0" in absent and "pico_service_desired{" not in absent


def test_power_estimate_follows_the_power_roles_record_and_the_load(tmp_path):
    """The estimate is power_report.yml's for the same node: the settings count once the node
    booted with them, the load is the one-minute load over the CPUs; other boards get none."""
    import json
    import os

    from pico_agent._power_model import estimate
    from pico_agent.power import estimate_now

    record = tmp_path / "pico_power.fact"
    boot_id = tmp_path / "boot_id"
    loadavg = tmp_path / "loadavg"
    boot_id.write_text("this-boot\n")
    loadavg.write_text(f"{0.5 * (os.cpu_count() or 1):.2f} 0.1 0.1 1/80 999\n")
    saving = {"hdmi": False, "leds": False, "bluetooth": False, "audio": False, "arm_freq_mhz": 700}
    record.write_text(json.dumps({"profile": "eco", "settings": saving, "boot_config": {"arm_freq": 700},
                                  "boot_config_written_in_boot": "an-earlier-boot"}))

    def now(board="pizero"):
        return estimate_now(board, record, boot_id, loadavg)

    assert now() == estimate("pizero", saving, 0.5)
    assert now()["watts"] < now()["stock_watts"]
    # Written in this boot: config.txt is not in effect until the reboot, the stock one is.
    record.write_text(json.dumps({"settings": saving, "boot_config": {"arm_freq": 700},
                                  "boot_config_written_in_boot": "this-boot"}))
    assert now() == estimate("pizero", {}, 0.5)
    for broken in ("{not json", "[1, 2]", "x" * 70000):  # a damaged record: stock, not a crash
        record.write_text(broken)
        assert now() == estimate("pizero", {}, 0.5)
    record.unlink()
    assert now("pizero2") == estimate("pizero2", {}, 0.5)
    assert now("native") is None and now("") is None

    text = Metrics().render(Catalog("a"), [], {}, 0, True, thermal=tmp_path / "x", throttled=tmp_path / "y",
                            power=estimate("pizero", saving, 0))
    watts = estimate("pizero", saving, 0)["watts"]
    assert f"\npico_power_estimate_watts {watts:g}\n" in text and "\npico_power_stock_watts 0.54\n" in text
    assert "pico_power_" not in Metrics().render(Catalog("a"), [], {}, 0, True, thermal=tmp_path / "x",
                                                   throttled=tmp_path / "y")
