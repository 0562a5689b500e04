"""What `lab status` and `lab ready` make of an agent's health report."""
from lab import cluster


def test_services_column_names_each_instance_and_its_health():
    health = {"instances": [{"service": "demo", "replica": 0, "health": "healthy"},
                            {"service": "web", "replica": 0, "health": "starting"},
                            {"service": "web", "replica": 1, "health": "down"}]}
    assert cluster._services_text(health) == "demo:healthy web:starting web-1:down"
    assert cluster._services_text({"instances": []}) == "(none)"
    assert cluster._services_text(None) == "-"  # no agent answered


def test_ready_means_every_instance_healthy_and_an_agent_answering():
    assert cluster._all_healthy("demo:healthy web-1:healthy")
    assert cluster._all_healthy("(none)")
    assert not cluster._all_healthy("demo:healthy web:starting")
    assert not cluster._all_healthy("demo:down")
    assert not cluster._all_healthy("-")
