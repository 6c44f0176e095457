"""A suite file: named runs x seeds, each a full ``routing-rl run`` configuration, with scales.

A suite is what a paper's table is: several methods, each trained with several seeds, compared
against a baseline. The TOML format mirrors the command line (keys are ``routing-rl run`` option
names with ``-`` written ``_``)::

    [suite]
    name = "demo"
    seeds = [0, 1, 2]
    baseline = "no-sharing"          # a run name below
    [defaults]                       # options of every run
    env = "synthetic-groups"
    epochs = 3
    [runs.fixed-random]
    agent = "fixed-random"
    [runs.no-sharing]
    agent = "no-sharing"
    routed = "all"
    agent_options = {}               # the -o options
    env_options = { num_tasks = 8 }  # the -e options
    [scales.quick]                   # overrides applied by --scale quick
    epochs = 1
    seeds = [0, 1]                   # a scale may change the seeds
    [scales.quick.no-sharing]        # and the options of one run
    hidden = 32

A scale's ``env_options`` / ``agent_options`` are merged key by key into every run's, and in a
suite with settings (below) ``settings = ["a", "b"]`` in a scale trains only those.

A data file named in a run's options (``env_options = { path = "penguins.csv" }`` of ``--env
files``) is read relative to the suite file's folder, so a suite runs the same from any working
directory (the folder travels as the trial's ``data_dir``, which is not part of its identity).

``kept = "../results/demo"`` in ``[suite]`` names a folder (relative to the suite file) of finished
trials kept with the project: ``<trial name>/results.json`` each, written by ``routing-rl suite
keep``. ``suite run`` treats a trial found there as finished and ``suite table`` and ``report``
read it, so a suite that outlives one machine picks up on the next where the last one stopped.

``test = "paired"`` (the default) in ``[suite]`` has ``suite table`` test each method against the
baseline seed by seed (a method and the baseline of one seed share its data split and data order);
``test = "paper-a2"`` uses the Re-examining paper's unpaired appendix A.2 test instead, as the
reproduction suites do so that their tables keep the paper's numbers. It changes no trial.

``[settings.NAME]`` tables make a suite a sweep over the data or the protocol: every run is
trained in every setting (a setting's options go over the run's, ``env_options`` and
``agent_options`` merged key by key; a scale's go over both), as rows named ``SETTING.RUN``, and
``suite table`` tests each method against the baseline of its own setting, with Holm's correction
over all the suite's comparisons. ``figure = { x = 4, panel = "clean labels" }`` in a setting places
it on ``report``'s settings figure (x in file order by default, one panel unless named), and
``x_label`` in ``[suite]`` names that axis::

    [suite]
    x_label = "task groups"
    [settings.groups-1]
    env_options = { num_groups = 1 }
    figure = { x = 1 }

A trial is one (run, seed); it is identified by a hash of its configuration (the options that
differ from the defaults), so a changed option is a new trial and an unchanged one is found again
(skipped when finished, resumed when interrupted), also after a release that adds options.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing_rl.core.files import SETTINGS_LIMIT, FileCheckError, read_regular
from routing_rl.registry import UnknownNameError
from routing_rl.suites.checks import MAX_TRIALS, SuiteError, check_value, path_name_problem, seeds_problem, table_at
from routing_rl.suites.settings import MERGED_OPTIONS, SETTING_SEPARATOR, read_settings, split_setting_row, with_setting
from routing_rl.training.setup.composition import configure
from routing_rl.training.setup.config import STORED_BEFORE_DEFAULT_CHANGES, RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

NOT_RUN_OPTIONS = ("logdir", "resume", "overwrite", "quiet", "plugins")
"""``routing-rl run`` options that a suite decides itself."""

SUITE_DECIDES = {"logdir": "a suite puts each trial in SUITE_DIR/<trial>; remove the key (suite run --out moves the suite directory)",
                 "seed": "a suite's seeds are suite.seeds (or a scale's seeds); remove the key"}
"""Run options a suite file may not set, with what to do instead (they would be silently ignored)."""

SUITE_KEYS = ("name", "seeds", "baseline", "metric", "kept", "test", "x_label")
"""The keys of ``[suite]``."""

IDENTITY_EXCLUDES = ("logdir", "device", "threads", "eval_batch_size", "data_dir", "divergence_factor", "deterministic")
"""Options that do not change a trial's numbers, so not its identity (as those a resume may change;
``deterministic`` changes only the order of CUDA's floating-point sums, as ``device`` does)."""


TESTS = {"paired": "one-tailed paired t-test by seed (methods of one seed share its data split and data order)",
         "paper-a2": "the Re-examining paper's appendix A.2 test: one-tailed two-sample t-test, pooled variance, unpaired"}
"""The values of ``[suite] test``: how the table tests each method against the baseline."""


def config_key(config: RunConfig) -> str:
    """Hash of the options of ``config`` that define a trial's numbers and differ from ``RunConfig``'s
    defaults: the suffix of a trial's directory name, and what a kept trial's stored config must hash to.

    Leaving default values out keeps a trial's identity when a later release adds an option
    (at a default that changes nothing), so a suite that spans releases still finds its
    finished trials. An option whose default changed is compared with its old default
    (``STORED_BEFORE_DEFAULT_CHANGES``): a suite that names the old value keeps its trials, and
    one that takes the new default gets new trials, as its numbers change.
    """
    defaults = {**type(config)().to_dict(), **STORED_BEFORE_DEFAULT_CHANGES}
    fields = {k: v for k, v in config.to_dict().items() if k not in IDENTITY_EXCLUDES and v != defaults.get(k, object())}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Trial:
    """One (run, seed) of a suite with its complete configuration."""

    run: str
    seed: int
    config: RunConfig

    @property
    def key(self) -> str:
        """Hash of the options that define the trial's numbers (:func:`config_key`)."""
        return config_key(self.config)

    @property
    def name(self) -> str:
        return f"{self.run}-s{self.seed}-{self.key}"


@dataclass(frozen=True)
class SuiteSpec:
    """A parsed suite file: its runs (name -> options), seeds, baseline and scales."""

    name: str
    seeds: list[int]
    baseline: str | None
    runs: dict[str, dict[str, Any]]
    scales: dict[str, dict[str, Any]]
    source: str
    metric: str = "last"
    reference: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    reference_source: str = ""
    kept: str | None = None
    """The kept-results folder, resolved against the suite file's folder; None when the suite keeps none."""
    test: str = "paired"
    """How ``suite table`` tests a method against the baseline (:data:`TESTS`); not part of any trial's identity."""
    settings: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Setting name -> the options it puts over every run (file order); empty for a suite of one setting."""
    placement: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Setting name -> its place on the settings figure: ``x`` (a number or a label) and ``panel``."""
    x_label: str = ""
    """The settings figure's x axis."""

    def row_name(self, setting: str | None, run: str) -> str:
        """A trial's row: the run's name, ``SETTING.RUN`` in a suite with settings."""
        return run if setting is None else f"{setting}{SETTING_SEPARATOR}{run}"

    def split_row(self, row: str) -> tuple[str | None, str]:
        """``(setting, run)`` of a row name (setting None in a suite without settings); setting names
        hold no separator, so the first one splits."""
        return split_setting_row(row, bool(self.settings))

    def describe_row(self, row: str) -> str:
        """Where a row's options come from, for an error: ``runs.wpl`` or ``runs.wpl in settings.groups-4``."""
        setting, run = self.split_row(row)
        return f"runs.{run}" + (f" in settings.{setting}" if setting is not None else "")

    def scale_settings(self, names: Any, scale: str | None) -> dict[str, dict[str, Any]]:
        """The settings a scale trains: ``settings = ["a", "b"]`` in the scale (a quick scale need not
        train every setting), else all of them."""
        if names is None:
            return self.settings
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n in self.settings for n in names):
            raise SuiteError(f"{self.source}: scales.{scale}.settings must list settings of the suite; settings: "
                             f"{', '.join(self.settings) or '(none)'}")  # fmt: skip
        return {name: self.settings[name] for name in names}

    def trials(self, scale: str | None = None) -> list[Trial]:
        """Every (run, seed) with the scale's overrides applied: seed by seed, runs in file order."""
        if scale is not None and scale not in self.scales:
            raise SuiteError(f"{self.source}: no scale {scale!r}; scales: {', '.join(self.scales) or '(none)'}")
        overrides = dict(self.scales.get(scale, {})) if scale else {}
        seeds = overrides.pop("seeds", self.seeds)
        settings = self.scale_settings(overrides.pop("settings", None), scale)
        merged_options = {k: overrides.pop(k) for k in MERGED_OPTIONS if k in overrides and k not in self.runs}
        if reason := seeds_problem(seeds):
            raise SuiteError(f"{self.source}: scales.{scale}.seeds {reason}")
        if len(seeds) * len(self.runs) * max(len(settings), 1) > MAX_TRIALS:
            of_settings = f" x {len(settings)} settings" if settings else ""
            raise SuiteError(f"{self.source}: {len(seeds)} seeds x {len(self.runs)} runs{of_settings}{f' (scale {scale})' if scale else ''} "
                             f"is more than {MAX_TRIALS} trials; list fewer seeds or runs")  # fmt: skip
        unknown = sorted(k for k, v in overrides.items() if isinstance(v, dict) and k not in self.runs)
        if unknown:
            raise SuiteError(f"{self.source}: scales.{scale}: no run named {', '.join(unknown)}")
        merged_runs = {}
        for setting, over in (settings.items() if settings else [(None, {})]):
            for run, options in self.runs.items():
                merged = with_setting(with_setting(options, over), merged_options)
                merged.update({k: v for k, v in overrides.items() if not isinstance(v, dict)})
                merged.update(overrides.get(run, {}) if isinstance(overrides.get(run), dict) else {})
                merged_runs[self.row_name(setting, run)] = merged
        # seed-major: a suite stopped part-way has every method at its first seeds
        where = f" (scale {scale})" if scale else ""
        # each run's configuration is checked once; a seed only changes ``seed``
        configs = {row: self.with_data_folder(make_config(merged, seeds[0], f"{self.source}: {self.describe_row(row)}{where}"))
                   for row, merged in merged_runs.items()}  # fmt: skip
        return [Trial(run, seed, configs[run] if seed == seeds[0] else dataclasses.replace(configs[run], seed=seed))
                for seed in seeds for run in merged_runs]

    def with_data_folder(self, config: RunConfig) -> RunConfig:
        """``config`` reading its data files relative to the suite file's folder (when its suite
        reads files named in its options and the run sets no ``data_dir`` of its own)."""
        from routing_rl.training.setup.composition import suite_class

        try:
            reads_paths = bool(suite_class(config.env).path_options)
        except UnknownNameError:
            return config  # reported by the configuration check
        if not reads_paths or config.data_dir is not None:
            return config
        # as the suite file was named (relative to the working directory, like the suite file itself), so
        # that a run's record names the project's folders and not the machine's
        return dataclasses.replace(config, data_dir=os.path.normpath(Path(self.source).parent))

    def directory(self, scale: str | None, root: Path = Path("runs")) -> Path:
        """Where the suite's trials live by default: ``runs/suite-<name>[-<scale>]``."""
        return root / (f"suite-{self.name}" + (f"-{scale}" if scale else ""))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CONFIG_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
CONFIG_TYPES = typing.get_type_hints(RunConfig)


def make_config(options: dict[str, Any], seed: int, where: str) -> RunConfig:
    """A RunConfig from suite options (keys as ``routing-rl run`` options, ``-`` as ``_``)."""
    values = {k.replace("-", "_"): v for k, v in options.items()}
    if "max_batches" in values:
        values["max_batches_per_epoch"] = values.pop("max_batches")
    unknown = sorted(set(values) - CONFIG_FIELDS)
    if unknown:
        raise SuiteError(f"{where}: unknown option(s) {', '.join(unknown)}; use `routing-rl run` option names")
    for key in ("agent_options", "env_options"):
        if not isinstance(values.get(key, {}), dict):
            raise SuiteError(f"{where}: {key} must be a table, e.g. {key} = {{ num_tasks = 8 }}")
    values["seed"] = seed
    try:
        for key, value in values.items():
            check_value(key, value, CONFIG_TYPES[key])
        parts = configure(values)  # the command line's config builder and checks
        check_names(parts.config, parts.agent_cls, parts.suite_cls)
    except (TypeError, ValueError, KeyError, UnknownNameError) as exc:
        raise SuiteError(f"{where}: {exc}") from None
    return parts.config


def check_names(config: RunConfig, agent_cls: type[Any], suite_cls: type[Any]) -> None:
    """The agent's and the suite's option names exist and each option's value has the option's type
    (ranges are checked when the trial is built, by the class itself)."""
    for cls, options, kind in ((agent_cls, config.agent_options, "agent_options"), (suite_cls, config.env_options, "env_options")):
        try:
            cls.check_option_names(options)
        except ValueError as exc:
            raise ValueError(f"{kind}: {exc}") from None
        specs = cls.options()
        for key, value in options.items():
            check_value(f"{kind}.{key}", value, specs[key].annotation)
    try:  # a task suite's constructor checks its sizes (and their memory) without loading anything
        suite_cls(**config.env_options)
    except Exception as exc:  # a plugin's suite is user code: whatever it raises is reported
        raise ValueError(f"env_options: {exc}") from None


def read_toml(path: Path, kind: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file is a :class:`SuiteError`."""
    try:
        return tomllib.loads(read_regular(path, SETTINGS_LIMIT, f"{kind} file").decode("utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such {kind} file") from None
    except FileCheckError as exc:
        raise SuiteError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML ({exc})") from None


def read_reference(table: Any, runs: dict[str, Any], path: Path) -> tuple[dict[str, dict[str, float]], str]:
    """``[reference]``: a paper's numbers per run, ``NAME = { mean = ..., std = ... }``, plus ``source``."""
    if not isinstance(table, dict):
        raise SuiteError(f"{path}: [reference] must be a table of run = {{ mean = ..., std = ... }}")
    source = table.get("source", "")
    if not isinstance(source, str):
        raise SuiteError(f"{path}: reference.source must be a string")
    values: dict[str, dict[str, float]] = {}
    for run, numbers in table.items():
        if run == "source":
            continue
        if run not in runs:
            raise SuiteError(f"{path}: reference.{run} is not a run; runs: {', '.join(runs)}")
        if not isinstance(numbers, dict) or not isinstance(numbers.get("mean"), (int, float)) or set(numbers) - {"mean", "std"} \
                or not all(isinstance(v, (int, float)) for v in numbers.values()):  # fmt: skip
            raise SuiteError(f"{path}: reference.{run} must be {{ mean = number, std = number }} (std optional)")
        values[run] = {k: float(v) for k, v in numbers.items()}
    return values, source


def read_kept(value: Any, path: Path) -> str | None:
    """``suite.kept``: a relative folder, resolved against the suite file's folder (absolute paths
    would tie a shared suite file to one machine)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or Path(value).is_absolute():
        raise SuiteError(f"{path}: suite.kept must be a folder relative to the suite file, e.g. kept = \"../results/NAME\"")
    return str((path.parent / value).resolve())


def load_suite_file(path: str | Path) -> SuiteSpec:
    """Parse and validate a suite file; errors name the file and the key."""
    path = Path(path)
    data = read_toml(path, "suite")
    if "sweep" in data and "suite" not in data:
        name = data["sweep"].get("name", "NAME") if isinstance(data["sweep"], dict) else "NAME"
        raise SuiteError(f"{path} is a sweep file, not a suite file: `routing-rl sweep {path}` runs it, "
                         f"`routing-rl report runs/sweep-{name}` draws it")  # fmt: skip
    unknown = sorted(set(data) - {"suite", "defaults", "runs", "scales", "reference", "settings"})
    if unknown:
        raise SuiteError(f"{path}: unknown table(s) {', '.join(unknown)}; a suite has [suite], [defaults], [runs.NAME], [settings.NAME], "
                         "[scales.NAME], [reference]")  # fmt: skip
    head = table_at(data, "suite", path, "[suite]\nname = \"NAME\"")
    if extra := sorted(set(head) - set(SUITE_KEYS)):
        raise SuiteError(f"{path}: unknown key(s) suite.{', suite.'.join(extra)}; [suite] has {', '.join(SUITE_KEYS)}")
    if "name" not in head:
        raise SuiteError(f"{path}: [suite] needs a name")
    if reason := path_name_problem(head["name"]):
        raise SuiteError(f"{path}: suite.name = {head['name']!r} {reason} (it names the suite directory)")
    seeds = head.get("seeds", [0])
    if reason := seeds_problem(seeds):
        raise SuiteError(f"{path}: suite.seeds {reason}")
    defaults = table_at(data, "defaults", path, "[defaults]\nepochs = 3")
    runs = table_at(data, "runs", path, "[runs.NAME]\nagent = \"wpl\"")
    if not runs:
        raise SuiteError(f"{path}: no [runs.NAME] tables")
    for name, options in runs.items():
        if reason := path_name_problem(name):
            raise SuiteError(f"{path}: run name {name!r} {reason} (it names the trials' directories)")
        table_at(runs, name, path, f"[runs.{name}]\nagent = \"wpl\"", prefix="runs.")
    scales = table_at(data, "scales", path, "[scales.quick]\nepochs = 1")
    for scale, overrides in scales.items():
        if reason := path_name_problem(scale):
            raise SuiteError(f"{path}: scale name {scale!r} {reason} (it names the suite directory)")
        table_at(scales, scale, path, f"[scales.{scale}]\nepochs = 1", prefix="scales.")
    settings, placement = read_settings(data, path)
    for where, options in [("defaults", defaults), *((f"runs.{n}", o) for n, o in runs.items()),
                           *((f"settings.{n}", o) for n, o in settings.items()),
                           *((f"scales.{s}", o) for s, o in scales.items()),
                           *((f"scales.{s}.{n}", v) for s, o in scales.items() for n, v in o.items() if isinstance(v, dict))]:  # fmt: skip
        for key in options:
            if key.replace("-", "_") in SUITE_DECIDES:
                raise SuiteError(f"{path}: {where}.{key}: {SUITE_DECIDES[key.replace('-', '_')]}")
    merged = {name: {**defaults, **options} for name, options in runs.items()}
    baseline = head.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or baseline not in runs):
        raise SuiteError(f"{path}: suite.baseline {baseline!r} is not a run; runs: {', '.join(runs)}")
    metric = head.get("metric", "last")
    if metric not in ("last", "best-val"):
        raise SuiteError(f"{path}: suite.metric must be last or best-val, got {metric!r}")
    test = head.get("test", "paired")
    if test not in TESTS:
        raise SuiteError(f"{path}: suite.test must be one of {', '.join(TESTS)}, got {test!r}")
    reference, reference_source = read_reference(data.get("reference", {}), runs, path)
    x_label = head.get("x_label", "")
    if not isinstance(x_label, str):
        raise SuiteError(f"{path}: suite.x_label must be a string (the settings figure's x axis)")
    suite = SuiteSpec(head["name"], seeds, baseline, merged, scales, str(path), metric, reference, reference_source,
                      read_kept(head.get("kept"), path), test, settings, placement, x_label)  # fmt: skip
    for scale in [None, *scales]:
        suite.trials(scale)  # validates every configuration up front
    return suite
