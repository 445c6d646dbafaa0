"""benchmarks/cycle.py runs end to end, and the work it counts is the work the memories should save
(its timings are figures, not tests: README "Figures")."""
import importlib.util
import json
from pathlib import Path


def test_the_benchmark_counts_the_work_each_kind_of_cycle_does(data_dir, capsys):
    spec = importlib.util.spec_from_file_location("cycle", Path(__file__).parent.parent / "benchmarks" / "cycle.py")
    cycle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cycle)
    assert cycle.main(["--json", "--cycles", "2", "--frames", "2", "--peer-runs", "0", "--data", str(data_dir)]) == 0
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
