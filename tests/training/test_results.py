"""The one results schema: its provenance block, and the loader every reader uses, which names the
file and field of a broken results.json in one line instead of a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import routing_rl
from routing_rl.cli import main
from routing_rl.training import ResultsError, load_results

SMALL_ENV = ["-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["run", "--agent", "wpl", "--epochs", "2", "--quiet", "--logdir", str(run_dir), *SMALL_ENV])
    assert result.exit_code == 0, result.output
    return run_dir


def test_results_carry_provenance_and_the_final_block(finished_run):
    results = load_results(finished_run)
    prov = results["provenance"]
    assert prov["routing_rl_version"] == routing_rl.__version__ and prov["torch_version"] == str(torch.__version__)
    assert prov["command"][:2] == ["routing-rl", "run"] and "--agent" in prov["command"]
    assert prov["started"] <= prov["ended"] and prov["device"] == "cpu" and prov["torch_threads"] >= 1
    assert "git_commit" in prov
    final = results["final"]
    assert final["metric"] == results["metric"]["name"] == "accuracy" and final["higher_is_better"] is True
    for block in ("last", "best_val"):
        assert len(final[block]["test_per_task"]) == 3 and 0 <= final[block]["test_mean"] <= 1
    assert final["last"]["epoch"] == 2 and final["routes"] == results["epochs"][-1]["routing"]["routes"]


BROKEN = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "a list": lambda text: "[]",
    "not UTF-8": lambda text: b"\xff\xfe\x00garbage",
    "no final": lambda text: _edit(text, lambda r: r.pop("final")),
    "final null": lambda text: _edit(text, lambda r: r.__setitem__("final", None)),
    "epochs a string": lambda text: _edit(text, lambda r: r.__setitem__("epochs", "2")),
    "per-task list too short": lambda text: _edit(text, lambda r: r["final"]["last"]["test_per_task"].pop()),
    "old schema": lambda text: _edit(text, lambda r: r.pop("schema_version")),
    "missing metric": lambda text: _edit(text, lambda r: r.pop("metric")),
    "nested too deep": lambda text: "[" * 100_000 + "]" * 100_000,
    "an endless number": lambda text: "1" * 5000,
    "parameters a string": lambda text: _edit(text, lambda r: r["final"].__setitem__("parameters", "x")),
    "mean a string": lambda text: _edit(text, lambda r: r["epochs"][0]["val"].__setitem__("mean", "x")),
    "routing a list": lambda text: _edit(text, lambda r: r["epochs"][-1].__setitem__("routing", [1])),
    "routes a number": lambda text: _edit(text, lambda r: r["epochs"][-1]["routing"].__setitem__("routes", 3)),
    "route out of range": lambda text: _edit(text, lambda r: r["epochs"][-1]["routing"]["routes"][0].__setitem__(0, 10**30)),
    "task names numbers": lambda text: _edit(text, lambda r: r["env"].__setitem__("task_names", [0, 1, 2])),
    "routed layers a number": lambda text: _edit(text, lambda r: r["learner"].__setitem__("routed_layers", 5)),
}
MESSAGES = {
    "truncated": "not valid JSON", "empty": "empty file", "a list": "expected a JSON object", "not UTF-8": "not UTF-8",
    "no final": "field final is missing", "final null": "field final should be dict", "epochs a string": "field epochs should be list",
    "per-task list too short": "final.last.test_per_task should list one value per task", "old schema": "schema_version",
    "missing metric": "field metric is missing", "nested too deep": "not a results.json written by routing-rl",
    "an endless number": "not a results.json written by routing-rl", "parameters a string": "final.parameters should be dict",
    "mean a string": "epochs[0].val.mean should be", "routing a list": "epochs[1].routing should be object",
    "routes a number": "routing.routes should give each task", "route out of range": "routing.routes should give each task",
    "task names numbers": "env.task_names should hold strings", "routed layers a number": "learner.routed_layers should list",
}  # fmt: skip


def _edit(text, change):
    results = json.loads(text)
    change(results)
    return json.dumps(results)


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["show", "analyze", "compare"])
def test_a_broken_results_file_is_a_one_line_error(finished_run, tmp_path, case, command):
    broken = tmp_path / "broken"
    broken.mkdir()
    content = BROKEN[case]((finished_run / "results.json").read_text())
    (broken / "results.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    args = {"show": [str(broken)], "analyze": [str(broken)],
            "compare": ["--a", str(broken), "--a", str(finished_run), "--b", str(finished_run), "--b", str(finished_run)]}[command]  # fmt: skip
    result = CliRunner().invoke(main, [command, *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert MESSAGES[case] in " ".join(result.output.split()) and "results.json" in result.output


@pytest.mark.parametrize("command", ["show", "analyze"])
def test_a_directory_or_missing_file_is_a_one_line_error(tmp_path, command):
    (tmp_path / "results.json").mkdir()
    for path, message in ((tmp_path, "is a directory"), (tmp_path / "nowhere", "no such file")):
        result = CliRunner().invoke(main, [command, str(path)])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_analyze_refuses_a_model_run_with_a_reason(tmp_path, write_results):
    run = write_results(tmp_path / "m", 0.5)
    result = CliRunner().invoke(main, ["analyze", str(run)])
    assert result.exit_code == 1 and "no routing policies" in result.output


def test_load_results_raises_results_error(tmp_path):
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_results(tmp_path)


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "routing_rl", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "run" in done.stdout and "compare" in done.stdout


def test_list_shows_each_option_with_its_type_default_and_help():
    result = CliRunner().invoke(main, ["list"])
    text = " ".join(result.output.split())
    assert "l0_lambda: float = 0.001 weight of the expected-L0 penalty" in text
    assert "variant: one of wpl, public-code, public-code-corrected = 'wpl'" in text
    assert "num_tasks: int = 8 number of tasks" in text
