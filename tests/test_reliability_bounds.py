"""Bounds before work: a count far beyond real use (tasks, routed layers, epochs, a file name's
length) or a damaged checkpoint is refused in one line before any work, or the work it would
blow up is skipped with a line saying so; never a traceback, a crash or a command busy for minutes.

Every case starts from a real run (one epoch of synthetic-groups, three tasks) whose files are then
edited. The cases that would exhaust the memory or the time of the code before these bounds (a
results.json of 30,000 tasks, 400 routed layers) run in a subprocess with a memory and time limit,
so that they fail cleanly rather than take the machine down.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main

SMALL = ["--env", "synthetic-groups", "-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30", "--quiet", "--threads", "1",
         "--agent", "wpl"]  # a router that learns its routes: report draws routing figures for those only
LONG_NAME = "n" * 300  # longer than the 255 bytes of a file name on Linux file systems
MEMORY_LIMIT = 6 * 2**30  # address space of a subprocess case
TIME_LIMIT = 90  # seconds a case may take, far above what a bounded command needs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real run's directory: results.json, checkpoint.pt, run.lock and tensorboard/."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    result = CliRunner().invoke(main, ["run", "--epochs", "1", "--logdir", str(run), *SMALL])
    assert result.exit_code == 0, result.output
    return run


# ---- editing a real run's files -------------------------------------------------------------------

def grow(results: dict, tasks: int | None = None, layers: int | None = None) -> dict:
    """The results of the tiny run grown to ``tasks`` tasks and ``layers`` routed layers of three
    blocks, every per-task and per-layer field filled in, so that it passes the schema's checks."""
    results = copy.deepcopy(results)
    tasks = tasks or len(results["env"]["task_names"])
    names = [f"fc{d + 1}" for d in range(layers)] if layers else results["learner"]["routed_layers"]
    results["env"]["task_names"] = [f"task{t}-group{t % 2}" for t in range(tasks)]
    results["env"]["head_sizes"] = [4] * tasks
    results["learner"]["routed_layers"] = names
    routes = [[(t + d) % 3 for d in range(len(names))] for t in range(tasks)]
    policy = [[[1.0 if b == routes[t][d] else 0.0 for b in range(3)] for t in range(tasks)] for d in range(len(names))]
    for record in results["epochs"]:
        for split in ("val", "test"):
            record[split]["per_task"] = [0.5] * tasks
        record["routing"] = {"active": True, "policy": policy, "routes": routes, "perplexity": [[1.0] * tasks for _ in names]}
    for block in ("last", "best_val"):
        results["final"][block]["test_per_task"] = [0.5] * tasks
    results["final"]["routes"] = routes
    return results


def write_grown(run: Path, **sizes: int) -> None:
    path = run / "results.json"
    path.write_text(json.dumps(grow(json.loads(path.read_text()), **sizes)))


def edit_checkpoint(run: Path, edit: Callable[[dict], None]) -> None:
    """Load the run's checkpoint, apply ``edit``, save it back (a damaged or planted checkpoint)."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    edit(state)
    torch.save(state, run / "checkpoint.pt")


def set_path(*keys, value=None, delete=False) -> Callable[[dict], None]:
    """An edit that sets (or deletes) ``state[keys[0]][keys[1]]...``."""

    def edit(state: dict) -> None:
        target = state
        for key in keys[:-1]:
            target = target[key]
        if delete:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return edit


def first(table: dict):
    return table[next(iter(table))]


def first_parameter_bytes(state: dict) -> None:
    weights = state["modules"]["network"]
    weights[next(iter(weights))] = b"not a tensor"


def optimizer_moment(value) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        entry = first(first(state["optimizers"])["state"])
        entry[next(k for k in entry if k != "step")] = value

    return edit


# ---- the cases --------------------------------------------------------------------------------------

@dataclass
class Case:
    args: list[str]
    """The command line; {run} is the edited run's directory, {tmp} the case's own folder."""
    fragments: list[str]
    """What the one error line says (or, with ``ok``, what the output says)."""
    setup: Callable[[Path, Path], None] = lambda run, tmp: None
    ok: bool = False
    """A bounded run that succeeds (skipping what it would blow up on) rather than an error."""
    isolated: bool = False
    """Run it in a subprocess with a memory and time limit (the code before the bound exhausts them)."""
    unchanged: list[str] = field(default_factory=list)
    """Files of the run that the command must leave as they were."""


RESUME = ["run", "--epochs", "2", "--logdir", "{run}", "--resume", *SMALL]


def fifo(path: Path) -> None:
    os.mkfifo(path)


CASES: dict[str, Case] = {
    # results.json of absurd size: refused where it is read, or the figure that would blow up is skipped
    "30,000 tasks: analyze": Case(["analyze", "{run}"], ["30000 tasks", "more than the 1000"], lambda run, tmp: write_grown(run, tasks=30_000), isolated=True),
    "30,000 tasks: report": Case(["report", "{run}"], ["30000 tasks", "more than the 1000"], lambda run, tmp: write_grown(run, tasks=30_000), isolated=True),
    "30,000 tasks: show": Case(["show", "{run}"], ["30000 tasks", "more than the 1000"], lambda run, tmp: write_grown(run, tasks=30_000), isolated=True),
    "200 tasks: analyze": Case(["analyze", "{run}"], ["200 tasks, more than the 100 that analyze compares"], lambda run, tmp: write_grown(run, tasks=200), isolated=True),
    "200 tasks: report skips the similarity heatmaps": Case(["report", "{run}"], ["similarity.png: 3 heatmaps of 200 tasks", "million pixels", "perplexity.png"],
                                                             lambda run, tmp: write_grown(run, tasks=200), ok=True, isolated=True),  # fmt: skip
    "400 routed layers: analyze": Case(["analyze", "{run}"], ["400 routed layers, more than the 32 that analyze compares"],
                                       lambda run, tmp: write_grown(run, layers=400), isolated=True),  # fmt: skip
    "400 routed layers: report skips the similarity heatmaps": Case(["report", "{run}"], ["similarity.png: 400 heatmaps, more than the 32", "perplexity.png"],
                                                                    lambda run, tmp: write_grown(run, layers=400), ok=True, isolated=True),  # fmt: skip
    "5000 routed layers: show": Case(["show", "{run}"], ["learner.routed_layers lists 5000 layers", "more than the 1004"],
                                     lambda run, tmp: write_grown(run, layers=5000), isolated=True),  # fmt: skip
    # epochs
    "--epochs 10**12": Case(["run", "--epochs", "1000000000000", "--logdir", "{tmp}/new", *SMALL], ["--epochs", "1<=x<=100000"], isolated=True),
    "epochs 10**12 in a suite file": Case(["suite", "run", "{tmp}/s.toml", "--out", "{tmp}/out"], ["s.toml", "--epochs must be from 1 to 100000, got 1000000000000"],
                                          lambda run, tmp: (tmp / "s.toml").write_text(
                                              '[suite]\nname = "t"\nseeds = [0]\n[defaults]\nenv = "synthetic-groups"\nepochs = 1000000000000\n'
                                              'env_options = { num_tasks = 3, train_per_task = 60, test_per_task = 30 }\n[runs.a]\nagent = "fixed-random"\n'),
                                          isolated=True),  # fmt: skip
    # names the file system cannot hold, and paths that are not directories
    "report --out with a 300-character name": Case(["report", "{run}", "--out", f"{{tmp}}/{LONG_NAME}"], ["--out", "has 300 characters, more than the 255"]),
    "report --out below a 300-character name": Case(["report", "{run}", "--out", f"{{tmp}}/{LONG_NAME}/figures"], ["--out", "has 300 characters"]),
    "suite run --out with a 300-character name": Case(["suite", "run", "{tmp}/s.toml", "--out", f"{{tmp}}/{LONG_NAME}"], ["has 300 characters, more than the 255"],
                                                      lambda run, tmp: (tmp / "s.toml").write_text(
                                                          '[suite]\nname = "t"\nseeds = [0]\n[defaults]\nenv = "synthetic-groups"\nepochs = 1\n'
                                                          'env_options = { num_tasks = 3, train_per_task = 60, test_per_task = 30 }\n[runs.a]\nagent = "fixed-random"\n')),  # fmt: skip
    "suite table --out with a 300-character name": Case(["suite", "table", "{tmp}/s.toml", "--out", f"{{tmp}}/{LONG_NAME}"], ["has 300 characters"],
                                                        lambda run, tmp: (tmp / "s.toml").write_text(
                                                            '[suite]\nname = "t"\nseeds = [0]\n[runs.a]\nagent = "fixed-random"\n')),  # fmt: skip
    "run --logdir with a 300-character name": Case(["run", "--epochs", "1", "--logdir", f"{{tmp}}/{LONG_NAME}", *SMALL], ["--logdir", "has 300 characters"]),
    "analyze a 300-character path": Case(["analyze", f"{{tmp}}/{LONG_NAME}"], ["has 300 characters, more than the 255"]),
    "5000 synthetic tasks": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--env", "synthetic-groups", "-e", "num_tasks=5000", "--quiet"],
                                 ["num_tasks is 5000, more than the 1000 tasks a run may have"]),  # fmt: skip
    "5000 multi-label synthetic tasks": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--env", "multilabel-synthetic", "--agent", "mmoe",
                                              "-e", "num_tasks=5000", "--quiet"], ["num_tasks is 5000, more than the 1000"]),  # fmt: skip
    "suite init --epochs 10**6": Case(["suite", "init", "--env", "synthetic-groups", "--out", "{tmp}/s.toml", "--epochs", "1000000"], ["--epochs", "1<=x<=100000"]),
    "suite table of a 300-character suite file": Case(["suite", "table", f"{{tmp}}/{LONG_NAME}.toml"], ["SOURCE", "has 305 characters, more than the 255"]),
    "sweep of a 300-character sweep file": Case(["sweep", f"{{tmp}}/{LONG_NAME}.toml"], ["SWEEP_FILE", "has 305 characters"]),
    "run --logdir a device": Case(["run", "--epochs", "1", "--logdir", "/dev/null", *SMALL], ["--logdir /dev/null is a character device, not a directory"]),
    "report --out a device": Case(["report", "{run}", "--out", "/dev/null"], ["--out", "'/dev/null' is a device, FIFO or socket, not a directory"]),
    "run --data-dir a device": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--data-dir", "/dev/null", *SMALL], ["--data-dir", "is a device, FIFO or socket"]),
    "a FIFO as the data file": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--env", "files", "-e", "path={tmp}/data.csv", "-e", "tasks=y", "--quiet"],
                                    ["data.csv: not a regular file (a device, FIFO or socket)"], lambda run, tmp: fifo(tmp / "data.csv")),  # fmt: skip
    # options with bad integers
    "negative problem seed": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", *SMALL, "-e", "problem_seed=-1"], ["problem_seed must be a non-negative integer, got -1"]),
    "negative split seed": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--env", "files", "-e", "path=x.csv", "-e", "tasks=y", "-e", "split_seed=-1"],
                                ["split_seed must be a non-negative integer, got -1"]),  # fmt: skip
    "a model size beyond 64 bits": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--agent", "mmoe", "--env", "multilabel-synthetic", "-e", "num_train=200",
                                         "-e", "num_test=50", "-o", "num_experts=99999999999999999999999", "--quiet"], ["a size in its options is too large"]),  # fmt: skip
    "a model too large for memory": Case(["run", "--epochs", "1", "--logdir", "{tmp}/new", "--agent", "mmoe", "--env", "multilabel-synthetic", "-e", "num_train=200",
                                          "-e", "num_test=50", "-o", "num_experts=9999999999", "--quiet"], ["not enough memory to set up mmoe"], isolated=True),  # fmt: skip
    # checkpoints that are not what a run writes
    "checkpoint epoch -5": Case(RESUME, ["checkpoint.pt", "its epoch is -5", "from 0 to 1", "--overwrite"], lambda run, tmp: edit_checkpoint(run, set_path("epoch", value=-5)),
                                unchanged=["results.json"]),  # fmt: skip
    "checkpoint epoch beyond the run": Case(RESUME, ["its epoch is 7", "from 0 to 1"], lambda run, tmp: edit_checkpoint(run, set_path("epoch", value=7)), unchanged=["results.json"]),
    "checkpoint epoch a string": Case(RESUME, ["its epoch is 'x'"], lambda run, tmp: edit_checkpoint(run, set_path("epoch", value="x")), unchanged=["results.json"]),
    "checkpoint epoch a fraction": Case(RESUME, ["its epoch is 1.5"], lambda run, tmp: edit_checkpoint(run, set_path("epoch", value=1.5)), unchanged=["results.json"]),
    "checkpoint epoch not its results' last": Case(RESUME, ["its epoch is 1, but its results record records no epoch"],
                                                   lambda run, tmp: edit_checkpoint(run, set_path("results", "epochs", value=[])), unchanged=["results.json"]),  # fmt: skip
    "checkpoint without config": Case(RESUME, ["checkpoint.pt", "holds no config"], lambda run, tmp: edit_checkpoint(run, set_path("config", delete=True)), unchanged=["results.json"]),
    "checkpoint without module state": Case(RESUME, ["its modules state is missing"], lambda run, tmp: edit_checkpoint(run, set_path("modules", delete=True))),
    "checkpoint weights as bytes": Case(RESUME, ["its network weights do not fit this run", "received <class 'bytes'>"], lambda run, tmp: edit_checkpoint(run, first_parameter_bytes)),
    "checkpoint optimizer moment of the wrong shape": Case(RESUME, ["state of optimizer 'all' does not fit this run", "for a parameter of shape"],
                                                           lambda run, tmp: edit_checkpoint(run, optimizer_moment(torch.zeros(2, 2, 2)))),  # fmt: skip
    "checkpoint optimizer moment as bytes": Case(RESUME, ["state of optimizer 'all' does not fit this run", "of type bytes"],
                                                 lambda run, tmp: edit_checkpoint(run, optimizer_moment(b"x"))),  # fmt: skip
    "checkpoint optimizer without param_groups": Case(RESUME, ["state of optimizer 'all'", "param_groups a list of tables"],
                                                      lambda run, tmp: edit_checkpoint(run, lambda s: first(s["optimizers"]).pop("param_groups"))),  # fmt: skip
    "checkpoint results record damaged": Case(RESUME, ["its results record is not valid (field final should be dict, got bytes)"],
                                              lambda run, tmp: edit_checkpoint(run, set_path("results", "final", value=b"x"))),  # fmt: skip
    "checkpoint first loss a string": Case(RESUME, ["its first_loss is 'x', not a finite number"], lambda run, tmp: edit_checkpoint(run, set_path("first_loss", value="x"))),
}  # fmt: skip


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run(args: list[str], isolated: bool) -> tuple[int, str, BaseException | None]:
    if not isolated:
        result = CliRunner().invoke(main, args)
        return result.exit_code, result.output, result.exception if not isinstance(result.exception, SystemExit) else None
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "routing_rl", *args], capture_output=True, text=True, timeout=TIME_LIMIT,
                              env=env, preexec_fn=_limit_memory)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"routing-rl {' '.join(a[:60] for a in args)} took more than {TIME_LIMIT} s")
    return done.returncode, done.stdout + done.stderr, None


@pytest.mark.parametrize("name", list(CASES))
def test_bounds_before_work(tiny_run, tmp_path, name):
    case = CASES[name]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    case.setup(run, tmp_path)
    before = {f: (run / f).read_bytes() for f in case.unchanged}
    args = [a.replace("{run}", str(run)).replace("{tmp}", str(tmp_path)) for a in case.args]
    start = time.monotonic()
    code, output, exception = _run(args, case.isolated)
    assert time.monotonic() - start < TIME_LIMIT
    assert exception is None, repr(exception)
    assert "Traceback" not in output and "Segmentation fault" not in output, output[-3000:]
    text = " ".join(output.split())
    if case.ok:
        assert code == 0, output[-3000:]
    else:
        assert code not in (0, -11), output[-3000:]  # an error, not a crash (-11: SIGSEGV)
        lines = [line for line in output.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], output[-3000:]  # one line, and nothing after it
        text = errors[0]
    for fragment in case.fragments:
        assert fragment in text, output[-3000:]
    for f, data in before.items():
        assert (run / f).read_bytes() == data, f"{f} was rewritten"


def test_a_bounded_report_still_draws_what_it_can(tiny_run, tmp_path):
    """400 routed layers: the perplexity figure without a legend of 400 entries, no similarity heatmaps."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    write_grown(run, layers=400)
    code, output, _ = _run(["report", str(run), "--out", str(tmp_path / "figures")], isolated=True)
    assert code == 0, output[-3000:]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["perplexity.png"]
    assert "UserWarning" not in output  # matplotlib's "constrained_layout not applied" of a collapsed legend


def test_the_bounds_admit_the_largest_real_runs(tiny_run, tmp_path):
    """Files within the bounds are read as before: 1000 tasks, 32 routed layers of 100 tasks by
    analyze, and a checkpoint of the run resumes."""
    from routing_rl.training import load_results

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    resumed = CliRunner().invoke(main, ["run", "--epochs", "2", "--logdir", str(run), "--resume", *SMALL])
    assert resumed.exit_code == 0 and "resuming at epoch 2" in resumed.output, resumed.output
    write_grown(run, tasks=1000)
    assert len(load_results(run)["env"]["task_names"]) == 1000
    write_grown(run, tasks=100, layers=32)
    analyzed = CliRunner().invoke(main, ["analyze", str(run), "--samples", "10"])
    assert analyzed.exit_code == 0 and "(100 tasks, routed layers: fc1" in analyzed.output, analyzed.output[-2000:]
