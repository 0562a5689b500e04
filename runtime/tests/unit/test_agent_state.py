"""The state file: survives restarts; a corrupt one is kept aside, not trusted."""

from pico_agent.state import StateFile


def test_state_survives_and_a_corrupt_file_is_kept_aside(tmp_path):
    state = StateFile(tmp_path / "state.json")
    state.save({"restarts": {"web": 2}})
    assert StateFile(tmp_path / "state.json").load() == {"restarts": {"web": 2}}
    (tmp_path / "state.json").write_text('{"restarts": {"web"')
    broken = StateFile(tmp_path / "state.json")
    assert broken.load() == {}
    assert "unreadable" in broken.problem
    kept = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"restarts": {"web"'
