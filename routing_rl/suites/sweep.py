"""``routing-rl sweep SWEEP.toml``: random search over declared ranges, top-k by validation, as SNR does.

The SNR paper tunes every model by random search and reports the test metric averaged over the
10 trials with the best validation metric. A sweep file declares a base configuration and a search
space; Optuna's seeded random sampler draws the trials (ask-and-tell, so every trial is an ordinary
run directory trained by the suite runner), and the same seed draws the same trials again, so an
interrupted sweep skips what it finished::

    [sweep]
    name = "snr-lambda"
    trials = 20
    top_k = 10
    seed = 0
    [base]                                  # a routing-rl run configuration, as in a suite
    env = "multilabel-synthetic"
    agent = "snr-trans"
    epochs = 5
    [space]                                 # option = range; agent_options.X / env_options.X for -o / -e
    lr = { low = 1e-4, high = 1e-2, log = true }
    "agent_options.l0_lambda" = { choices = [1e-5, 1e-4, 1e-3] }
    "agent_options.beta" = { low = 0.5, high = 0.9 }
    "agent_options.hidden_sizes" = { choices = [[32, 16], [64, 32]] }
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from routing_rl.suites.checks import MAX_SEED, MAX_TRIALS, path_name_problem
from routing_rl.suites.spec import SuiteError, Trial, make_config, read_toml, table_at

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

    def sample(self, trial: Any) -> Any:
        if self.choices is not None:
            return self.choices[trial.suggest_categorical(self.name, list(range(len(self.choices))))]
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


def _dimension(name: str, spec: Any, where: str) -> Dimension:
    if not isinstance(spec, dict):
        raise SuiteError(f"{where}: space.{name} must be a table like {{ low = 1e-4, high = 1e-2, log = true }} or {{ choices = [...] }}")
    if "choices" in spec:
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise SuiteError(f"{where}: space.{name}.choices must be a non-empty list")
        return Dimension(name, choices=tuple(tuple(c) if isinstance(c, list) else c for c in spec["choices"]))
    low, high = spec.get("low"), spec.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
        raise SuiteError(f"{where}: space.{name} needs numbers low < high")
    if spec.get("log") and low <= 0:
        raise SuiteError(f"{where}: space.{name}: a log-uniform range needs low > 0")
    return Dimension(name, low, high, bool(spec.get("log")), isinstance(low, int) and isinstance(high, int))


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: how many trials, how many to keep, the sampler's seed, base and space."""

    name: str
    trials: int
    top_k: int
    seed: int
    base: dict[str, Any]
    space: list[Dimension]
    source: str

    def draw(self) -> list[tuple[Trial, dict[str, Any]]]:
        """The sweep's trials, drawn by Optuna's random sampler from ``seed`` (the same every time)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=self.seed))
        out = []
        for number in range(self.trials):
            trial = study.ask()
            chosen = {d.name: d.sample(trial) for d in self.space}
            options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.base.items()}
            for key, value in chosen.items():
                group, _, option = key.partition(".")
                if option:
                    options.setdefault(group, {})[option] = list(value) if isinstance(value, tuple) else value
                else:
                    options[key] = value
            config = make_config(options, int(options.get("seed", 0)), f"{self.source}: trial {number}")
            out.append((Trial(f"trial{number:03d}", config.seed, config), chosen))
            study.tell(trial, 0.0)  # values are not used by random search; the trial is just closed
        return out


def load_sweep_file(path: str | Path) -> Sweep:
    """Parse and validate a sweep file (every drawn configuration is checked); errors name file and key."""
    path = Path(path)
    data = read_toml(path, "sweep")
    unknown = sorted(set(data) - {"sweep", "base", "space"})
    if unknown:
        raise SuiteError(f"{path}: unknown table(s) {', '.join(unknown)}; a sweep has [sweep], [base], [space]")
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
    sweep = Sweep(head["name"], trials, top_k, seed, base, [_dimension(k, v, str(path)) for k, v in space.items()], str(path))
    sweep.draw()  # every drawn configuration is validated up front
    return sweep


def select_top_k(outcomes: list[dict[str, Any]], k: int, higher_is_better: bool) -> dict[str, Any]:
    """The ``k`` trials with the best validation metric; their test metric's mean and standard error."""
    scored = [o for o in outcomes if o["val"] is not None and not math.isnan(o["val"])]
    scored.sort(key=lambda o: o["val"], reverse=higher_is_better)
    top = scored[:k]
    tests = [o["test"] for o in top]
    mean = statistics.fmean(tests) if tests else math.nan
    stderr = statistics.stdev(tests) / math.sqrt(len(tests)) if len(tests) > 1 else math.nan
    return {"top": top, "test_mean": mean, "test_stderr": stderr, "k": len(top)}


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(path_type=Path))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Trials trained at once.")
@click.option("--out", "out", default=None, type=click.Path(path_type=Path), help="Sweep directory (default: runs/sweep-<name>).")
def sweep(sweep_file: Path, workers: int, out: Path | None) -> None:
    """Random search over SWEEP_FILE's space; report the top-k trials by validation and their test mean ± s.e."""
    from dataclasses import replace

    from routing_rl.suites.runner import run_local, threads_per_worker, trial_status
    from routing_rl.training.results import ResultsError, load_results

    try:
        spec = load_sweep_file(sweep_file)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    directory = out or Path("runs") / f"sweep-{spec.name}"
    drawn = [(replace(t, config=replace(t.config, threads=t.config.threads or threads_per_worker(workers))), chosen) for t, chosen in spec.draw()]
    todo = [(t, directory / t.name) for t, _ in drawn if trial_status(directory / t.name) in ("new", "partial")]
    click.echo(f"sweep {spec.name}: {len(drawn)} trials, {len(drawn) - len(todo)} finished, training {len(todo)}")
    from routing_rl.suites.runner import TrialSetupError

    try:
        run_local(todo, workers, lambda s: click.echo(f"  {Path(s['directory']).name}: {s['status']} ({s['seconds']:.0f} s)"))
    except TrialSetupError as exc:  # a configuration error: running again would fail the same way
        raise click.ClickException(f"sweep stopped: {exc}; fix the option in {sweep_file} (finished trials are kept)") from None
    except Exception as exc:
        raise click.ClickException(f"sweep stopped: {type(exc).__name__}: {exc}; run the command again to continue") from None
    outcomes, higher, metric = [], True, ""
    for trial, chosen in drawn:
        try:
            results = load_results(directory / trial.name)
        except ResultsError:
            continue
        best = results["final"]["best_val"] if results.get("final") else None
        higher, metric = results["metric"]["higher_is_better"], results["metric"]["name"]
        outcomes.append({"trial": trial.name, "chosen": chosen, "val": best and best["val_mean"], "test": best and best["test_mean"]})
    chosen_k = select_top_k(outcomes, spec.top_k, higher)
    lines = [f"| trial | {' | '.join(d.name for d in spec.space)} | val {metric} | test {metric} |", "|---" * (len(spec.space) + 3) + "|"]
    for o in chosen_k["top"]:
        values = " | ".join(f"{o['chosen'][d.name]:.4g}" if isinstance(o["chosen"][d.name], float) else str(o["chosen"][d.name]) for d in spec.space)
        lines.append(f"| {o['trial']} | {values} | {o['val']:.4f} | {o['test']:.4f} |")
    lines.append(f"\ntop {chosen_k['k']} of {len(outcomes)} trials by validation {metric}: test {metric} "
                 f"{chosen_k['test_mean']:.4f} ± {chosen_k['test_stderr']:.4f} (standard error)")  # fmt: skip
    text = "\n".join(lines) + "\n"
    from routing_rl.training.io import write_text

    write_text(directory / "sweep.md", text)
    click.echo(text, nl=False)
