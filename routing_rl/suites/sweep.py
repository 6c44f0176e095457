"""``routing-rl sweep SWEEP.toml``: random search over declared ranges, top-k by validation, as SNR does.

The SNR paper tunes every model by random search and reports the test metric averaged over the
10 trials with the best validation metric (its Figures 2 and 5: mean and standard error); the
options that set a model's size, and the L0 weight lambda ({1e-3, 1e-4, 1e-5}), are grid-searched,
each grid point with its own random search. A sweep file declares a base configuration, optional
grid points and a search space; Optuna's seeded random sampler draws the trials (ask-and-tell, so
every trial is an ordinary run directory trained by the suite runner), and the same seed draws the
same trials again, so an interrupted sweep skips what it finished. Every grid point draws from the
same seed, so its trials differ from another point's only in the point's options::

    [sweep]
    name = "snr-lambda"
    trials = 20                             # per grid point; `sweep --trials N` trains the first N
    top_k = 10
    seed = 0
    [base]                                  # a routing-rl run configuration, as in a suite
    env = "multilabel-synthetic"
    agent = "snr-trans"
    epochs = 5
    [[grid]]                                # optional: grid points, each its own search and top-k
    label = "lambda-1e-3"
    "agent_options.l0_lambda" = 1e-3
    [[grid]]
    label = "lambda-1e-5"
    "agent_options.l0_lambda" = 1e-5
    [space]                                 # option = range; agent_options.X / env_options.X for -o / -e
    lr = { low = 1e-4, high = 1e-2, log = true }
    "agent_options.beta" = { low = 0.5, high = 0.9 }
    "agent_options.hidden_sizes" = { choices = [[32, 16], [64, 32]] }
    "agent_options.zeta" = { low = 1.1, high = 2.0, agents = ["snr-trans", "snr-aver"] }  # only for these

Trials are named ``trial000`` (no grid) or ``<label>-trial000``. The sweep directory gets
``sweep.md`` and ``sweep.json`` (each point's trials, its top k and their test mean and standard
error), which ``routing-rl report SWEEP_DIR`` draws.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing_rl.suites.checks import MAX_SEED, MAX_TRIALS, path_name_problem
from routing_rl.suites.checks import table_at
from routing_rl.suites.spec import SuiteError, Trial, make_config, read_toml

DEFAULT_TOP_K = 10
"""The SNR paper's k: the test metric is averaged over the 10 trials best by validation."""


@dataclass(frozen=True)
class Dimension:
    """One searched option: a float/int range (``log`` for log-uniform) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None
    agents: tuple[str, ...] | None = None
    """Only trials of these agents search this option (None: every trial)."""

    def applies_to(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents

    def sample(self, trial: Any) -> Any:
        if self.choices is not None:
            return self.choices[trial.suggest_categorical(self.name, list(range(len(self.choices))))]
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


def _dimension(name: str, spec: Any, where: str) -> Dimension:
    if not isinstance(spec, dict):
        raise SuiteError(f"{where}: space.{name} must be a table like {{ low = 1e-4, high = 1e-2, log = true }} or {{ choices = [...] }}")
    agents = spec.get("agents")
    if agents is not None and (not isinstance(agents, list) or not agents or not all(isinstance(a, str) for a in agents)):
        raise SuiteError(f"{where}: space.{name}.agents must be a non-empty list of agent names, e.g. [\"snr-trans\"]")
    scope = tuple(agents) if agents else None
    unknown = sorted(set(spec) - {"low", "high", "log", "choices", "agents"})
    if unknown:
        raise SuiteError(f"{where}: space.{name} has unknown key(s) {', '.join(unknown)}; use low, high, log, choices, agents")
    if "choices" in spec:
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise SuiteError(f"{where}: space.{name}.choices must be a non-empty list")
        return Dimension(name, choices=tuple(tuple(c) if isinstance(c, list) else c for c in spec["choices"]), agents=scope)
    low, high = spec.get("low"), spec.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
        raise SuiteError(f"{where}: space.{name} needs numbers low < high")
    if spec.get("log") and low <= 0:
        raise SuiteError(f"{where}: space.{name}: a log-uniform range needs low > 0")
    return Dimension(name, low, high, bool(spec.get("log")), isinstance(low, int) and isinstance(high, int), agents=scope)


def _set_option(options: dict[str, Any], key: str, value: Any) -> None:
    """``options[key] = value``, where ``agent_options.X`` / ``env_options.X`` set one key of that table."""
    group, _, option = key.partition(".")
    if option:
        options.setdefault(group, {})[option] = list(value) if isinstance(value, tuple) else value
    else:
        options[key] = value


@dataclass(frozen=True)
class GridPoint:
    """One point of a sweep's grid: a label (it prefixes the trial names) and the options it sets."""

    label: str
    options: dict[str, Any]


def _grid(data: Any, where: str) -> list[GridPoint]:
    if data is None:
        return []
    if not isinstance(data, list) or not data or not all(isinstance(p, dict) for p in data):
        raise SuiteError(f"{where}: grid must be [[grid]] tables, each with a label and the options it sets")
    points = []
    for number, point in enumerate(data):
        label = point.get("label")
        if not isinstance(label, str):
            raise SuiteError(f"{where}: grid point {number + 1} needs a label = \"NAME\" (it prefixes its trials' names)")
        if reason := path_name_problem(label):
            raise SuiteError(f"{where}: grid label {label!r} {reason} (it names the point's trial directories)")
        options = {k: v for k, v in point.items() if k != "label"}
        if not options:
            raise SuiteError(f"{where}: grid point {label!r} sets no option")
        points.append(GridPoint(label, options))
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise SuiteError(f"{where}: grid labels repeat: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
    return points


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: trials per grid point, how many to keep, the sampler's seed, base, grid, space."""

    name: str
    trials: int
    top_k: int
    seed: int
    base: dict[str, Any]
    space: list[Dimension]
    source: str
    grid: tuple[GridPoint, ...] = ()

    @property
    def points(self) -> list[GridPoint | None]:
        """The grid points, or one unnamed point (None) for a sweep without a grid."""
        return list(self.grid) or [None]

    def draw(self, trials: int | None = None) -> list[tuple[Trial, dict[str, Any], str | None]]:
        """The sweep's trials (the first ``trials`` of each point), drawn by Optuna's random sampler
        from ``seed`` (the same every time): ``(trial, the searched values, the point's label)``."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        out = []
        for point in self.points:
            base = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.base.items()}
            for key, value in (point.options if point else {}).items():
                if key in ("agent_options", "env_options") and isinstance(value, dict):
                    base.setdefault(key, {}).update(value)
                else:
                    _set_option(base, key, value)
            agent = str(base.get("agent", "fixed-random"))
            space = [d for d in self.space if d.applies_to(agent)]
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=self.seed))
            prefix = f"{point.label}-" if point else ""
            where = f"{self.source}: {f'grid point {point.label}, ' if point else ''}trial"
            for number in range(self.trials if trials is None else min(trials, self.trials)):
                trial = study.ask()
                chosen = {d.name: d.sample(trial) for d in space}
                options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
                for key, value in chosen.items():
                    _set_option(options, key, value)
                config = make_config(options, int(options.get("seed", 0)), f"{where} {number}")
                out.append((Trial(f"{prefix}trial{number:03d}", config.seed, config), chosen, point.label if point else None))
                study.tell(trial, 0.0)  # values are not used by random search; the trial is just closed
        return out


def load_sweep_file(path: str | Path) -> Sweep:
    """Parse and validate a sweep file (every drawn configuration is checked); errors name file and key."""
    path = Path(path)
    data = read_toml(path, "sweep")
    unknown = sorted(set(data) - {"sweep", "base", "grid", "space"})
    if unknown:
        raise SuiteError(f"{path}: unknown table(s) {', '.join(unknown)}; a sweep has [sweep], [base], [[grid]], [space]")
    head = table_at(data, "sweep", path, "[sweep]\nname = \"NAME\"")
    if "name" not in head:
        raise SuiteError(f"{path}: [sweep] needs a name")
    if reason := path_name_problem(head["name"]):
        raise SuiteError(f"{path}: sweep.name = {head['name']!r} {reason} (it names the sweep directory)")
    trials, seed = head.get("trials", 20), head.get("seed", 0)
    for key, value, top in (("trials", trials, MAX_TRIALS), ("seed", seed, MAX_SEED)):
        if isinstance(value, bool) or not isinstance(value, int) or not (1 if key == "trials" else 0) <= value <= top:
            raise SuiteError(f"{path}: sweep.{key} = {value!r} must be an integer from {1 if key == 'trials' else 0} to {top}")
    top_k = head.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= trials:
        given = f"top_k = {top_k!r}" if "top_k" in head else f"top_k (default {DEFAULT_TOP_K})"
        raise SuiteError(f"{path}: sweep.{given} must be an integer with 1 <= top_k <= trials ({trials}); "
                         f"set top_k = {min(DEFAULT_TOP_K, trials)} in [sweep]")  # fmt: skip
    base = table_at(data, "base", path, "[base]\nagent = \"wpl\"")
    if "logdir" in base:
        raise SuiteError(f"{path}: base.logdir: a sweep puts each trial in SWEEP_DIR/<trial>; remove the key (sweep --out moves the sweep directory)")
    space = data.get("space", {})
    if not isinstance(space, dict) or not space:
        raise SuiteError(f"{path}: no [space] to search")
    sweep = Sweep(head["name"], trials, top_k, seed, base, [_dimension(k, v, str(path)) for k, v in space.items()], str(path),
                  tuple(_grid(data.get("grid"), str(path))))  # fmt: skip
    sweep.draw()  # every drawn configuration is validated up front
    return sweep


def _mean_and_stderr(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values) if values else math.nan
    return mean, statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan


def select_top_k(outcomes: list[dict[str, Any]], k: int, higher_is_better: bool) -> dict[str, Any]:
    """The ``k`` trials with the best validation metric (the macro average); the mean and standard
    error of their test metric, macro and micro averaged (the SNR paper's Figure 2 shows both)."""
    scored = [o for o in outcomes if o["val"] is not None and not math.isnan(o["val"])]
    scored.sort(key=lambda o: o["val"], reverse=higher_is_better)
    top = scored[:k]
    mean, stderr = _mean_and_stderr([o["test"] for o in top])
    micro = [o["test_micro"] for o in top if o.get("test_micro") is not None]
    micro_mean, micro_stderr = _mean_and_stderr(micro) if len(micro) == len(top) else (math.nan, math.nan)
    return {"top": top, "test_mean": mean, "test_stderr": stderr, "test_micro_mean": micro_mean,
            "test_micro_stderr": micro_stderr, "k": len(top)}  # fmt: skip


def summarize(spec: Sweep, drawn: list[tuple[Trial, dict[str, Any], str | None]], directory: Path) -> dict[str, Any]:
    """Each grid point's finished trials and its top k by validation with their test mean and
    standard error: what ``sweep.json`` holds and ``routing-rl report`` draws."""
    from routing_rl.training.records.results import ResultsError, load_results

    by_point: dict[str | None, list[dict[str, Any]]] = {p.label if p else None: [] for p in spec.points}
    higher, metric = True, ""
    for trial, chosen, label in drawn:
        try:
            results = load_results(directory / trial.name)
        except ResultsError:
            continue
        best = results["final"]["best_val"] if results.get("final") else None
        higher, metric = results["metric"]["higher_is_better"], results["metric"]["name"]
        by_point[label].append({"trial": trial.name, "chosen": chosen, "val": best and best["val_mean"], "test": best and best["test_mean"],
                                "test_micro": best and best.get("test_micro")})  # fmt: skip
    points = []
    for point in spec.points:
        label = point.label if point else None
        chosen_k = select_top_k(by_point[label], spec.top_k, higher)
        points.append({"label": label, "options": point.options if point else {}, "finished": len(by_point[label]),
                       "top": chosen_k["top"], "k": chosen_k["k"], "test_mean": chosen_k["test_mean"], "test_stderr": chosen_k["test_stderr"],
                       "test_micro_mean": chosen_k["test_micro_mean"], "test_micro_stderr": chosen_k["test_micro_stderr"]})  # fmt: skip
    return {"sweep": spec.name, "source": spec.source, "metric": metric, "higher_is_better": higher, "top_k": spec.top_k,
            "trials_per_point": max((sum(1 for _, _, lb in drawn if lb == (p.label if p else None)) for p in spec.points), default=0),
            "points": points}  # fmt: skip


def markdown(summary: dict[str, Any], space: list[Dimension]) -> str:
    """``sweep.md``: each point's top trials with their searched values, and the point's test mean ± s.e."""
    metric, lines = summary["metric"], []
    for point in summary["points"]:
        names = [d.name for d in space if any(d.name in o["chosen"] for o in point["top"])]
        if point["label"]:
            lines.append(f"### {point['label']}\n")
        lines += [f"| trial | {' | '.join(names)} | val {metric} | test {metric} |", "|---" * (len(names) + 3) + "|"]
        for o in point["top"]:
            values = " | ".join(f"{o['chosen'][n]:.4g}" if isinstance(o["chosen"].get(n), float) else str(o["chosen"].get(n, "")) for n in names)
            lines.append(f"| {o['trial']} | {values} | {o['val']:.4f} | {o['test']:.4f} |")
        micro = point.get("test_micro_mean", math.nan)
        micro_text = "" if math.isnan(micro) else f", micro-averaged {micro:.4f} ± {point['test_micro_stderr']:.4f}"
        lines.append(f"\ntop {point['k']} of {point['finished']} trials by validation {metric}: test {metric} "
                     f"{point['test_mean']:.4f} ± {point['test_stderr']:.4f}{micro_text} (standard error)\n")  # fmt: skip
    return "\n".join(lines)


SUMMARY = "sweep.json"
"""The file of a sweep directory that says it is one, and holds each point's top k."""
