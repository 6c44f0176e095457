"""``routing-rl suite init``: the standard battery for "does learned routing beat simple sharing here?".

One command writes a suite file for any ``--env`` (a user's file through ``--env files`` above
all): the shared bottom (the baseline every verdict is against), no sharing, fixed random routes,
the learned routers WPL, REINFORCE and hard-concrete, and the multi-task models SNR-Trans and
MMoE, each over the same seeds. The data are loaded first, which checks them (a bad file fails
here, before any run) and sizes the networks from them: the routed network is the conv stack for
image inputs and FC blocks for vectors (the trainer's own choice). Every method is sized to the
shared bottom's trainable parameters (the shared bottom itself keeps the default widths), so a
verdict compares ways of sharing, not sizes: the two models' widths are chosen by
:func:`~routing_rl.models.sizing.match_hidden_size`, and the routers' FC width (and conv filters
where conv layers are routed) by :func:`~routing_rl.suites.router_sizing.router_widths`, since a
routed network has every routed layer's blocks in addition to the shared layers (at the default
widths a 4-task table's hard-concrete network had 2.7x the shared bottom's parameters). Each
method's count is written into the suite file's header.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from routing_rl.data import Suite
from routing_rl.data.summary import data_summary
from routing_rl.models.sizing import match_hidden_size, train_parameter_count
from routing_rl.network.hard_concrete import DEFAULT_LOG_ALPHA_INIT, HardConcreteGate
from routing_rl.network.spec import InputShapeError, build_layer_specs, count_parameters
from routing_rl.suites.router_sizing import router_widths
from routing_rl.training.setup.composition import agent_class
from routing_rl.training.setup.config import RunConfig

BASELINE = "shared-bottom"

HARD_CONCRETE_L0_LAMBDA = 0.03
"""The battery's L0 weight of the hard-concrete router, with the router rate of
:func:`hard_concrete_router_lr`.

The penalty enters the loss as in SNR (and Louizos et al.'s objective): ``lambda * sum_j P(z_j != 0)``
added to the task loss, which the trainer takes as a mean over the batch's examples (a file
table's tasks: the sum over tasks of each task's mean), so lambda is what an open gate must earn
in mean loss per example, whatever the table's size. Louizos et al.'s code instead states its
penalty per data set and divides it by the N training rows (lambda = c / N); measured, that is
the wrong way round for a battery: with c = 65 (0.03 at the 3,000-row table's 2,160 training
rows, at the rate of :func:`hard_concrete_router_lr`) the penguins table (247 training rows,
lambda 0.26) closed 18 and 19 of 27 gates and lost its accuracy (test task score 0.55/0.57
against the shared bottom's 0.82/0.76, seeds 0/1), and synthetic-groups (7,200 rows, lambda
0.009) kept 192 and 190 of 192 open. SNR
grid-searches lambda in 1e-5..1e-3 against a sum of per-task losses of YouTube-8M at 2048-unit
layers; it states neither the initial log alpha nor a rule in N.

lambda 0.03 is the window's middle on both kinds of data: on synthetic-groups (8 tasks in 2
groups, 8 blocks per layer, the battery's width 20, 12 epochs, --threads 1; shared bottom: val
0.844) lambda 1e-3 keeps all 192 gates open (router lr 1e-3 or 1e-2); 0.01 keeps them all open too
(val 0.72 at router lr 1e-2, 0.80 at 3e-3); 0.03 at router lr 0.01 closes 41 of 192 (open
43/48/60 of 64 per layer, task perplexities 3.0-8.0) at val 0.823; 0.1 closes all but two and
falls to chance (val 0.26). On the 3,000-row table below, 0.1 (at the rule's rate 0.032) closes all
48 gates (test 0.39, chance). The initial log alpha stays the router's 3.0 (every gate serving
exactly 1 at the start, the shared network): at 0 (Louizos et al.'s code's half-open start) the
3,000-row table closed all 48 gates (test 0.39/0.39). The router's own defaults are kept (the
golden runs and the measurements in docs/ are made with them).
"""

HARD_CONCRETE_CLOSING_SHARE = 0.5
"""Share of a battery run's batches of table rows within which a gate that the task loss does not
defend could close at Adam's full pace (see :func:`hard_concrete_router_lr`)."""


def hard_concrete_router_lr(train_rows: int, epochs: int, batch_size: int = RunConfig.batch_size) -> float:
    """The hard-concrete router's learning rate for a battery run of ``epochs`` over a table of
    ``train_rows`` training rows (examples) in batches of ``batch_size``: the rate at which a gate
    moving at Adam's full pace would close in :data:`HARD_CONCRETE_CLOSING_SHARE` of the run's
    ``ceil(train_rows / batch_size) * epochs`` batches of rows (two significant digits).

    Why batches: Adam moves a logit by at most about the rate per step, whatever the size of its
    gradient, so a gate starting at log alpha 3.0 needs at least (3.0 + ln 11) / rate = 5.4 / rate
    steps to reach the closed serving value (log alpha <= -ln 11). The battery's fixed 0.01 before
    needs 540: penguins' 20 epochs are 40 batches. In practice a gate drifts slower than that bound
    (the penalty's gradient is 0.01 lambda at log alpha 3.0, the task loss's noise is larger), which
    is why the count is of the table's rows and not of the trainer's steps: a table whose tasks are
    all classes is played as one episode per row and task, T times the steps, and at the trainer's
    step count the 3,000-row table's rate (0.0079, near the old 0.01) kept 47 and 46 of 48 open, while
    the rate of 1/8 of the trainer's steps, which closes gates there, closed nearly every gate of
    synthetic-groups (0.038: 16 and 5 of 192 open, test 0.40/0.32) and of penguins (1.1: test
    0.68/0.67). The count of rows fits all four tables measured, from 247 to 36,000 training rows.

    Measured at lambda 0.03, 20 epochs, --threads 1, test metric of the last epoch, shared bottom
    (default widths) on the same seed; gates open per routed layer fc1/fc2/fc3:

    ======================= ======= ======= ============== ============ =============
    table (training rows)   batches rate    gates open     test         shared bottom
    ======================= ======= ======= ============== ============ =============
    penguins (247)          40      0.27    7/6/7, 7/7/7   0.766, 0.809 0.823, 0.763
                                    (0.01)  all 27, all 27 0.857, 0.856
    3,000-row CSV (2,160)   340     0.032   15/11/13,      0.821, 0.821 0.826, 0.825
                                            14/12/11 of 16
                                    (0.01)  15/16/16,      0.814, 0.820
                                            16/15/15
    synthetic-groups        1,140   0.0095  34/33/40,      0.834, 0.836 0.853, 0.854
    (7,200)                                 33/36/45 of 64
                                    (0.01)  32/31/35,      0.838, 0.836
                                            34/33/42
    50,000-row CSV (36,000) 5,640   0.0019  10/8/8 of 16   0.910        0.908
                                    (0.01)  12/9/8         0.909
    ======================= ======= ======= ============== ============ =============

    These runs were of 20 epochs of 128 rows, before a small table got :data:`MIN_BATCHES`: at the
    penguins' 801 batches of 30 rows the rule gives 0.013, and every gate stayed open in 5 of 5
    seeds (``suites/penguins.toml``, kept in ``results/penguins``; the table flags it). The rule is
    not re-measured at the longer runs.

    Seeds 0, 1 where two numbers are given. Penguins is ``palmerpenguins``' table with the tasks
    species, sex and body_mass_g (a mixed task score: accuracies and 1 - MSE); the CSVs have 16
    normal features and 4 three-class tasks in 2 groups (t0, t1 read one random tanh teacher's 8
    units and t2, t3 another's, each through its own readout, Gumbel noise 0.5). On penguins the
    shared bottom itself is undertrained in 40 batches and the all-open router (a network 3 blocks
    wide) beats it; the rule closes a quarter of the gates and lands at the shared bottom's score.

    Not solved: on a 240-row table of 3 three-class tasks in 2 groups (172 training rows, 8
    normal features, rate 0.27) the rule closed most gates of seeds 0, 1, 2 (test 0.47, 0.56,
    0.33, every gate of seed 2's first two layers) where the router at 0.01 kept all 27 open at
    test 0.83 (seed 0): played as 3 episodes a row, its 100 steps at that rate walk the logits past
    the closing point. The same table with the tasks read as numbers (one row a step, 40 steps)
    closed 2 and 5 of 27 gates. The "every gate stayed open" flag cannot tell an over-closed
    router; the table's verdict against the shared bottom does.
    """
    batches = math.ceil(train_rows / batch_size) * epochs
    closed, _ = HardConcreteGate(1).log_alpha_thresholds()
    rate = (DEFAULT_LOG_ALPHA_INIT - closed) / (HARD_CONCRETE_CLOSING_SHARE * max(batches, 1))
    return float(f"{rate:.2g}")


DEFAULT_EPOCHS = 20
"""The battery's epochs where a table is large enough that they are :data:`MIN_BATCHES` or more."""

MIN_BATCHES = 800
"""Batches of table rows every battery run takes at least, unless ``--epochs`` is given.

Twenty epochs of a 247-row table (the Palmer penguins) are 40 batches of 128: every network stays
far below a linear model (shared bottom test: species 0.82, sex 0.71, body-mass MSE 0.22 against
the linear reference's 0.99, 0.85, 0.21), so a verdict would compare undertrained networks. At 800
batches of 30 rows the shared bottom reaches the linear model (0.99, 0.86, MSE 0.19; 8.5 s a run on
one thread, against 5.9 s for 20 epochs). Tables of 5,120 training rows or more (40 batches of 128 an
epoch) take their 20 epochs as they are."""

MIN_BATCHES_PER_EPOCH = 8
"""A small table is cut into this many batches an epoch at least (batches of at least
:data:`MIN_BATCH_SIZE` rows), so that its epochs are steps, not one or two."""

MIN_BATCH_SIZE = 16


def training_length(train_rows: int, epochs: int | None) -> tuple[int, int]:
    """The batch size and epochs of a battery over ``train_rows`` training rows: the trainer's batch
    size unless the table is smaller than :data:`MIN_BATCHES_PER_EPOCH` of them, and ``epochs`` as
    given, else :data:`DEFAULT_EPOCHS` or as many more as :data:`MIN_BATCHES` need."""
    batch = RunConfig.batch_size
    if train_rows < MIN_BATCHES_PER_EPOCH * batch:
        batch = max(MIN_BATCH_SIZE, train_rows // MIN_BATCHES_PER_EPOCH)
    if epochs is None:
        epochs = max(DEFAULT_EPOCHS, math.ceil(MIN_BATCHES / math.ceil(train_rows / batch)))
    return batch, epochs


def training_rows(family: Any) -> int:
    """The table's training rows (examples): a file table's own count of rows where it states one
    (a table of class tasks is played as one episode per row and task), else the training split's."""
    rows = (getattr(family.data, "info", None) or {}).get("rows") or {}
    return int(rows.get("train") or len(family.data.train))


WPL_ROUTER_LR = 0.03
"""The battery's WPL router rate. Measured on synthetic-groups as above: at WPL's default 0.1 the
policies of a whole layer are deterministic after epoch 1 (fc3: every task at perplexity 1.00; fc1
up to 1.99); at 0.03 every task still explores after epoch 1 (perplexity 1.16-4.10) and all have
converged (1.00) by epoch 12, val 0.819; 0.01 has not converged by epoch 12 (perplexity up to 3.6,
val 0.52) and 0.003 has not started (val 0.30). WPL's default stays 0.1: the kept Table 2 trials use it."""

REINFORCE_ROUTER_LR = 0.1
"""The battery's REINFORCE router rate. Measured as above: at its default 0.3 the policies are
nearly deterministic after epoch 1 (perplexity from 1.26), val 0.799; at 0.1 they explore after
epoch 1 (3.3-7.5) and converge by epoch 12 (1.01-1.10), val 0.809; 0.03 has not converged by epoch
12 (val 0.40)."""

ROUTERS: dict[str, dict[str, Any]] = {
    "shared-bottom": {"agent": "shared-bottom", "routed": "none"},
    "no-sharing": {"agent": "no-sharing", "routed": "all"},
    "fixed-random": {"agent": "fixed-random"},
    "wpl": {"agent": "wpl", "router_lr": WPL_ROUTER_LR},
    "reinforce": {"agent": "reinforce", "router_lr": REINFORCE_ROUTER_LR},
    "hard-concrete": {"agent": "hard-concrete", "agent_options": {"l0_lambda": HARD_CONCRETE_L0_LAMBDA}},
}
"""The battery's routers, their routed layers (the others route the FC layers, the default) and
the router settings at which each routes within the battery's epochs (measured above); the
hard-concrete router's rate depends on the table's size (:func:`hard_concrete_router_lr`)."""

MODELS = {"snr-trans": ("hidden_sizes", 0, {"hidden_sizes": [64, 32]}), "mmoe": ("shared_hidden", -1, {})}
"""The battery's models: the size argument matched to the shared bottom (and its entry), other sizes."""


BATTERY_METHODS = len(ROUTERS) + len(MODELS)
"""How many methods the battery compares (each over every seed)."""


def shared_bottom_parameters(input_shape: tuple[int, ...], head_sizes: list[int], config: RunConfig) -> int:
    """Trainable parameters of the shared-bottom routed network (no routed layer) the trainer builds."""
    specs = build_layer_specs(input_shape, "none", config.blocks or len(head_sizes), None,
                              head_outputs=head_sizes[0] if len(set(head_sizes)) == 1 else None,
                              hidden=config.hidden, filters=config.filters, fc_layers=config.fc_layers)  # fmt: skip
    return count_parameters(specs, input_shape, len(head_sizes), head_sizes)


def matched_models(input_shape: tuple[int, ...], head_sizes: list[int], target: int) -> dict[str, dict[str, Any]]:
    """Each model's options with its size matched to ``target`` trainable parameters."""
    input_dim = int(np.prod(input_shape))
    out = {}
    for name, (vary, position, sizes) in MODELS.items():
        size = match_hidden_size(agent_class(name), target, input_dim, head_sizes, vary=vary, position=position, **sizes)
        options = dict(sizes)
        if isinstance(options.get(vary), list):
            options[vary] = [size if i == position else v for i, v in enumerate(options[vary])]
        else:
            options[vary] = size
        out[name] = options
    return out


def sized_routers(input_shape: tuple[int, ...], head_sizes: list[int], target: int) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Each router's run options with its widths matched to ``target``, and its trainable parameters
    (the shared bottom keeps the default widths: it is the baseline the others are sized to)."""
    runs: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for run, options in ROUTERS.items():
        runs[run] = dict(options)
        if run == BASELINE:
            counts[run] = target
            continue
        width, counts[run] = router_widths(options, input_shape, head_sizes, target, RunConfig())
        runs[run].update(width)
    return runs, counts


def battery(env: str, env_options: dict[str, Any], name: str, seeds: int, epochs: int | None,
            sizes: tuple[tuple[int, ...], list[int]], train_rows: int) -> tuple[dict[str, Any], dict[str, int]]:  # fmt: skip
    """The suite file's contents (as TOML tables) for data of input shape and head sizes ``sizes``
    with ``train_rows`` training rows, and each method's trainable parameters (the baseline's first).
    ``epochs`` None: chosen by :func:`training_length`."""
    batch_size, epochs = training_length(train_rows, epochs)
    input_shape, head_sizes = sizes
    target = shared_bottom_parameters(input_shape, head_sizes, RunConfig())
    runs, counts = sized_routers(input_shape, head_sizes, target)
    runs["hard-concrete"] = {"agent": "hard-concrete", "router_lr": hard_concrete_router_lr(train_rows, epochs, batch_size),
                             **{k: v for k, v in runs["hard-concrete"].items() if k != "agent"}}  # fmt: skip
    input_dim = int(np.prod(input_shape))
    for model, options in matched_models(input_shape, head_sizes, target).items():
        runs[model] = {"agent": model, "agent_options": options}
        counts[model] = train_parameter_count(agent_class(model), input_dim, head_sizes, **options)
    contents = {
        "suite": {"name": name, "seeds": list(range(seeds)), "baseline": BASELINE},
        "defaults": {"env": env, "env_options": env_options, "epochs": epochs,
                     **({"batch_size": batch_size} if batch_size != RunConfig.batch_size else {})},
        "runs": runs,
        "scales": {"quick": {"epochs": 1, "seeds": [0, 1]}},
    }
    return contents, counts


def header(command: str, counts: dict[str, int], out: Path) -> str:
    """The comment that opens the suite file: how it was made, how to run it and each method's size."""
    target = counts[BASELINE]
    sized = "\n".join(f"#   {run:<14} {n:>10,}  ({(n - target) / target:+.1%})" for run, n in counts.items() if run != BASELINE)
    return (
        f"# The standard battery: does learned routing beat the shared bottom on this data?\n"
        f"# Written by: {command}\n#\n"
        f"#   routing-rl suite run {out}\n"
        f"#   routing-rl suite table {out}      # t-tests against the shared bottom, one verdict per method\n"
        f"#   routing-rl report runs/suite-<name>   # figures\n#\n"
        f"# Trainable parameters (as the trainer counts them, a router's gates and tables included):\n"
        f"#   {BASELINE:<14} {target:>10,}  (the baseline, default widths)\n{sized}\n"
        f"# Every other method is sized to the shared bottom: the models' widths, the routers' hidden (and\n"
        f"# filters where conv layers are routed), each the value whose count is closest.\n\n"
    )


def hard_concrete_note(train_rows: int, epochs: int, rate: float, batch_size: int = RunConfig.batch_size) -> str:
    """The header's lines on the hard-concrete router's rate: the batches it was chosen from."""
    per_epoch = math.ceil(train_rows / batch_size)
    return (
        f"# hard-concrete: router_lr {rate:g}, at which a gate could close within half of the run's {per_epoch * epochs:,}\n"
        f"# batches of rows ({train_rows:,} training rows / {batch_size} x {epochs} epochs); "
        f"l0_lambda {HARD_CONCRETE_L0_LAMBDA:g}.\n\n"
    )


def write_battery(suite_cls: type[Suite], env_options: dict[str, Any], out: Path, name: str | None, seeds: int, epochs: int | None,
                  command: str, verify: Callable[[Path], None]) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Load the data of ``suite_cls`` (checking it), size the battery from it and write the suite file
    ``out``: written to a temporary file that ``verify`` reads first, so a file that would not
    parse never replaces ``out`` (nor is left behind)."""
    import tomli_w

    from routing_rl.data import load_from
    from routing_rl.training.records.io import write_text
    from routing_rl.data.families import task_family

    env = suite_cls.name
    folder = out.resolve().parent if suite_cls.path_options else None  # its data files are named relative to the suite file
    family = task_family(load_from(suite_cls(**env_options), env, folder, 0, RunConfig.val_fraction))
    sizes = (tuple(family.input_shape), list(family.head_sizes))
    suite_name = name or out.stem
    try:
        contents, counts = battery(env, env_options, suite_name, seeds, epochs, sizes, training_rows(family))
    except InputShapeError as exc:  # the routers' network cannot take these inputs: name the file (or suite)
        info = getattr(family.data, "info", None) or {}
        raise InputShapeError(f"{info.get('file') or env}: {exc}") from None
    defaults = contents["defaults"]
    note = hard_concrete_note(training_rows(family), defaults["epochs"], contents["runs"]["hard-concrete"]["router_lr"],
                              defaults.get("batch_size", RunConfig.batch_size))  # fmt: skip
    write_text(out, header(command, counts, out).rstrip("\n") + "\n" + note + "\n" + tomli_w.dumps(contents), verify)
    return out, {"family": family.name, "metric": family.metric, "parameters": counts, "epochs": defaults["epochs"],
                 "batch_size": defaults.get("batch_size", RunConfig.batch_size),
                 "data": data_summary(getattr(family.data, "info", None) or {})}  # fmt: skip
