"""Kept results with integrity: what ``suite keep`` copied is what ``suite table`` tabulates.

A suite's kept folder (``kept`` in ``[suite]``) is the project's published evidence, committed with
it and read on every machine instead of re-training. A results.json edited by hand, or another
trial's swapped into a kept folder, would otherwise be tabulated without a word. So ``suite keep``
records in the folder's ``kept.json`` each kept trial's configuration hash and the SHA-256 of its
results.json, and every reader of a kept trial (``suite run``, ``table``, ``report``, the docs'
scripts: all of them find trials through :func:`~routing_rl.suites.runner.locate`) checks three
things before it trusts one:

* the trial's folder and its results.json are plain (no symbolic link leads out of the folder);
* the file's checksum is the one recorded when it was kept (an edit or a swap changes it);
* the configuration stored in the file hashes to the trial's name (:func:`config_key`), so the
  numbers belong to the options the suite file asks for.

A kept trial that fails is refused with one line naming it and what differs; ``suite run
--retrain-altered`` trains it again instead. Editing ``kept.json`` together with a file is possible,
but it is then a deliberate change that the project's history shows, not a silent one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from routing_rl.core.files import MANIFEST_LIMIT, RESULTS_LIMIT, FileCheckError, read_regular
from routing_rl.suites.spec import SuiteError, config_key
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.records.io import write_json
from routing_rl.training.records.results import RESULTS_NAME, ResultsError, parse_results

KEPT_MANIFEST = "kept.json"
"""The kept folder's record of its trials: ``{"trials": {name: {"sha256": ..., "config_key": ...}}}``."""


class KeptResultsError(SuiteError):
    """A kept trial that is not what was kept: altered, swapped, linked out or unrecorded."""


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_kept_manifest(kept: Path) -> dict[str, dict[str, str]] | None:
    """The recorded trials of ``kept`` (name -> sha256 and config_key), or None when the folder has
    no ``kept.json`` (a folder kept before manifests existed: ``suite keep`` records it)."""
    file = Path(kept) / KEPT_MANIFEST
    try:
        data = json.loads(read_regular(file, MANIFEST_LIMIT, KEPT_MANIFEST, follow=False))
    except FileNotFoundError:
        return None
    except FileCheckError as exc:
        raise KeptResultsError(f"{exc}") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise KeptResultsError(f"{file}: cannot be read ({type(exc).__name__}); restore it from the project's history") from None
    trials = data.get("trials") if isinstance(data, dict) else None
    if not isinstance(trials, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("config_key"), str)
        for entry in trials.values()
    ):
        raise KeptResultsError(f"{file}: expected {{\"trials\": {{NAME: {{sha256, config_key}}}}}}; restore it from the project's history")
    return trials


def write_kept_manifest(kept: Path, trials: dict[str, dict[str, str]]) -> None:
    """``kept.json``, atomically, trials sorted by name (a stable file to commit and diff)."""
    write_json(Path(kept) / KEPT_MANIFEST, {
        "about": "Written by `routing-rl suite keep`: each kept trial's config hash and the SHA-256 of its results.json, "
                 "checked by every command that reads the kept trials.",
        "trials": {name: trials[name] for name in sorted(trials)},
    })  # fmt: skip


def read_trial_results(folder: Path, name: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes and the validated record of ``folder``'s results.json, refusing a linked folder or
    file, a non-regular or oversized file, and a stored config that does not hash to ``name``."""
    if folder.is_symlink():
        raise KeptResultsError(f"trial {name}: {folder} is a symbolic link; a trial's folder must be a plain folder")
    file = folder / RESULTS_NAME
    try:
        raw = read_regular(file, RESULTS_LIMIT, RESULTS_NAME, follow=False)
        results = parse_results(raw, file)
    except FileNotFoundError:
        raise KeptResultsError(f"trial {name}: no {file}") from None
    except (FileCheckError, ResultsError) as exc:
        raise KeptResultsError(f"trial {name}: {exc}") from None
    except OSError as exc:
        raise KeptResultsError(f"trial {name}: cannot read {file} ({exc.strerror or exc})") from None
    try:
        stored = config_key(RunConfig.from_stored(results["config"]))
    except (TypeError, ValueError) as exc:
        raise KeptResultsError(f"trial {name}: the config in {file} is not a run's ({exc})") from None
    if not name.endswith(f"-{stored}"):
        raise KeptResultsError(f"trial {name}: its {RESULTS_NAME} holds the results of other options (config hash {stored}, "
                               f"the trial's is {name.rsplit('-', 1)[-1]}): a swapped file")  # fmt: skip
    return raw, results


def kept_problem(name: str, kept: Path, recorded: dict[str, dict[str, str]] | None) -> str | None:
    """Why the kept trial ``name`` of ``kept`` cannot be trusted (None when it can)."""
    if recorded is None:
        return f"{kept} has no {KEPT_MANIFEST} recording its trials; run `routing-rl suite keep SUITE_FILE` to record them"
    try:
        raw, _ = read_trial_results(kept / name, name)
    except KeptResultsError as exc:
        return str(exc).removeprefix(f"trial {name}: ")
    entry = recorded.get(name)
    if entry is None:
        return f"it is not recorded in {kept / KEPT_MANIFEST}; `routing-rl suite keep` records the trials it copies"
    if checksum(raw) != entry["sha256"]:
        return f"its {RESULTS_NAME} is not the file that was kept (its SHA-256 differs from {KEPT_MANIFEST}'s): edited or replaced"
    return None


def altered_message(name: str, kept: Path, problem: str) -> str:
    """The one line a reader of an untrustworthy kept trial stops with."""
    return (f"kept trial {name} in {kept}: {problem}; restore it from the project's history, "
            "or train it again with `routing-rl suite run SUITE_FILE --retrain-altered`")  # fmt: skip


def adopt_unrecorded(kept: Path, names: list[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """A manifest for a kept folder that predates manifests: each of ``names`` found there with a
    readable results.json whose config hashes to its name is recorded as it is now."""
    trials: dict[str, dict[str, str]] = {}
    problems = []
    for name in names:
        folder = Path(kept) / name
        if not (folder.is_symlink() or folder.exists()):
            continue
        try:
            raw, _ = read_trial_results(folder, name)
        except KeptResultsError as exc:
            problems.append(str(exc))
            continue
        trials[name] = {"sha256": checksum(raw), "config_key": name.rsplit("-", 1)[-1]}
    return trials, problems
