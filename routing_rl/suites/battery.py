"""``routing-rl suite init``: the standard battery for "does learned routing beat simple sharing here?".

One command writes a suite file for any ``--env`` (a user's file through ``--env files`` above
all): the shared bottom (the baseline every verdict is against), no sharing, fixed random routes,
the learned routers WPL, REINFORCE and hard-concrete, and the multi-task models SNR-Trans and
MMoE, each over the same seeds. The data are loaded first, which checks them (a bad file fails
here, before any run) and sizes the networks from them: the routed network is the conv stack for
image inputs and FC blocks for vectors (the trainer's own choice), and the two models' widths are
chosen by :func:`~routing_rl.models.sizing.match_hidden_size` so that each has about as many
trainable parameters as the shared bottom, so a verdict compares ways of sharing, not sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from routing_rl.data import Suite
from routing_rl.data.summary import data_summary
from routing_rl.models.sizing import match_hidden_size, train_parameter_count
from routing_rl.network.spec import InputShapeError, build_layer_specs, count_parameters
from routing_rl.training.setup.config import RunConfig

BASELINE = "shared-bottom"

ROUTERS: dict[str, dict[str, Any]] = {
    "shared-bottom": {"agent": "shared-bottom", "routed": "none"},
    "no-sharing": {"agent": "no-sharing", "routed": "all"},
    "fixed-random": {"agent": "fixed-random"},
    "wpl": {"agent": "wpl"},
    "reinforce": {"agent": "reinforce"},
    "hard-concrete": {"agent": "hard-concrete"},
}
"""The battery's routers and their routed layers (the others route the FC layers, the default)."""

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
    from routing_rl.training.setup.composition import agent_class

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


def battery(env: str, env_options: dict[str, Any], name: str, seeds: int, epochs: int, sizes: tuple[tuple[int, ...], list[int]]) -> dict[str, Any]:
    """The suite file's contents (as TOML tables) for data of input shape and head sizes ``sizes``."""
    input_shape, head_sizes = sizes
    target = shared_bottom_parameters(input_shape, head_sizes, RunConfig())
    runs: dict[str, dict[str, Any]] = {run: dict(options) for run, options in ROUTERS.items()}
    for model, options in matched_models(input_shape, head_sizes, target).items():
        runs[model] = {"agent": model, "agent_options": options}
    return {
        "suite": {"name": name, "seeds": list(range(seeds)), "baseline": BASELINE},
        "defaults": {"env": env, "env_options": env_options, "epochs": epochs},
        "runs": runs,
        "scales": {"quick": {"epochs": 1, "seeds": [0, 1]}},
    }


def header(command: str, target: int, sizes: dict[str, int], out: Path) -> str:
    """The comment that opens the suite file: how it was made and how to run it."""
    counts = ", ".join(f"{run} {n:,}" for run, n in sizes.items())
    return (
        f"# The standard battery: does learned routing beat the shared bottom on this data?\n"
        f"# Written by: {command}\n#\n"
        f"#   routing-rl suite run {out}\n"
        f"#   routing-rl suite table {out}      # t-tests against the shared bottom, one verdict per method\n"
        f"#   routing-rl report runs/suite-<name>   # figures\n#\n"
        f"# Trainable parameters: shared bottom {target:,}; models matched to it: {counts}.\n"
        f"# The routers' networks have the shared bottom's layers, with every routed layer's blocks in addition.\n\n"
    )


def write_battery(suite_cls: type[Suite], env_options: dict[str, Any], out: Path, name: str | None, seeds: int, epochs: int,
                  command: str, verify: Callable[[Path], None]) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Load the data of ``suite_cls`` (checking it), size the battery from it and write the suite file
    ``out``: written to a temporary file that ``verify`` reads first, so a file that would not
    parse never replaces ``out`` (nor is left behind)."""
    import tomli_w

    from routing_rl.data import load_from
    from routing_rl.training.records.io import write_text
    from routing_rl.training.setup.composition import agent_class
    from routing_rl.data.families import task_family

    env = suite_cls.name
    folder = out.resolve().parent if suite_cls.path_options else None  # its data files are named relative to the suite file
    family = task_family(load_from(suite_cls(**env_options), env, folder, 0, RunConfig.val_fraction))
    sizes = (tuple(family.input_shape), list(family.head_sizes))
    suite_name = name or out.stem
    try:
        contents = battery(env, env_options, suite_name, seeds, epochs, sizes)
    except InputShapeError as exc:  # the routers' network cannot take these inputs: name the file (or suite)
        info = getattr(family.data, "info", None) or {}
        raise InputShapeError(f"{info.get('file') or env}: {exc}") from None
    target = shared_bottom_parameters(*sizes, RunConfig())
    input_dim = int(np.prod(sizes[0]))
    counts = {run: train_parameter_count(agent_class(run), input_dim, sizes[1], **contents["runs"][run]["agent_options"]) for run in MODELS}
    write_text(out, header(command, target, counts, out) + tomli_w.dumps(contents), verify)
    return out, {"family": family.name, "metric": family.metric, "shared_bottom": target, **counts,
                 "data": data_summary(getattr(family.data, "info", None) or {})}  # fmt: skip
