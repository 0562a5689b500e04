"""pico.cloud.cluster_id: the same id for the same key, another for another key, no key refused."""
import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.filter.cluster_id import _cluster_id

KEY = "q3Jb8mYlI0V7kq6mZlH2sY6mJ3lJ9jv1f6m5bqkq3bI="


def test_the_id_follows_the_key_and_does_not_contain_it():
    assert _cluster_id(KEY) == _cluster_id(KEY) and len(_cluster_id(KEY)) == 16
    assert _cluster_id(KEY) != _cluster_id(KEY.replace("q", "r"))
    assert _cluster_id(KEY) not in KEY


@pytest.mark.parametrize("value", ["", None, 42])
def test_no_key_is_refused_with_the_variable_to_set(value):
    with pytest.raises(AnsibleFilterError, match="pico_agent_gossip_key"):
        _cluster_id(value)
