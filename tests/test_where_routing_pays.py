"""docs/where_routing_pays.py: the sweep's verdicts, route recovery and settling, on hand-made records."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from scipy import stats

from routing_rl.analysis.significance import holm

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "where_routing_pays.py"
spec = importlib.util.spec_from_file_location("where_routing_pays", SCRIPT)
pays = importlib.util.module_from_spec(spec)
sys.modules["where_routing_pays"] = pays  # its dataclass looks its module up while the class is made
spec.loader.exec_module(pays)


def record(mean: float, routes: list[list[int]] | None = None, groups: list[int] | None = None,
           history: list[list[list[int]]] | None = None, perplexity: float = 1.0) -> dict:  # fmt: skip
    """The parts of a results.json the script reads."""
    history = history or ([routes] if routes else [])
    epochs = [{"routing": {"routes": r, "perplexity": [[perplexity] * len(r)] * len(r[0])}} for r in history]
    return {"final": {"last": {"test_mean": mean}, "routes": routes}, "env": {"info": {"groups": groups}}, "epochs": epochs}


def test_route_recovery_is_the_mean_ari_over_layers_against_the_true_groups():
    groups = [0, 1, 0, 1]
    by_group = [[3, 7], [5, 2], [3, 7], [5, 2]]  # both layers split the tasks exactly by group
    assert pays.route_recovery(record(0.5, by_group, groups)) == pytest.approx(1.0)
    one_wrong = [[3, 7], [5, 7], [3, 7], [5, 2]]  # layer 2 puts task 1 with group 0
    second = pays.adjusted_rand_index([7, 7, 7, 2], groups)
    assert pays.route_recovery(record(0.5, one_wrong, groups)) == pytest.approx((1.0 + second) / 2) and second < 1
    assert pays.route_recovery(record(0.5, [[0], [0], [0], [0]], [0, 0, 0, 0])) == 1.0  # one group: sharing everything recovers it


def test_settled_reads_the_last_perplexity_and_the_routes_that_moved_in_the_last_five_epochs():
    start = [[0, 0], [1, 1], [2, 2]]
    moved = [[0, 0], [1, 4], [2, 2]]  # one of six (task, layer) routes differs
    history = [start] * 3 + [moved] * 5  # 8 epochs: the last against the third
    perplexity, share, first = pays.settled(record(0.5, moved, [0, 1, 2], history, perplexity=1.25))
    assert perplexity == pytest.approx(1.25) and share == pytest.approx(1 / 6) and first != first  # never below 1.1: NaN
    assert pays.settled(record(0.5, moved, [0, 1, 2], history, perplexity=1.05))[2] == 1.0
    warm = {**record(0.5, moved, [0, 1, 2], history, perplexity=1.05), "config": {"warmup_epochs": 3}}
    assert pays.settled(warm)[2] == 4.0  # the shared routes of warm-up are not a learned policy
    assert pays.settled(record(0.5, moved, [0, 1, 2], [moved] * 8))[1] == 0.0


def test_every_learned_router_is_tested_against_every_reference_and_holm_spans_them_all():
    base = [0.80, 0.82, 0.78, 0.81]
    trials = {"g": {m: {s: record(v) for s, v in enumerate(base)} for m in ("shared-bottom", "fixed-random", "no-sharing", "oracle")}}
    ahead = [v + d for v, d in zip(base, (0.010, 0.002, 0.012, 0.004))]
    for method in pays.LEARNED:
        trials["g"][method] = {s: record(v) for s, v in enumerate(ahead if method == "wpl" else base)}
    results = pays.tests(trials, ["g"])
    assert len(results) == len(pays.LEARNED) * 3
    wpl = next(t for t in results if t.method == "wpl" and t.reference == "fixed-random")
    assert wpl.difference.p_value == pytest.approx(stats.ttest_rel(ahead, base, alternative="greater").pvalue)
    tested = [t for t in results if t.difference is not None]
    ps = [1.0 if t.difference.p_value != t.difference.p_value else t.difference.p_value for t in tested]
    assert [t.p_holm for t in tested] == pytest.approx(holm(ps))
    assert wpl.difference.p_value < 0.05 <= wpl.p_holm  # ahead on its own, not over 12 comparisons
    lines = pays.verdicts(results, ["g"])
    assert lines[0].startswith("- wpl: beats fixed-random in no setting; beats no-sharing in no setting")
    assert "Holm over 12 comparisons" in lines[0]


def test_a_clear_win_is_named_with_its_setting():
    base = [0.70, 0.72, 0.68, 0.71, 0.69]
    far = [v + 0.10 + 0.001 * i for i, v in enumerate(base)]
    trials = {"g": {m: {s: record(v) for s, v in enumerate(far if m == "reinforce" else base)}
                    for m in ("shared-bottom", "fixed-random", "no-sharing", "oracle", *pays.LEARNED)}}
    lines = pays.verdicts(pays.tests(trials, ["g"]), ["g"])
    assert lines[1].startswith("- reinforce: beats fixed-random in g; beats no-sharing in g; beats shared-bottom in g")


ROOT = Path(__file__).resolve().parent.parent


def test_every_kept_sweep_trial_is_a_trial_of_the_shipped_suite_and_the_file_that_was_kept():
    from routing_rl.suites import load_suite_file
    from routing_rl.suites.kept import kept_problem, read_kept_manifest

    names = {t.name for t in load_suite_file(ROOT / "suites" / "where-routing-pays.toml").trials()}
    kept = ROOT / "results" / "where-routing-pays"
    recorded = read_kept_manifest(kept)
    folders = sorted(p.name for p in kept.iterdir() if p.is_dir())
    assert recorded is not None and sorted(recorded) == folders and set(folders) == names and len(folders) == 320
    assert [name for name in folders if kept_problem(name, kept, recorded)] == []


def test_the_readme_and_the_measurements_quote_the_script_on_the_kept_trials():
    """Every table row and verdict of the sweep in docs/measurements.md, and the README's table, are
    lines that `python docs/where_routing_pays.py` prints on the kept trials."""
    from click.testing import CliRunner

    result = CliRunner().invoke(pays.main, [])
    assert result.exit_code == 0, result.output
    printed = set(result.output.splitlines())
    docs = (ROOT / "docs" / "measurements.md").read_text()
    section = docs.split("## Where does learned routing pay? The relatedness sweep")[1].split("\n## ")[0]
    readme = (ROOT / "README.md").read_text().split("### Where does learned routing pay?")[1].split("\n### ")[0]
    quoted = [line for text in (section, readme) for line in text.splitlines() if line.startswith(("| ", "- "))]
    assert len(quoted) >= 8 + 32 + 4 + 8
    assert [line for line in quoted if line not in printed] == []


def test_the_quick_scale_trains_tabulates_draws_and_gives_verdicts(tmp_path):
    """What CI trains of the sweep: its quick scale (two settings, two seeds), three of its runs, in populations."""
    from click.testing import CliRunner

    from routing_rl.cli import main

    suite = str(ROOT / "suites" / "where-routing-pays.toml")
    out = tmp_path / "quick"
    runner = CliRunner()
    trained = runner.invoke(main, ["suite", "run", suite, "--scale", "quick", "--out", str(out), "--quiet", "--population", "2",
                                   "--runs", "shared-bottom,oracle,wpl"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert trained.output.count("in a population of 2") == 12
    table = runner.invoke(main, ["suite", "table", str(out)])
    assert table.exit_code == 0 and table.output.count("## setting ") == 2, table.output
    drawn = runner.invoke(main, ["report", str(out), "--out", str(tmp_path / "figures")])
    assert drawn.exit_code == 0 and (tmp_path / "figures" / "settings.png").exists(), drawn.output
    verdicts = runner.invoke(pays.main, ["--scale", "quick", "--out", str(out)])
    assert verdicts.exit_code == 0, verdicts.output
    assert "| groups-2 | wpl |" in verdicts.output and "- wpl: beats fixed-random in no setting" in verdicts.output
