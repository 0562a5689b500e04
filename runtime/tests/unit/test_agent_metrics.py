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
