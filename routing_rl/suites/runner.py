"""Running a suite's trials: skip the finished, resume the interrupted, start the rest.

Each trial is one ``routing-rl run`` in its own directory ``SUITE_DIR/<run>-s<seed>-<hash>``, so
``show``, ``analyze``, ``compare`` and ``suite table`` read a suite's trials like any run, and a
killed suite picks up where it stopped. Two backends run the same trial function:

* ``local``: one worker process per trial at a time (``--workers N``), torch threads set so that
  workers x threads <= cores (oversubscribed threads wait for each other at every operation: see
  ``benchmarks/threads_under_load.py``);
* ``ray``: the trials as a Ray Tune experiment on a Ray cluster (``RAY_ADDRESS`` or
  ``--ray-address``; a local instance otherwise), each trial with ``threads`` CPUs. Needs the
  optional extra ``routing-rl[ray]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from routing_rl.suites.manifest import MANIFEST
from routing_rl.suites.spec import SuiteSpec, Trial


class TrialSetupError(ValueError):
    """A trial's configuration that its classes refused when the trial was built (a range the suite
    file could not be checked for up front): not an interruption, so running again will not help."""


def trial_status(directory: Path) -> str:
    """``complete``, ``partial`` (a checkpoint to resume from), ``diverged`` or ``new`` (:meth:`RunDirectory.status`)."""
    from routing_rl.training.run_dir import RunDirectory

    return RunDirectory(directory).status()


FINISHED = ("complete", "diverged")


def recorded_epochs(directory: Path) -> list[dict[str, Any]] | None:
    """The epochs a trial's results.json records (None without a readable one)."""
    from routing_rl.training.results import ResultsError, load_results

    try:
        return list(load_results(directory)["epochs"])
    except ResultsError:
        return None


def epochs_done(directory: Path) -> int | None:
    """How many epochs a trial's results.json records (None without a readable one): the progress of
    a partial trial, so that a long suite can be checked on without opening its files."""
    epochs = recorded_epochs(directory)
    return None if epochs is None else len(epochs)


def locate(name: str, directory: Path, kept: str | Path | None) -> tuple[Path, str]:
    """A trial's directory and status: its own in the suite directory unless that is unfinished and
    the suite's kept folder holds it finished (status ``kept``)."""
    path = directory / name
    status = trial_status(path)
    if status not in FINISHED and kept is not None and trial_status(Path(kept) / name) in FINISHED:
        return Path(kept) / name, "kept"
    return path, status


def keep(trials: list[tuple[Trial, Path, str]], kept: Path) -> list[str]:
    """Copy the results.json of every trial finished in the suite directory into the kept folder
    (atomically; checkpoints and TensorBoard files stay behind); returns the names copied."""
    from routing_rl.training.io import write_json
    from routing_rl.training.run_dir import RunDirectory

    copied = []
    for trial, path, status in trials:
        target = RunDirectory(kept / trial.name).results_path
        if status not in FINISHED:
            continue
        results = json.loads(RunDirectory(path).results_path.read_text())
        if target.exists() and json.loads(target.read_text()) == results:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_json(target, results)
        copied.append(trial.name)
    return copied


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def run_trial(config: dict[str, Any], directory: str) -> dict[str, Any]:
    """Train one trial to completion in ``directory`` (resuming its checkpoint if there is one).

    Runs in a worker process (or a Ray task): it imports, builds and trains everything itself through
    the one run sequence of ``routing-rl run`` and returns a small summary, so nothing but plain data
    crosses process boundaries.
    """
    from routing_rl.training import RunConfig
    from routing_rl.training.composition import compose
    from routing_rl.training.run_sequence import run_one

    path = Path(directory)
    status = trial_status(path)
    if status in FINISHED:
        return {"directory": directory, "status": status, "seconds": 0.0}
    from routing_rl.agents import RouterConfigError
    from routing_rl.data import DataError
    from routing_rl.network import SpecError

    def guard(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except (DataError, SpecError, RouterConfigError, ValueError) as exc:
            raise TrialSetupError(f"trial {path.name}: {exc}") from None

    parts = guard(lambda: compose(RunConfig(**{**config, "logdir": directory})))
    outcome = run_one(parts, resume=status == "partial", overwrite=status != "partial", command=["routing-rl", "suite", "run"], guard=guard)
    return {"directory": directory, "status": outcome.status, "seconds": outcome.seconds}


def check_data(trials: list[Trial]) -> None:
    """Load the data of every trial whose suite asks to be checked before a suite run writes anything
    (``checked_before_suite_run``: a user's file), once per distinct configuration; raises its DataError."""
    from routing_rl.training.composition import compose

    seen = set()
    for trial in trials:
        cfg = trial.config
        key = (cfg.env, json.dumps(cfg.env_options, sort_keys=True, default=str), cfg.seed, cfg.val_fraction)
        if key in seen:
            continue
        parts = compose(cfg)
        if not parts.suite_cls.checked_before_suite_run:
            continue
        seen.add(key)
        parts.load_data()


def manifest_of(suite: SuiteSpec, scale: str | None, trials: list[Trial]) -> dict[str, Any]:
    """What ``suite.json`` holds: the suite and its trials as run."""
    return {"suite": suite.to_dict(), "scale": scale,
            "trials": [{"run": t.run, "seed": t.seed, "name": t.name, "config": t.config.to_dict()} for t in trials]}  # fmt: skip


def write_manifest(suite: SuiteSpec, scale: str | None, trials: list[Trial], directory: Path) -> None:
    """``suite.json``: the suite as run (so ``suite table SUITE_DIR`` needs no suite file)."""
    from routing_rl.training.io import write_json

    write_json(directory / MANIFEST, manifest_of(suite, scale, trials))


def plan(suite: SuiteSpec, scale: str | None, directory: Path, workers: int) -> list[tuple[Trial, Path, str]]:
    """Every trial with its directory and status; threads set for ``workers`` unless the suite sets them."""
    out = []
    for trial in suite.trials(scale):
        if trial.config.threads is None:
            trial = replace(trial, config=replace(trial.config, threads=threads_per_worker(workers)))
        out.append((trial, *locate(trial.name, directory, suite.kept)))
    return out


def run_local(todo: list[tuple[Trial, Path]], workers: int, report: Callable[[dict[str, Any]], None]) -> None:
    """Trials in ``workers`` processes (spawned: each starts clean, as a separate ``routing-rl run`` would)."""
    if workers == 1:
        for trial, path in todo:
            report(run_trial(trial.config.to_dict(), str(path)))
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_trial, trial.config.to_dict(), str(path)) for trial, path in todo]
        for future in as_completed(futures):
            report(future.result())


def run_ray(todo: list[tuple[Trial, Path]], threads: int, address: str | None, report: Callable[[dict[str, Any]], None]) -> None:
    """The same trials through Ray Tune: one Tune trial per suite trial, ``threads`` CPUs each."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise RuntimeError("--backend ray needs Ray: pip install 'routing-rl[ray]'") from None

    def trainable(params: dict[str, Any]) -> dict[str, Any]:
        return run_trial(params["spec"]["config"], params["spec"]["directory"])

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        specs = [{"config": t.config.to_dict(), "directory": str(p.resolve())} for t, p in todo]
        grid = tune.Tuner(
            tune.with_resources(trainable, {"cpu": threads}),
            param_space={"spec": tune.grid_search(specs)},
            run_config=tune.RunConfig(storage_path=str(todo[0][1].parent.resolve() / ".ray"), verbose=0),
        )
        for result in grid.fit():
            if result.error is not None:
                raise RuntimeError(f"a Ray trial failed: {result.error}")
            report(result.metrics)
    finally:
        if started:
            ray.shutdown()
