"""Layer specifications: which layers a network has and how each is shared across tasks.

A network is a stack of named layers (``conv1..conv3`` then ``fc1..``), each *shared* (one block
for all tasks), *routed* (M function blocks, a router picks one per sample) or *per-task* (one
block per task), and then the task-facing layer ``head``: one linear head per task by default, or
routed like the last layer of the original routing networks (Rosenbaum et al. 2018), whose routed
FC layers end in the class outputs. The spec is plain data so that it can be printed, stored in
results and compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

LayerKind = Literal["conv", "fc", "head"]
HEAD = "head"
"""Name of the task-facing layer in ``--routed``; never included by ``all`` or ``fc``."""
LayerMode = Literal["shared", "routed", "per-task"]
LAYER_MODES: tuple[str, ...] = ("shared", "routed", "per-task")

CONV_POOL = 2
"""Side of each conv block's max-pool window (and its stride): a block divides the image's height
and width by it, rounding down. The blocks (:func:`routing_rl.network.model.make_block`), the
parameter count and the smallest image a network accepts all read it from here, so they cannot
disagree."""


class SpecError(ValueError):
    """A layer spec that cannot be built; the message lists the valid layer names."""


class InputShapeError(SpecError):
    """The data's inputs cannot enter the network (images with no channel, or that the conv blocks
    would pool below one pixel); the learner that builds the network puts the data's source in front."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``kind`` conv (3x3 conv, BatchNorm, ReLU, 2x2 max-pool), fc (linear, ReLU) or head
    (linear to the class outputs, no activation: a routed task-facing layer)."""

    name: str
    kind: LayerKind
    width: int
    mode: LayerMode = "shared"
    blocks: int = 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def smallest_image_side(conv_layers: int) -> int:
    """The smallest height and width an image may have for ``conv_layers`` conv blocks.

    Each block's max-pool divides the side by :data:`CONV_POOL`, rounding down, and a pool over
    less than one window leaves no pixel (torch stops with a RuntimeError deep in the forward
    pass); the side must still be at least one pixel after the last block.
    """
    return CONV_POOL**conv_layers


def require_image_size(input_shape: Sequence[int], conv_layers: int) -> None:
    """Refuse images that the conv blocks would pool below one pixel, or that have no channel.

    Checked when the specs are built, before any weight exists, so every suite (a user's ``.npz``
    of tiny images included) meets a one-line error instead of torch's traceback mid-run.
    """
    if len(input_shape) != 3 or conv_layers < 1:
        return
    channels, height, width = (int(v) for v in input_shape)
    if channels < 1:
        raise InputShapeError(f"the input images have {channels} channels; give images of at least one channel (N x C x H x W with C >= 1)")
    side = smallest_image_side(conv_layers)
    if height < side or width < side:
        raise InputShapeError(
            f"the input images are {height} x {width} pixels, too small for the network's {conv_layers} conv layers: each "
            f"max-pools by {CONV_POOL}, so images need at least {side} x {side} pixels; give larger images, or the inputs as N x D vectors"
        )


def default_layer_names(input_shape: Sequence[int], conv_layers: int = 3, fc_layers: int | None = None) -> list[str]:
    """Layer names of the paper's network for this input: conv layers only for image inputs.

    ``fc_layers`` hidden FC layers follow (default 2 after conv layers, 3 for vector inputs).
    """
    convs = [f"conv{i + 1}" for i in range(conv_layers)] if len(input_shape) == 3 else []
    n_fc = fc_layers if fc_layers is not None else (2 if convs else 3)
    if n_fc < 0:
        raise SpecError(f"--fc-layers must be at least 0, got {n_fc}")
    return convs + [f"fc{i + 1}" for i in range(n_fc)]


def parse_routed(value: str | Iterable[str] | None, layer_names: Sequence[str]) -> list[str]:
    """Resolve ``--routed`` into layer names.

    Accepts ``none``, ``all``, ``fc`` / ``conv`` (every layer of that kind), layer names
    (``conv1,fc2``) and the short forms ``1,2,3`` after ``conv`` (``conv1,2,3`` means conv1-conv3).
    ``head`` (the task-facing layer) is accepted where ``layer_names`` lists it, and only by name.
    """
    if value is None:
        return []
    tokens = [t.strip() for t in (value.split(",") if isinstance(value, str) else value) if t.strip()]
    chosen: list[str] = []
    known, taken = set(layer_names), set()  # sets: a network of many layers is checked in linear time
    last_prefix = ""
    for token in tokens:
        if token == "none":
            continue
        if token == "all":
            matches = [n for n in layer_names if n != HEAD]
        elif token in ("fc", "conv"):
            matches = [n for n in layer_names if n.startswith(token)]
            if not matches:
                others = ", ".join(n for n in layer_names if n != HEAD) or "none but the head"
                also = ", head" if HEAD in layer_names else ""
                raise SpecError(f"--routed {token}: this network has no {token} layers (its layers: {others}); route other layers{also} or none")
        elif token.isdigit() and last_prefix:
            matches = [last_prefix + token]
        else:
            matches = [token]
            last_prefix = token.rstrip("0123456789")
        for name in matches:
            if name not in known:
                shown = ", ".join(layer_names[:12]) + (f", ... ({len(layer_names)} layers)" if len(layer_names) > 12 else "")
                raise SpecError(f"unknown layer {name!r} in --routed; valid: none, all, fc, conv, {shown}")
            if name in taken:
                raise SpecError(f"--routed {value if isinstance(value, str) else ','.join(value)!r} names {name} twice; list each layer once")
            taken.add(name)
            chosen.append(name)
    return [n for n in layer_names if n in taken]


def count_parameters(specs: Sequence[LayerSpec], input_shape: Sequence[int], num_tasks: int, head_sizes: Sequence[int]) -> int:
    """Parameters of the network these specs build (blocks of every layer and the task heads),
    computed without allocating it: used to refuse sizes that cannot fit in memory up front."""
    shape = list(input_shape)
    total = 0
    for spec in specs:
        copies = {"shared": 1, "routed": spec.blocks, "per-task": num_tasks}[spec.mode]
        if spec.kind == "conv" and len(shape) == 3:
            total += copies * (shape[0] * 9 * spec.width + spec.width + 2 * spec.width)  # conv, bias, BatchNorm
            shape = [spec.width, shape[1] // CONV_POOL, shape[2] // CONV_POOL]
        else:  # fc, or a routed head (linear to the class outputs)
            total += copies * (math.prod(shape) * spec.width + spec.width)
            shape = [spec.width]
    if specs and specs[-1].kind == HEAD:
        return total  # the routed head replaces the per-task heads
    return total + sum(math.prod(shape) * c + c for c in head_sizes)


def build_layer_specs(
    input_shape: Sequence[int],
    routed: str | Iterable[str] | None = None,
    blocks: int = 1,
    per_task: str | Iterable[str] | None = None,
    conv_layers: int = 3,
    fc_layers: int | None = None,
    filters: int = 32,
    hidden: int = 64,
    head_outputs: int | None = None,
) -> list[LayerSpec]:
    """The paper's network (3 conv layers of 32 filters, FC layers of 64 units) as a spec.

    Vector inputs get one more FC layer instead of the conv layers. ``routed`` layers get
    ``blocks`` function blocks each; ``per_task`` layers get one block per task. ``head`` in
    ``routed`` routes the task-facing layer (``head_outputs`` outputs per block, the same for every
    task) and appends it as the last spec; otherwise each task gets its own linear head.
    """
    names = default_layer_names(input_shape, conv_layers, fc_layers)
    require_image_size(input_shape, conv_layers)
    routed_names = parse_routed(routed, [*names, HEAD])
    per_task_names = parse_routed(per_task, names)
    route_head = HEAD in routed_names
    routed_names = [n for n in routed_names if n != HEAD]
    if route_head and head_outputs is None:
        raise SpecError("a routed head needs the same number of outputs for every task")
    overlap = set(routed_names) & set(per_task_names)
    if overlap:
        raise SpecError(f"layers cannot be both routed and per-task: {', '.join(sorted(overlap))}")
    if (routed_names or route_head) and blocks < 1:
        raise SpecError(f"--blocks must be at least 1, got {blocks}")
    specs = []
    for name in names:
        kind: LayerKind = "conv" if name.startswith("conv") else "fc"
        width = filters if kind == "conv" else hidden
        if name in routed_names:
            specs.append(LayerSpec(name, kind, width, "routed", blocks))
        elif name in per_task_names:
            specs.append(LayerSpec(name, kind, width, "per-task"))
        else:
            specs.append(LayerSpec(name, kind, width, "shared"))
    if route_head:
        specs.append(LayerSpec(HEAD, HEAD, int(head_outputs), "routed", blocks))
    return specs
