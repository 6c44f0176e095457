"""Running a suite's trials: skip the finished, resume the interrupted, start the rest.

Each trial is one ``routing-rl run`` in its own directory ``SUITE_DIR/<run>-s<seed>-<hash>``, so
``show``, ``analyze``, ``compare`` and ``suite table`` read a suite's trials like any run, and a
killed suite picks up where it stopped. Two backends run the same trial function:

* ``local``: one worker process per trial at a time (``--workers N``), each trial on its own torch
  threads (one unless the suite file or ``--threads`` says otherwise: :func:`trial_threads`);
* ``ray``: the trials as a Ray Tune experiment on a Ray cluster (``RAY_ADDRESS`` or
  ``--ray-address``; a local instance otherwise), each trial with as many CPUs as it has threads.
  Needs the optional extra ``routing-rl[ray]``.
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

from routing_rl.suites.kept import (KeptResultsError, adopt_unrecorded, altered_message, checksum, kept_problem, read_kept_manifest,
                                    read_trial_results, write_kept_manifest)
from routing_rl.suites.manifest import MANIFEST
from routing_rl.suites.populations import longest_first, population_size, populations
from routing_rl.suites.spec import SuiteError, SuiteSpec, Trial
from routing_rl.training.records.io import write_bytes
from routing_rl.training.records.results import RESULTS_NAME


class TrialSetupError(ValueError):
    """A trial's configuration that its classes refused when the trial was built (a range the suite
    file could not be checked for up front): not an interruption, so running again will not help."""


def trial_status(directory: Path) -> str:
    """``complete``, ``partial`` (a checkpoint to resume from), ``diverged`` or ``new`` (:meth:`RunDirectory.status`)."""
    from routing_rl.training.records.run_dir import RunDirectory

    return RunDirectory(directory).status()


FINISHED = ("complete", "diverged")


def recorded_epochs(directory: Path) -> list[dict[str, Any]] | None:
    """The epochs a trial's results.json records (None without a readable one)."""
    from routing_rl.training.records.results import ResultsError, load_results

    try:
        return list(load_results(directory)["epochs"])
    except ResultsError:
        return None


def epochs_done(directory: Path) -> int | None:
    """How many epochs a trial's results.json records (None without a readable one): the progress of
    a partial trial, so that a long suite can be checked on without opening its files."""
    epochs = recorded_epochs(directory)
    return None if epochs is None else len(epochs)


def locate(name: str, directory: Path, kept: str | Path | None, retrain_altered: bool = False,
           recorded: dict[str, dict[str, str]] | None | bool = False) -> tuple[Path, str]:  # fmt: skip
    """A trial's directory and status: its own in the suite directory unless that is unfinished and
    the suite's kept folder holds it finished (status ``kept``).

    A kept trial is trusted only when it is what ``suite keep`` recorded (:mod:`routing_rl.suites.kept`);
    otherwise a :class:`KeptResultsError` names it, or with ``retrain_altered`` the trial counts as
    not kept (and is trained again in the suite directory). ``recorded`` is the kept folder's
    manifest when the caller has read it already (``False``: read it here)."""
    path = directory / name
    if path.is_symlink():
        raise SuiteError(f"trial {name}: {path} is a symbolic link; a suite writes its trials in plain folders: remove the link")
    status = trial_status(path)
    if status in FINISHED or kept is None:
        return path, status
    kept = Path(kept)
    if not ((kept / name).is_symlink() or (kept / name).exists()):
        return path, status  # nothing kept for this trial
    manifest = read_kept_manifest(kept) if recorded is False else recorded
    if problem := kept_problem(name, kept, manifest):  # type: ignore[arg-type]
        if retrain_altered:
            return path, status
        raise KeptResultsError(altered_message(name, kept, problem))
    return (kept / name, "kept") if trial_status(kept / name) in FINISHED else (path, status)


def keep(trials: list[tuple[Trial, Path, str]], kept: Path) -> tuple[list[str], list[str], int]:
    """Copy the results.json of every trial finished in the suite directory into the kept folder and
    record its checksum in the folder's ``kept.json``; returns the names copied, the problems met
    (one line each: a damaged or linked trial is reported and skipped, the others are still kept)
    and how many trials of a folder kept before manifests existed were recorded as they are.

    Only plain files inside the suite directory are read, and nothing is written through a link."""
    recorded = read_kept_manifest(kept)
    adopted = 0
    problems: list[str] = []
    if recorded is None:
        recorded, problems = adopt_unrecorded(kept, [trial.name for trial, _, _ in trials])
        adopted = len(recorded)
        if recorded:
            write_kept_manifest(kept, recorded)
    copied = []
    for trial, path, status in trials:
        if status not in FINISHED:
            continue
        try:
            raw, _ = read_trial_results(path, trial.name)
        except KeptResultsError as exc:
            problems.append(str(exc))
            continue
        target = kept / trial.name
        entry = {"sha256": checksum(raw), "config_key": trial.key}
        if recorded.get(trial.name) == entry and not kept_problem(trial.name, kept, recorded):
            continue
        if target.is_symlink() or (target / RESULTS_NAME).is_symlink():
            problems.append(f"trial {trial.name}: {target} (or its results.json) is a symbolic link; remove it to keep the trial")
            continue
        target.mkdir(parents=True, exist_ok=True)
        write_bytes(target / RESULTS_NAME, raw)
        recorded[trial.name] = entry
        write_kept_manifest(kept, recorded)  # after each copy: a killed keep leaves no unrecorded file
        copied.append(trial.name)
    return copied, problems, adopted


DEFAULT_TRIAL_THREADS = 1
"""Torch threads of a suite or sweep trial that neither the suite file nor ``--threads`` sets.

One, whatever the cores and workers: a trial is one of many, and a suite runs for hours on machines
that other work shares. Two threads beside a busy core train at half the speed of one (0.53x in
``benchmarks/threads_under_load.py``; a user's trial fell from 100,605 to 1,757 samples/s), while on
a quiet machine a second thread gains at most 1.77x for that one trial, and nothing when the workers
fill the cores. Oversubscription costs far more than a single thread leaves on the table; a quiet
machine's owner can still ask for more with ``--threads``."""

MAX_THREADS_PER_CORE = 4
"""``--threads`` above this many per core is refused: it can only slow every trial down."""


def threads_problem(threads: int, cores: int | None = None) -> str | None:
    """Why ``threads`` torch threads per trial cannot be right on this machine (None when they can)."""
    cores = cores or os.cpu_count() or 1
    if threads < 1:
        return f"{threads} is not a positive number of threads; give 1 or more"
    if threads > MAX_THREADS_PER_CORE * cores:
        return (f"{threads} threads per trial on a {cores}-core machine would only slow every trial down; "
                f"give at most {MAX_THREADS_PER_CORE * cores} ({MAX_THREADS_PER_CORE} per core), 1 on a shared machine")  # fmt: skip
    return None


def trial_threads(given: int | None, in_file: int | None) -> int:
    """A trial's torch threads: ``--threads`` when given (the person at the command line knows the
    machine today), else the suite or sweep file's ``threads`` (its author's choice for every
    machine), else :data:`DEFAULT_TRIAL_THREADS`. Threads are not part of a trial's identity
    (``IDENTITY_EXCLUDES``), so changing them keeps every finished trial."""
    if given is not None:
        return given
    return in_file if in_file is not None else DEFAULT_TRIAL_THREADS


def display_name(directory: Path) -> str:
    """A trial's name in progress lines: its directory's without the configuration hash (``wpl-s2``)."""
    head, _, tail = directory.name.rpartition("-")
    return head if head and len(tail) == 10 and all(c in "0123456789abcdef" for c in tail) else directory.name


def run_trial(config: dict[str, Any], directory: str, progress_every: float | None = None) -> dict[str, Any]:
    """Train one trial to completion in ``directory`` (resuming its checkpoint if there is one),
    printing a progress line at most every ``progress_every`` seconds (none with None).

    Runs in a worker process (or a Ray task): it imports, builds and trains everything itself through
    the one run sequence of ``routing-rl run`` and returns a small summary, so nothing but plain data
    crosses process boundaries.
    """
    from routing_rl.training import RunConfig
    from routing_rl.training.loop.progress_line import fit_with_lines
    from routing_rl.training.loop.run_sequence import plain_fit, run_one
    from routing_rl.training.setup.composition import compose

    path = Path(directory)
    status = trial_status(path)
    if status in FINISHED:
        return {"directory": directory, "status": status, "seconds": 0.0, "epochs": 0}
    guard = _setup_guard(path)
    parts = guard(lambda: compose(RunConfig(**{**config, "logdir": directory})))
    fit = plain_fit if progress_every is None else fit_with_lines(display_name(path), progress_every)
    outcome = run_one(parts, resume=status == "partial", overwrite=status != "partial", command=["routing-rl", "suite", "run"],
                      guard=guard, fit=fit)  # fmt: skip
    return {"directory": directory, "status": outcome.status, "seconds": outcome.seconds,
            "epochs": parts.config.epochs - (outcome.trainer.start_epoch - 1)}  # fmt: skip


def run_population_trials(configs: list[dict[str, Any]], directories: list[str], progress_every: float | None = None,
                          auto: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Train trials in populations (:func:`~routing_rl.training.loop.run_sequence.run_population`) in a
    worker process: each trial resumes its own checkpoint; trials that stack together train together,
    a trial that stacks with none trains alone and its summary says why in ``alone`` (with ``auto``,
    convolutional networks on a CPU too). Finished trials are skipped."""
    from routing_rl.training import RunConfig
    from routing_rl.training.loop.progress_line import fit_with_lines
    from routing_rl.training.loop.run_sequence import plain_fit, run_population
    from routing_rl.training.setup.composition import compose

    if len(configs) == 1:
        return [run_trial(configs[0], directories[0], progress_every)]
    pending = [(config, Path(directory)) for config, directory in zip(configs, directories)]
    summaries = {str(path): {"directory": str(path), "status": status, "seconds": 0.0, "epochs": 0}
                 for _, path in pending if (status := trial_status(path)) in FINISHED}  # fmt: skip
    runs = [(config, path, trial_status(path)) for config, path in pending if str(path) not in summaries]
    if runs:
        guards = [_setup_guard(path) for _, path, _ in runs]
        parts = [guard(lambda c=config, p=path: compose(RunConfig(**{**c, "logdir": str(p)}))) for guard, (config, path, _) in zip(guards, runs)]
        fit = plain_fit if progress_every is None else fit_with_lines(lambda t: display_name(t.run_directory.path), progress_every)
        members = run_population([(pc, status == "partial", status != "partial", guard)
                                  for pc, guard, (_, _, status) in zip(parts, guards, runs)], ["routing-rl", "suite", "run"], fit,
                               convolutions_alone=auto)  # fmt: skip
        for (config, path, _), member in zip(runs, members):
            outcome = member.outcome
            summaries[str(path)] = {"directory": str(path), "status": outcome.status, "seconds": outcome.seconds,
                                    "epochs": outcome.trainer.config.epochs - (outcome.trainer.start_epoch - 1),
                                    "population": member.population, "alone": member.alone}  # fmt: skip
    return [summaries[str(Path(d))] for d in directories]


def _setup_guard(path: Path) -> Callable[[Callable[[], Any]], Any]:
    """Set-up failures (bad data, options, a router refused) as a :class:`TrialSetupError` naming the trial."""
    from routing_rl.agents import RouterConfigError
    from routing_rl.data import DataError
    from routing_rl.network import SpecError

    def guard(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except (DataError, SpecError, RouterConfigError, ValueError) as exc:
            raise TrialSetupError(f"trial {path.name}: {exc}") from None

    return guard


def check_data(trials: list[Trial]) -> None:
    """Load the data of every trial whose suite asks to be checked before a suite run writes anything
    (``checked_before_suite_run``: a user's file), once per distinct configuration; raises its DataError."""
    from routing_rl.data import load_from
    from routing_rl.training.setup.composition import suite_class

    seen = set()
    for trial in trials:
        cfg = trial.config  # checked when the suite file was read; only the suite's class is looked up here
        key = (cfg.env, json.dumps(cfg.env_options, sort_keys=True, default=str), cfg.seed, cfg.val_fraction)
        suite_cls = suite_class(cfg.env)
        if key in seen or not suite_cls.checked_before_suite_run:
            continue
        seen.add(key)
        load_from(suite_cls(**cfg.env_options), cfg.env, cfg.data_dir, cfg.seed, cfg.val_fraction)


def manifest_of(suite: SuiteSpec, scale: str | None, trials: list[Trial]) -> dict[str, Any]:
    """What ``suite.json`` holds: the suite and its trials as run."""
    return {"suite": suite.to_dict(), "scale": scale,
            "trials": [{"run": t.run, "seed": t.seed, "name": t.name, "config": t.config.to_dict()} for t in trials]}  # fmt: skip


def write_manifest(suite: SuiteSpec, scale: str | None, trials: list[Trial], directory: Path) -> None:
    """``suite.json``: the suite as run (so ``suite table SUITE_DIR`` needs no suite file)."""
    from routing_rl.training.records.io import write_json

    write_json(directory / MANIFEST, manifest_of(suite, scale, trials))


def plan(suite: SuiteSpec, scale: str | None, directory: Path, threads: int | None = None,
         retrain_altered: bool = False) -> list[tuple[Trial, Path, str]]:  # fmt: skip
    """Every trial with its directory and status, on the threads of :func:`trial_threads` (``threads``:
    the value of ``--threads``, None when not given). A kept trial that is not what was kept stops
    the plan (:func:`locate`), or is planned for training again with ``retrain_altered``."""
    recorded = read_kept_manifest(Path(suite.kept)) if suite.kept is not None else None
    out = []
    for trial in suite.trials(scale):
        trial = replace(trial, config=replace(trial.config, threads=trial_threads(threads, trial.config.threads)))
        out.append((trial, *locate(trial.name, directory, suite.kept, retrain_altered, recorded)))
    return out


def run_local(todo: list[tuple[Trial, Path]], workers: int, report: Callable[[dict[str, Any]], None],
              progress_every: float | None = None, population: int | str = 1) -> None:  # fmt: skip
    """Trials in ``workers`` processes (spawned: each starts clean, as a separate ``routing-rl run``
    would), each printing its progress line at most every ``progress_every`` seconds (None: silent);
    with ``population`` > 1 trials train together in populations of that many at most
    (:func:`~routing_rl.suites.populations.populations`; ``auto``: :data:`~routing_rl.suites.populations.AUTO_POPULATION`, convolutional networks on a CPU
    alone); with several workers the longest populations start first (:func:`~routing_rl.suites.populations.longest_first`)."""
    chunks = populations(todo, population_size(population))
    auto = population == "auto"
    if workers > 1:
        chunks = longest_first(chunks)
    jobs = [([t.config.to_dict() for t, _ in chunk], [str(p) for _, p in chunk]) for chunk in chunks]
    if workers == 1:
        for configs, directories in jobs:
            for summary in run_population_trials(configs, directories, progress_every, auto):
                report(summary)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_population_trials, configs, directories, progress_every, auto) for configs, directories in jobs]
        for future in as_completed(futures):
            for summary in future.result():
                report(summary)


def absolute_data_dir(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its data folder absolute: Ray runs a trial in a working directory of its own,
    where a folder named relative to the suite's would not be found."""
    return {**config, "data_dir": str(Path(config["data_dir"]).resolve())} if config.get("data_dir") else config


def run_ray(todo: list[tuple[Trial, Path]], address: str | None, report: Callable[[dict[str, Any]], None], population: int | str = 1) -> None:
    """The same trials through Ray Tune: one Tune trial per suite trial, with as many CPUs as it has
    torch threads (its ``threads``, set by :func:`plan`), so that Ray packs no more threads than cores."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise RuntimeError("--backend ray needs Ray: pip install 'routing-rl[ray]'") from None

    def trainable(params: dict[str, Any]) -> dict[str, Any]:
        members = run_population_trials(params["spec"]["configs"], params["spec"]["directories"], auto=params["spec"]["auto"])
        return {"members": members}

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        specs = [{"configs": [absolute_data_dir(t.config.to_dict()) for t, _ in chunk], "directories": [str(p.resolve()) for _, p in chunk],
                  "auto": population == "auto"} for chunk in populations(todo, population_size(population))]  # fmt: skip
        grid = tune.Tuner(
            tune.with_resources(trainable, {"cpu": max(t.config.threads or DEFAULT_TRIAL_THREADS for t, _ in todo)}),
            param_space={"spec": tune.grid_search(specs)},
            run_config=tune.RunConfig(storage_path=str(todo[0][1].parent.resolve() / ".ray"), verbose=0),
        )
        for result in grid.fit():
            if result.error is not None:
                raise RuntimeError(f"a Ray trial failed: {result.error}")
            for member in result.metrics["members"]:
                report(member)
    finally:
        if started:
            ray.shutdown()
