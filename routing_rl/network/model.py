"""The routed multi-task network: a stack of shared, routed and per-task layers plus task heads.

The network is split at its routed layers into segments so that a routing episode can advance
one routed layer per step (``begin`` then ``advance`` once per routed layer); ``forward`` runs the
whole stack for callers that already hold every decision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from routing_rl.network.linear_bank import BANK_MIN_BLOCKS
from routing_rl.network.routed_layer import RoutedLayer, dispatch
from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.spec import CONV_POOL, LayerSpec


def make_block(spec: LayerSpec, in_features: int) -> nn.Module:
    """One function block: conv (3x3, BatchNorm, ReLU, 2x2 max-pool), FC (linear, ReLU) or head (linear).

    The max-pool is not in the Re-examining paper's text (section 3.2 lists 3x3 convolution, 32
    filters, BatchNorm and ReLU); it is kept because without it the first FC layer would read
    32 x 28 x 28 = 25,088 features (Fashion-MNIST; 32,768 on CIFAR) and hold 1.6M (2.1M) of the
    network's parameters per block, ten blocks per routed layer: a network that the paper's
    "64 hidden units" reading, its parameter budget and this machine do not suggest. With the pool
    the conv stack ends at 32 x 3 x 3 (Fashion-MNIST) or 32 x 4 x 4 (CIFAR) features, as in the
    original routing networks' CIFAR model (convolutions with pooling, then routed FC layers).
    """
    if spec.kind == "head":
        return nn.Linear(in_features, spec.width)
    if spec.kind == "conv":
        return nn.Sequential(
            nn.Conv2d(in_features, spec.width, kernel_size=3, padding=1),
            nn.BatchNorm2d(spec.width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(CONV_POOL),
        )
    return nn.Sequential(nn.Linear(in_features, spec.width), nn.ReLU(inplace=True))


class PaddedLinear(nn.Linear):
    """A task head with ``out_features`` real outputs padded with zeros to ``width`` columns.

    Multi-label tasks have different numbers of labels; padding every head to the widest keeps the
    heads' outputs stackable by the dispatcher while each head has exactly its task's parameters.
    """

    def __init__(self, in_features: int, out_features: int, width: int) -> None:
        super().__init__(in_features, out_features)
        self.padding = width - out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(super().forward(x), (0, self.padding))


def make_head(in_features: int, out_features: int, width: int) -> nn.Linear:
    """A plain linear head, or a :class:`PaddedLinear` one where the task has fewer outputs than ``width``."""
    if out_features == width:
        return nn.Linear(in_features, out_features)
    return PaddedLinear(in_features, out_features, width)


class NetworkLayer(nn.Module):
    """A layer in one of the three sharing modes; non-routed modes decide their own blocks."""

    def __init__(self, spec: LayerSpec, in_features: int, num_tasks: int, bank_min_blocks: int = BANK_MIN_BLOCKS) -> None:
        super().__init__()
        self.spec = spec
        self.flatten_input = spec.kind != "conv"
        n_blocks = {"shared": 1, "routed": spec.blocks, "per-task": num_tasks}[spec.mode]
        self.layer = RoutedLayer([make_block(spec, in_features) for _ in range(n_blocks)], bank_min_blocks)

    def forward(self, x: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision | None = None) -> torch.Tensor:
        if self.flatten_input and x.dim() > 2:
            x = x.flatten(1)
        if self.spec.mode == "shared":
            return self.layer.blocks[0](x)
        if self.spec.mode == "per-task":
            return dispatch(self.layer.blocks, x, RoutingDecision(tasks))
        if decision is None:
            raise ValueError(f"routed layer {self.spec.name} needs a routing decision")
        return self.layer(x, decision)


class RoutingSteps:
    """A network walked one routed layer at a time: ``begin`` runs the layers before the first routed
    layer, each ``advance`` one routed layer and the plain layers after it, the last one the heads.
    The routed network and a population of them (:mod:`routing_rl.network.population`) share the
    walk; each says how it runs a stretch of plain layers, a routed layer and the heads."""

    layers: Sequence[object]
    routed_positions: list[int]

    def _run(self, start: int, stop: int, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _routed(self, position: int, h: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        raise NotImplementedError

    def _head(self, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def num_routed(self) -> int:
        return len(self.routed_positions)

    def begin(self, x: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        """Run the layers before the first routed layer (all layers and the heads if none is routed)."""
        if not self.routed_positions:
            return self._head(self._run(0, len(self.layers), x, tasks), tasks)
        return self._run(0, self.routed_positions[0], x, tasks)

    def advance(self, depth: int, h: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        """Apply routed layer ``depth`` and the non-routed layers after it; the last step returns logits."""
        pos = self.routed_positions[depth]
        h = self._routed(pos, h, tasks, decision)
        last = depth == self.num_routed - 1
        stop = len(self.layers) if last else self.routed_positions[depth + 1]
        h = self._run(pos + 1, stop, h, tasks)
        return self._head(h, tasks) if last else h


class RoutingNetwork(RoutingSteps, nn.Module):
    """Layers from a spec, then one linear head per task.

    ``num_classes`` is the outputs of every head, or one count per task (multi-label tasks with
    different label counts); heads are zero-padded to the widest. A routed ``head`` spec (last)
    replaces the per-task heads: its blocks output the classes and the router picks one per task.
    Layers of ``bank_min_blocks`` or more plain linear blocks keep them as a bank (same numbers, fewer tensors).

    ``dropout``: the probability of zeroing each output of every layer below the heads while
    training ("we use dropout in all layers and test the fraction from 0.0 to 0.9", Re-examining
    paper, section 3.2; it chose none, the default). It is applied to a layer's output rather than
    inside the blocks, so that the blocks stay plain and the batched dispatch paths still apply;
    elementwise dropout after a block's ReLU is the same either way. The mask comes from torch's
    global generator, which the trainer seeds at every epoch.
    """

    def __init__(
        self,
        specs: Sequence[LayerSpec],
        input_shape: Sequence[int],
        num_tasks: int,
        num_classes: int | Sequence[int],
        bank_min_blocks: int = BANK_MIN_BLOCKS,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.specs = list(specs)
        self.input_shape = tuple(input_shape)
        self.num_tasks = num_tasks
        self.head_sizes = [int(num_classes)] * num_tasks if isinstance(num_classes, int) else [int(c) for c in num_classes]
        if len(self.head_sizes) != num_tasks:
            raise ValueError(f"need one head size per task: {len(self.head_sizes)} sizes for {num_tasks} tasks")
        self.num_classes = max(self.head_sizes)
        layers: list[NetworkLayer] = []
        shape = list(input_shape)
        self.routed_input_dims: list[int] = []
        for spec in self.specs:
            if spec.kind == "conv":
                if len(shape) != 3:
                    raise ValueError(f"conv layer {spec.name} needs image inputs [C, H, W], got {shape}")
                in_features = shape[0]
                out_shape = [spec.width, shape[1] // CONV_POOL, shape[2] // CONV_POOL]
            else:
                in_features = int(torch.tensor(shape).prod())
                out_shape = [spec.width]
            if spec.mode == "routed":
                self.routed_input_dims.append(shape[0])
            layers.append(NetworkLayer(spec, in_features, num_tasks, bank_min_blocks))
            shape = out_shape
        self.layers = nn.ModuleList(layers)
        self.feature_dim = int(torch.tensor(shape).prod())
        self.head_routed = bool(self.specs) and self.specs[-1].kind == "head"
        if self.head_routed and (len(set(self.head_sizes)) != 1 or self.specs[-1].width != self.num_classes):
            raise ValueError(f"a routed head needs {self.specs[-1].width} outputs for every task, got {self.head_sizes}")
        heads = [] if self.head_routed else [make_head(self.feature_dim, c, self.num_classes) for c in self.head_sizes]
        self.heads = RoutedLayer(heads, bank_min_blocks)
        self.routed_positions = [i for i, s in enumerate(self.specs) if s.mode == "routed"]
        self.blocks_per_layer = [self.specs[i].blocks for i in self.routed_positions]

    @property
    def routed_layer_names(self) -> list[str]:
        return [self.specs[i].name for i in self.routed_positions]

    def _drop(self, h: torch.Tensor) -> torch.Tensor:
        """A layer's output with dropout applied (training only, and only if ``dropout`` > 0)."""
        return nn.functional.dropout(h, self.dropout, self.training) if self.dropout > 0 else h

    def _run(self, start: int, stop: int, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[start:stop]:
            h = self._drop(layer(h, tasks))
        return h

    def _head(self, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        if self.head_routed:
            return h  # the routed head layer already gave the class outputs
        return dispatch(self.heads.blocks, h.flatten(1), RoutingDecision(tasks))

    def _routed(self, position: int, h: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        return self._drop(self.layers[position](h, tasks, decision))

    def forward(
        self, x: torch.Tensor, tasks: torch.Tensor, decisions: Sequence[RoutingDecision] = ()
    ) -> torch.Tensor:
        if len(decisions) != self.num_routed:
            raise ValueError(f"expected {self.num_routed} routing decisions, got {len(decisions)}")
        h = self.begin(x, tasks)
        for depth, decision in enumerate(decisions):
            h = self.advance(depth, h, tasks, decision)
        return h
