"""Kept results: a suite's finished trials committed with the project are found again on a new machine."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.suites import SuiteError, load_suite_file
from tests.suite_texts import tiny_suite

TINY = tiny_suite(epochs=1, kept="results/tiny")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def kept_suite(tmp_path):
    """A suite trained once and kept, whose suite directory is then gone (a new machine)."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "runs"
    assert invoke("suite", "run", str(path), "--out", str(out)).exit_code == 0
    table = invoke("suite", "table", str(path), "--out", str(out)).output
    keep = invoke("suite", "keep", str(path), "--out", str(out))
    assert keep.exit_code == 0, keep.output
    assert "4 trials copied" in keep.output and "(4 of 4 kept)" in keep.output
    again = invoke("suite", "keep", str(path), "--out", str(out))  # finished in the suite directory and kept
    assert "0 trials copied" in again.output and "(4 of 4 kept)" in again.output
    shutil.rmtree(out)
    return path, out, table


def test_keep_copies_results_only(kept_suite, tmp_path):
    path, _, _ = kept_suite
    kept = tmp_path / "results" / "tiny"
    trials = sorted(p.name for p in kept.iterdir() if p.is_dir())
    assert trials == sorted(t.name for t in load_suite_file(path).trials())
    assert sorted(json.loads((kept / "kept.json").read_text())["trials"]) == trials  # each recorded with its checksum
    for trial in (p for p in kept.iterdir() if p.is_dir()):
        assert [p.name for p in trial.iterdir()] == ["results.json"]  # no checkpoint, no lock, no TensorBoard
        assert json.loads((trial / "results.json").read_text())["status"] == "complete"


def test_a_kept_trial_is_not_trained_again_and_is_tabulated(kept_suite):
    path, out, table = kept_suite
    dry = invoke("suite", "run", str(path), "--out", str(out), "--dry-run")
    assert "4 trials" in dry.output and "4 kept" in dry.output
    again = invoke("suite", "run", str(path), "--out", str(out))
    assert again.exit_code == 0 and "0 trials trained" in again.output
    assert invoke("suite", "table", str(path), "--out", str(out)).output == table  # from the suite file
    assert invoke("suite", "table", str(out)).output == table  # from the suite directory's manifest
    report = invoke("report", str(out))
    assert report.exit_code == 0 and "methods.png" in report.output


def test_report_draws_a_suite_files_kept_trials_without_a_suite_directory(kept_suite, tmp_path):
    path, out, _ = kept_suite
    figures = tmp_path / "figures"
    report = invoke("report", str(path), "--out", str(figures))
    assert report.exit_code == 0, report.output
    names = {Path(line).name for line in report.stdout.split()}
    # both runs have fixed routes (fixed random, shared bottom): the kept trials give the methods and one note on the rest
    assert names == {"methods.png"} and not out.exists()
    assert "no perplexity, similarity or seeds figures of random, shared: fixed routes" in report.stderr
    assert all((figures / name).stat().st_size > 0 for name in names)
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace('kept = "results/tiny"\n', "").replace('name = "tiny"', 'name = "other"'))
    nothing = invoke("report", str(other), "--out", str(tmp_path / "none"))
    assert nothing.exit_code == 1 and "nothing to draw" in nothing.output and not (tmp_path / "none").exists()
    wrong = invoke("report", str(tmp_path / "results" / "tiny"), "--scale", "quick")
    assert wrong.exit_code == 2 and "--scale" in wrong.output and "suite file" in wrong.output
    only = invoke("report", str(path), "--out", str(tmp_path / "only"), "--runs", "random")
    assert only.exit_code == 0 and {Path(line).name for line in only.stdout.split()} == {"methods.png"}
    assert "figures of random: fixed routes" in only.stderr
    assert "names no run" in invoke("report", str(path), "--runs", " , ").output
    unknown = invoke("report", str(path), "--out", str(tmp_path / "unknown"), "--runs", "random,nope")
    assert unknown.exit_code == 1 and "no run named 'nope'" in unknown.output and "runs: random, shared" in unknown.output
    assert not (tmp_path / "unknown").exists()


def test_a_trial_of_another_configuration_is_not_taken_from_the_kept_folder(kept_suite):
    path, out, _ = kept_suite
    path.write_text(TINY.replace("batch_size = 64", "batch_size = 32"))
    dry = invoke("suite", "run", str(path), "--out", str(out), "--dry-run")
    assert "4 new" in dry.output and "kept" not in dry.output.splitlines()[0]


def test_runs_of_kept_trials_train_nothing_and_keep_skips_the_unchanged(kept_suite):
    path, out, _ = kept_suite
    invoke("suite", "run", str(path), "--out", str(out), "--runs", "shared")  # nothing to train: kept
    assert not out.joinpath(load_suite_file(path).trials()[1].name).exists()
    again = invoke("suite", "keep", str(path), "--out", str(out))
    assert "0 trials copied" in again.output and "(4 of 4 kept)" in again.output


def test_runs_option_trains_only_the_named_runs(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "runs"
    result = invoke("suite", "run", str(path), "--out", str(out), "--runs", "shared")
    assert result.exit_code == 0 and "2 trials" in result.output and "2 trials trained" in result.output
    assert sorted(p.name.split("-s")[0] for p in out.glob("*-s*")) == ["shared", "shared"]
    bad = invoke("suite", "run", str(path), "--out", str(out), "--runs", "shared,nope")
    assert bad.exit_code == 1 and "--runs: no run named 'nope'" in bad.output and "runs: random, shared" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.parametrize(("value", "message"), [('"/abs/path"', "suite.kept must be a folder relative"), ("3", "suite.kept must be")])
def test_bad_kept_values_name_the_key(tmp_path, value, message):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace('kept = "results/tiny"', f"kept = {value}"))
    with pytest.raises(SuiteError, match=message):
        load_suite_file(path)


def test_keep_without_a_kept_folder_says_what_to_add(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace('kept = "results/tiny"\n', ""))
    result = invoke("suite", "keep", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 1 and 'add kept = "../results/tiny"' in result.output


def test_rerun_trial_reproduces_a_kept_trial(kept_suite, tmp_path):
    spec = importlib.util.spec_from_file_location("rerun_trial", Path(__file__).resolve().parent.parent / "docs" / "rerun_trial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    trial = next((tmp_path / "results" / "tiny").glob("random-s0-*"))
    result = CliRunner().invoke(module.main, [str(trial), "--out", str(tmp_path / "rerun")])
    assert result.exit_code == 0, result.output
    assert "every per-task score the same" in result.output


def test_every_kept_table2_trial_is_still_a_trial_of_the_shipped_suite():
    """A refactor or a new option must not change a kept trial's configuration hash (it would be retrained)."""
    root = Path(__file__).resolve().parents[1]
    suite = load_suite_file(root / "suites" / "reexamining-table2-fmnist.toml")
    names = {t.name for t in suite.trials()}
    kept = sorted(p.name for p in (root / "results" / "reexamining-table2-fmnist").iterdir() if (p / "results.json").exists())
    assert kept and set(kept) <= names, sorted(set(kept) - names)


def test_every_kept_table2_trial_is_the_file_that_was_kept():
    """The published evidence verifies: each kept trial is recorded in kept.json with its checksum,
    and its stored config hashes to its name (an edited or swapped file fails here, in CI)."""
    from routing_rl.suites.kept import kept_problem, read_kept_manifest

    kept = Path(__file__).resolve().parents[1] / "results" / "reexamining-table2-fmnist"
    recorded = read_kept_manifest(kept)
    folders = sorted(p.name for p in kept.iterdir() if p.is_dir())
    assert recorded is not None and sorted(recorded) == folders and len(folders) == 50
    assert [(name, kept_problem(name, kept, recorded)) for name in folders if kept_problem(name, kept, recorded)] == []


TABLE2_LABELS = {
    "public-code": "public code",
    "corrected": "corrected",
    "separate-optimizers": "separate optimizers",
    "routing-conv1": "routing in conv1",
    "routing-conv123": "routing in conv1-3",
    "shared-bottom": "shared bottom",
    "no-sharing": "no sharing",
    "fixed-random-fc": "fixed random fc",
    "fixed-random-conv3": "fixed random conv3",
    "warm-up": "warm-up (20 shared epochs)",
}


def test_the_published_table2_is_the_suite_table_of_the_kept_trials(tmp_path):
    """docs/table2.md's Table 2 rows (seeds, mean ± std) and trial count come out of `suite table` on the kept trials."""
    root = Path(__file__).resolve().parents[1]
    result = invoke("suite", "table", str(root / "suites" / "reexamining-table2-fmnist.toml"), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    printed = dict(re.findall(r"^\| ([a-z0-9-]+)(?: \(\d+ unfinished\))? \| \d+ \| [^|]+ \| ([0-9.]+ ± [0-9.]+) \|", result.output, re.M))
    kept = {p.name for p in (root / "results" / "reexamining-table2-fmnist").iterdir()}
    seeds: dict[str, list[str]] = {}
    for trial in sorted(load_suite_file(root / "suites" / "reexamining-table2-fmnist.toml").trials(), key=lambda t: t.seed):
        if trial.name in kept:
            seeds.setdefault(trial.run, []).append(str(trial.seed))
    page = (root / "docs" / "table2.md").read_text()
    section = page[page.index("\n## Table 2 of the Re-examining paper at its protocol") :]
    section = section[: section.index("\n## ", 1)]
    assert set(printed) == set(TABLE2_LABELS) == set(seeds)
    for row, label in TABLE2_LABELS.items():
        line = f"| {label} | {', '.join(seeds[row])} | {printed[row]} |"
        assert line in section, f"docs/table2.md lacks {line!r}"
    finished = sum(len(s) for s in seeds.values())
    assert f"**{finished} of 50 trials are finished**" in section


def test_the_penguins_section_is_the_table_of_its_kept_trials(tmp_path):
    """Every table row and verdict of the penguins example in docs/measurements.md is a line of
    `routing-rl suite table suites/penguins.toml` on the kept trials (reference rows included: they
    are fitted on the shipped examples/penguins.csv)."""
    from click.testing import CliRunner

    from routing_rl.cli import main

    root = Path(__file__).resolve().parents[1]
    docs = (root / "docs" / "measurements.md").read_text()
    section = docs.split("## Your own data: the Palmer penguins")[1].split("\n## ")[0]
    quoted = [line for line in section.splitlines() if line.startswith(("| ", "- "))]
    assert len(quoted) >= 2 * 10 + 7  # both tables' rows and the seven verdicts
    result = CliRunner().invoke(main, ["suite", "table", str(root / "suites" / "penguins.toml"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    printed = set(result.output.splitlines())
    assert [line for line in quoted if line not in printed] == []
