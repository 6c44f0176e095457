"""The one results.json schema of every run, its provenance block, and the validating loader.

Every run, whatever its learner and task family, writes::

    schema_version  1
    status          running | complete | diverged
    config          the RunConfig
    provenance      routing-rl and torch versions, git commit (from a checkout), command line,
                    start and end time, device, torch threads, the machine (CPU model, instruction
                    sets and torch's kernel capability, BLAS, threads, kernel-changing environment
                    variables, CUDA device; routing_rl/training/records/machine.py), and per resume its
                    epoch, time, commit and machine (``resumes``); files written before the
                    machine was recorded lack it and still load
    env             name, family, task names, sizes
    learner         kind (router | model) and what it is built of
    metric          {name, higher_is_better, tasks}: tasks (from 2026-12) one {metric, higher_is_better} per task
    epochs          per epoch: train statistics, val and test scores, learner extras
    final           metric, higher_is_better, and per-task and mean values at the last and at the
                    best-validation epoch

``show``, ``analyze``, ``compare`` and ``suite`` read runs only through :func:`load_results`, which
names the file and the field that is wrong instead of failing somewhere downstream.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from datetime import datetime, timezone
from numbers import Real
from pathlib import Path
from typing import Any

import torch

import routing_rl
from routing_rl.core.files import RESULTS_LIMIT, FileCheckError, read_regular
from routing_rl.core.records import MAX_TASKS, ResultsRecord
from routing_rl.training.setup.config import MAX_EPOCHS
from routing_rl.training.records.machine import machine

SCHEMA_VERSION = 1

MAX_ROUTED_LAYERS = 1004
"""The most routed layers a results.json may hold: the largest routed network a run builds, three
conv layers, 1000 hidden FC layers (``--fc-layers``' bound) and the head."""


class ResultsError(ValueError):
    """A results.json that cannot be read as a run of this schema; the message names file and field."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The commit of the checkout routing-rl runs from (with ``+dirty`` if modified), or None."""
    root = Path(routing_rl.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(device: torch.device, command: list[str] | None) -> dict[str, Any]:
    """Where a run's numbers came from; ``ended`` is filled in at every save."""
    return {
        "routing_rl_version": routing_rl.__version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "command": command if command is not None else list(sys.argv),
        "started": now(),
        "ended": None,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "machine": machine(device),
    }


def resume_record(epoch: int, device: torch.device) -> dict[str, Any]:
    """What a resume appends to ``provenance.resumes``: the first epoch it trains, and when, with
    which commit and on which machine (a run may be resumed on another one)."""
    return {"epoch": epoch, "started": now(), "git_commit": git_commit(), "machine": machine(device)}


def summarise(epochs: list[dict[str, Any]], metric: str, higher_is_better: bool) -> dict[str, Any]:
    """The ``final`` block: the last epoch and the epoch with the best validation mean (model selection)."""

    def key(record: dict[str, Any]) -> float:
        mean = record["val"]["mean"]
        if mean is None or math.isnan(mean):
            return -math.inf
        return mean if higher_is_better else -mean

    last = epochs[-1]
    best = max(epochs, key=lambda r: (key(r), -r["epoch"]))
    if key(best) == -math.inf:
        best = last  # no validation split (--val-fraction 0): nothing to select on

    def at(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "epoch": record["epoch"], "val_mean": record["val"]["mean"], "test_mean": record["test"]["mean"],
            "test_micro": record["test"]["micro"], "test_per_task": record["test"]["per_task"],
        }  # fmt: skip

    final = {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "epoch": last["epoch"],
        "last": at(last),
        "best_val": at(best),
        "mean_train_seconds_per_epoch": sum(r["train_seconds"] for r in epochs) / len(epochs),
        "parameters": last["parameters"],
    }
    if "routing" in last:
        final["routes"] = last["routing"]["routes"]
    return final


# ---- loading ----------------------------------------------------------------------------------
RESULTS_NAME = "results.json"
"""The name of a run's results file in its run directory."""


def results_path(path: str | Path) -> Path:
    """``path`` itself if it names a file, else ``path/results.json``."""
    p = Path(path)
    return p / RESULTS_NAME if p.is_dir() and not p.name.endswith(".json") else p


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str, file: Path) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ResultsError(f"{file}: field {where}{key} is missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ResultsError(f"{file}: field {where}{key} should be {names}, got {type(value).__name__}")
    return value


def _need_numbers(values: Any, length: int, where: str, file: Path) -> None:
    if not isinstance(values, list) or len(values) != length:
        raise ResultsError(f"{file}: field {where} should list one value per task ({length})")
    if not all(v is None or isinstance(v, Real) and not isinstance(v, bool) for v in values):
        raise ResultsError(f"{file}: field {where} should hold numbers")


def _check_routing(routing: Any, tasks: int, layers: int, where: str, file: Path) -> None:
    """Routes: per task one block index per routed layer; policies: per layer a [tasks, blocks] table."""
    if not isinstance(routing, dict):
        raise ResultsError(f"{file}: field {where.rstrip('.')} should be object, got {type(routing).__name__}")
    routes, policy = routing.get("routes"), routing.get("policy")
    if not isinstance(policy, list) or len(policy) != layers:
        raise ResultsError(f"{file}: field {where}policy should hold one table per routed layer ({layers})")
    blocks = []
    for d, table in enumerate(policy):
        ok = isinstance(table, list) and len(table) == tasks and all(isinstance(row, list) and row for row in table)
        if not ok or len({len(row) for row in table}) != 1 or not all(isinstance(p, Real) and 0 <= p <= 1 for row in table for p in row):
            raise ResultsError(f"{file}: field {where}policy[{d}] should be a [tasks, blocks] table of probabilities")
        blocks.append(len(table[0]))
    ok = isinstance(routes, list) and len(routes) == tasks and all(isinstance(r, list) and len(r) == layers for r in routes)
    if not ok or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < blocks[d] for r in routes for d, b in enumerate(r)):
        raise ResultsError(f"{file}: field {where}routes should give each task one block index per routed layer")


def _check_machine(record: Any, where: str, file: Path) -> None:
    if not isinstance(record, dict):
        raise ResultsError(f"{file}: field {where} should be object, got {type(record).__name__}")
    for key in ("cpu_model", "cpu_capability"):
        _need(record, key, str, f"{where}.", file)


def _check_provenance(prov: dict[str, Any], file: Path) -> None:
    """The machine records, where there are any (results.json files written before them have none)."""
    if "machine" in prov:
        _check_machine(prov["machine"], "provenance.machine", file)
    resumes = prov.get("resumes", [])
    if not isinstance(resumes, list):
        raise ResultsError(f"{file}: field provenance.resumes should be list, got {type(resumes).__name__}")
    for i, resume in enumerate(resumes):
        where = f"provenance.resumes[{i}]"
        if not isinstance(resume, dict):
            raise ResultsError(f"{file}: field {where} should be object, got {type(resume).__name__}")
        _need(resume, "epoch", int, f"{where}.", file)
        _check_machine(resume.get("machine"), f"{where}.machine", file)


def validate(results: Any, file: Path) -> ResultsRecord:
    """Check the fields every reader relies on; raise :class:`ResultsError` naming the first bad one."""
    if not isinstance(results, dict):
        raise ResultsError(f"{file}: expected a JSON object, got {type(results).__name__}")
    if results.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{file}: schema_version {results.get('schema_version')!r} is not {SCHEMA_VERSION}; "
            "it was written by another routing-rl version, run it again with this one"
        )
    status = _need(results, "status", str, "", file)
    if status not in ("running", "complete", "diverged"):
        raise ResultsError(f"{file}: field status should be running, complete or diverged, got {status!r}")
    config = _need(results, "config", dict, "", file)
    _need(config, "epochs", int, "config.", file)
    if "provenance" in results:
        _check_provenance(_need(results, "provenance", dict, "", file), file)
    env = _need(results, "env", dict, "", file)
    _need(env, "name", str, "env.", file)
    tasks = len(_need(env, "task_names", list, "env.", file))
    if tasks > MAX_TASKS:
        raise ResultsError(f"{file}: env.task_names lists {tasks} tasks, more than the {MAX_TASKS} a results.json of routing-rl may hold")
    metric = _need(results, "metric", dict, "", file)
    _need(metric, "name", str, "metric.", file)
    _need(metric, "higher_is_better", bool, "metric.", file)
    if not all(isinstance(name, str) for name in env["task_names"]):
        raise ResultsError(f"{file}: field env.task_names should hold strings")
    learner = _need(results, "learner", dict, "", file)
    layers = learner.get("routed_layers", [])
    if not isinstance(layers, list) or not all(isinstance(name, str) for name in layers):
        raise ResultsError(f"{file}: field learner.routed_layers should list layer names")
    if len(layers) > MAX_ROUTED_LAYERS:
        raise ResultsError(f"{file}: learner.routed_layers lists {len(layers)} layers, more than the {MAX_ROUTED_LAYERS} "
                           "a routed network of routing-rl may have")  # fmt: skip
    epochs = _need(results, "epochs", list, "", file)
    if len(epochs) > MAX_EPOCHS:
        raise ResultsError(f"{file}: field epochs holds {len(epochs)} records, more than the {MAX_EPOCHS} epochs a run may have")
    for i, record in enumerate(epochs):
        where = f"epochs[{i}]."
        if not isinstance(record, dict):
            raise ResultsError(f"{file}: field epochs[{i}] should be object, got {type(record).__name__}")
        _need(record, "epoch", int, where, file)
        for split in ("val", "test"):
            score = _need(record, split, dict, where, file)
            _need_numbers(score.get("per_task"), tasks, f"{where}{split}.per_task", file)
            for key in ("mean", "micro"):
                _need(score, key, (Real, type(None)), f"{where}{split}.", file)
        if "routing" in record:
            _check_routing(record["routing"], tasks, len(layers), f"{where}routing.", file)
    if status == "complete" and not epochs:
        raise ResultsError(f"{file}: status complete, but no epoch is recorded")
    if epochs:
        final = _need(results, "final", dict, "", file)
        _need(final, "epoch", int, "final.", file)
        parameters = _need(final, "parameters", dict, "final.", file)
        for key in ("train", "serving"):
            _need(parameters, key, int, "final.parameters.", file)
        for block in ("last", "best_val"):
            values = _need(final, block, dict, "final.", file)
            _need(values, "epoch", int, f"final.{block}.", file)
            _need(values, "test_mean", (Real, type(None)), f"final.{block}.", file)
            _need_numbers(values.get("test_per_task"), tasks, f"final.{block}.test_per_task", file)
    return results


def load_results(path: str | Path) -> ResultsRecord:
    """Read and validate a run's results.json (``path``: the run directory or the file)."""
    file = results_path(path)
    if file.is_dir():
        raise ResultsError(f"{file} is a directory, not a results.json")
    try:
        raw = read_regular(file, RESULTS_LIMIT, "results.json")
    except FileNotFoundError:
        raise ResultsError(f"{file}: no such file; give a run directory (--logdir of routing-rl run) or its results.json") from None
    except FileCheckError as exc:
        raise ResultsError(str(exc)) from None
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read it ({exc.strerror})") from None
    return parse_results(raw, file)


def parse_results(raw: bytes, file: Path) -> ResultsRecord:
    """The validated record of the bytes ``raw`` of the results.json ``file`` (named in errors)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultsError(f"{file}: not UTF-8 text, so not a results.json written by routing-rl") from None
    if not text.strip():
        raise ResultsError(f"{file}: empty file (the run may have been stopped before its first epoch)")
    try:
        results = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{file}: not valid JSON ({exc.msg}, line {exc.lineno}); the file may be truncated") from None
    except (RecursionError, ValueError) as exc:  # absurd nesting, a number too long to convert
        raise ResultsError(f"{file}: not a results.json written by routing-rl ({type(exc).__name__})") from None
    return validate(results, file)
