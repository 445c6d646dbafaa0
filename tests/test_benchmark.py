"""The measurement scripts in benchmarks/ run, small: cycle.py counts the work the memories should
save, the verifier's runs and the genuine students accused (its timings are figures, not tests:
README "Figures"), label_memory.py keeps no renamed label, recordings.py points replay at another
model."""
import importlib
import json


def _script(name: str):
    """A script of benchmarks/ as a module."""
    return importlib.import_module(f"benchmarks.{name}")


def test_the_benchmark_counts_the_work_each_kind_of_cycle_does(data_dir, capsys):
    args = ["--json", "--cycles", "2", "--frames", "2", "--peer-runs", "0", "--data", str(data_dir)]
    assert _script("cycle").main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["setup"]["tiles_found"] == r["setup"]["tiles_matched"] == 25
    cold, steady, new = r["work"]["cold"], r["work"]["steady"], r["work"]["new_photos"]
    # cold: every name read, every live tile searched by the full-range model, every face embedded
    assert cold["labels"] == 25 and cold["full"] == 22 and cold["near"] == 0
    assert cold["views"] >= 22
    # a lecture: names kept, faces looked for near where they were, settled sitters not embedded again
    assert steady["labels"] <= 1 and steady["near"] >= 15 and steady["full"] <= 7
    # (each face every capture, as with another photo in every tile: ~0.9 of new photos' views)
    assert steady["views"] <= 0.75 * new["views"]
    assert r["peer_ms"] is None and r["ratio"] is None
    # the verifier loaded with its gallery: it runs on a cold capture's new faces (one at least, within
    # what the capture left of its budget), is timed as its own stage, and no genuine student is
    # accused in any cycle, warm-ups included (the floor)
    assert r["verifier"]["loaded"] and cold["verifier"] >= 1 and "verify" in r["stages_ms"]["steady"]
    assert r["verifier"]["capture_budget_ms"] == 800
    assert r["genuine_accused"]["total"] == 0, r["genuine_accused"]


def test_label_memory_script_keeps_no_renamed_label(data_dir, capsys):
    """benchmarks/label_memory.py on one gallery of each theme: none of the renamed labels' old readings
    stands, and most same labels over moved Zoom video are kept."""
    assert _script("label_memory").main(["--galleries", "1", "--json", "--data", str(data_dir)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["all"]["renamed"] >= 100 and r["all"]["renamed_kept"] == 0
    assert r["zoom"]["same_kept"] >= 0.7 * r["zoom"]["same"]


def test_recordings_script_reads_seeds_and_points_replay_at_another_model(tmp_path):
    rec = _script("recordings")
    assert rec._seeds("1-3,7") == [1, 2, 3, 7]
    assert rec._config(tmp_path, None, None) is None
    model = tmp_path / "other.tflite"
    config = rec._config(tmp_path, str(model), None)
    from bot.config import load_settings

    settings = load_settings(config)
    assert settings.recognition.model_path() == model.resolve()
    assert settings.recognition.thresholds_path().name == "thresholds.json"
