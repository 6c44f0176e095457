"""Named protocols of the papers: ``--preset NAME`` (or ``preset = "NAME"`` in a suite) sets every
option the paper fixes, and options given explicitly still win.

A preset is plain data, stored in the run's config by name, so results say which protocol they
followed. The Re-examining paper's protocol (section 3.2): 3 conv layers of 32 filters (3x3,
BatchNorm, ReLU) and 3 FC layers, the final layer unshared per task; separate Adam optimizers with
learning rates 1.5e-4 (weights) and 2e-2 (router); no dropout;
50 epochs on Fashion-MNIST, 200 on CIFAR-100; random crop, rotation and horizontal flip for every
method.

"3 conv + 3 FC layers, the final layer unshared" cannot hold together with "three routing layers"
(Figure 1: the earliest, second and third FC layers each have a routing policy) if the final layer
is one of the three FC layers, unshared. The presets read it as conv1-conv3, then fc1-fc3 of 64
units (the routed layers: three routing policies as in Figure 1, and the (blocks)^3 routes per task
of section 4.2), then one linear head per task (the unshared final layer): every property but the
count of six components. The other reading, six components with the task-facing layer routed as in
Rosenbaum et al.'s model, is ``--fc-layers 2 --routed fc,head`` (its baselines then keep per-task
heads with ``--routed fc``). The paper does not say where its validation data comes from; here it is
10% of each task's training rows (``--val-fraction 0.1``), taken out of the paper's training rows, so
every method trains on 90% of them; the test set is the official one. "No dropout" is the default
``--dropout 0`` (the paper swept 0-0.9).

A preset also names the paper's learner for an agent (``Preset.learners``): ``--agent wpl
--preset reexamining-fmnist`` trains the learner of the paper's "separate optimizers" row and of
every learned row after it, the public code with the paper's fix and a softmax policy layer
(section 3.3), not this project's own WPL. The learner is one unit: it applies when the given
``-o`` options set none of its keys (``-o variant=wpl`` gives this project's WPL under the
paper's protocol, ``-o variant=public-code`` the shipped learner with its table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class PresetError(ValueError):
    """An unknown preset, or options that contradict it."""


@dataclass(frozen=True)
class Preset:
    """A paper's protocol: ``options`` are RunConfig fields (``env_options`` merge under ``-e``)."""

    name: str
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    learners: dict[str, dict[str, Any]] = field(default_factory=dict)
    """agent name -> the ``-o`` options of the paper's learner under that name."""


REEXAMINING_COMMON: dict[str, Any] = {
    "optimizer": "adam",
    "separate_optimizers": True,
    "lr": 1.5e-4,
    "router_lr": 2e-2,
    "batch_size": 128,
    "fc_layers": 3,
    "val_fraction": 0.1,
}

REEXAMINING_LEARNERS: dict[str, dict[str, Any]] = {"wpl": {"variant": "public-code-corrected", "parameterization": "softmax"}}
"""The Re-examining paper's learned rows from "separate optimizers" on: the corrected public code
with a softmax policy layer (section 3.3)."""

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "reexamining-fmnist",
            "Re-examining paper, Fashion-MNIST: Adam 1.5e-4 / router 2e-2 (separate), 3 FC layers, augmentation, 50 epochs",
            {**REEXAMINING_COMMON, "env": "fmnist-mtl", "epochs": 50, "env_options": {"augment": True}},
            REEXAMINING_LEARNERS,
        ),
        Preset(
            "reexamining-cifar100",
            "Re-examining paper, CIFAR-100 superclasses: Adam 1.5e-4 / router 2e-2 (separate), 3 FC layers, augmentation, 200 epochs",
            {**REEXAMINING_COMMON, "env": "cifar100-superclass", "epochs": 200, "env_options": {"augment": True}},
            REEXAMINING_LEARNERS,
        ),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; valid choices: {', '.join(PRESETS)}")
    return PRESETS[name]


def apply_preset(name: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (RunConfig fields set explicitly) over the preset's options; ``env_options`` merge.

    A preset fixes its suite: an explicit different ``env`` is refused rather than silently
    training another data set under the paper's name.
    """
    if name is None:
        return dict(given)
    preset = get_preset(name)
    env = preset.options.get("env")
    if env is not None and given.get("env", env) != env:
        raise PresetError(f"--preset {name} is the protocol for --env {env}; drop --env {given['env']} or the preset")
    merged = {**preset.options, **given, "preset": name}
    merged["env_options"] = {**preset.options.get("env_options", {}), **given.get("env_options", {})}
    learner = preset.learners.get(merged.get("agent", ""), {})
    agent_options = dict(given.get("agent_options", {}))
    if learner and not set(learner) & set(agent_options):
        merged["agent_options"] = {**learner, **agent_options}
    return merged
