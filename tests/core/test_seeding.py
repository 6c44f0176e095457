"""One home for every random stream (``routing_rl.core.seeding``).

The derivations must give the numbers the project first wrote, bit for bit (every recorded run and
the golden runs depend on them), so each is compared here with its old formula written out. The
static check keeps the home single: a module that builds a generator itself, or seeds one with
arithmetic or a literal, fails it.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from routing_rl.core.seeding import (
    DataStream,
    EpochStream,
    epoch_generator,
    epoch_seed,
    numpy_rng,
    numpy_rngs,
    seeded_weights,
    torch_generator,
)

PACKAGE = Path(__file__).resolve().parents[2] / "routing_rl"
SEEDING_MODULE = "routing_rl.core.seeding"
SEEDING = PACKAGE / "core" / "seeding.py"

SEEDS = [0, 1, 2, 7, 12_345, 2**31 - 1]
EPOCHS = [0, 1, 2, 3, 50, 999]


def old_epoch_seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + stream * 104_729) % (2**63 - 1)


def draws(generator: torch.Generator) -> list[float]:
    return torch.rand(8, generator=generator).tolist()


def numpy_draws(rng: np.random.Generator) -> list[int]:
    return rng.integers(0, 2**62, size=8).tolist()


# ---- the derivations are the old formulas --------------------------------------------------------
def test_epoch_streams_keep_their_numbers():
    assert [(s.name, int(s)) for s in EpochStream] == [("GLOBAL", 0), ("DATA_ORDER", 1), ("AUGMENTATION", 2), ("SAMPLING", 3)]
    assert epoch_seed(0, 0, EpochStream.GLOBAL) == 0
    assert epoch_seed(3, 5, EpochStream.AUGMENTATION) == 3 * 1_000_003 + 5 * 7919 + 2 * 104_729
    for seed, epoch, stream in itertools.product(SEEDS, EPOCHS, EpochStream):
        assert epoch_seed(seed, epoch, stream) == old_epoch_seed(seed, epoch, int(stream))


@pytest.mark.parametrize(("seed", "epoch", "stream"), [(0, 1, EpochStream.DATA_ORDER), (12_345, 7, EpochStream.AUGMENTATION)])
def test_epoch_generators_draw_what_the_trainer_drew(seed, epoch, stream):
    assert draws(epoch_generator(seed, epoch, stream)) == draws(torch.Generator().manual_seed(old_epoch_seed(seed, epoch, int(stream))))


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_generator_is_the_plain_seeded_generator(seed):
    assert draws(torch_generator(seed)) == draws(torch.Generator().manual_seed(seed))


def test_an_unseeded_torch_generator_keeps_torchs_default_seed():
    assert torch_generator().initial_seed() == torch.Generator().initial_seed()
    assert draws(torch_generator()) == draws(torch.Generator())


def test_seeded_weights_are_the_forked_manual_seed_and_leave_the_caller_alone():
    torch.manual_seed(99)
    before = torch.get_rng_state()
    with seeded_weights(4):
        inside = torch.randn(6).tolist()
    assert torch.equal(torch.get_rng_state(), before)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        old = torch.randn(6).tolist()
    assert inside == old


@pytest.mark.parametrize("seed", SEEDS)
def test_numpy_streams_keep_their_numbers(seed):
    assert numpy_draws(numpy_rng(seed)) == numpy_draws(np.random.default_rng(seed))
    # cifar100 wrote default_rng(SeedSequence(seed)): the same stream
    assert numpy_draws(numpy_rng(seed)) == numpy_draws(np.random.default_rng(np.random.SeedSequence(seed)))
    assert numpy_draws(numpy_rng(seed, DataStream.FILE_SPLITS)) == numpy_draws(np.random.default_rng(np.random.SeedSequence([seed, 18])))
    old = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
    assert [numpy_draws(r) for r in numpy_rngs(seed, 3)] == [numpy_draws(r) for r in old]
    for key, value, count in ((DataStream.SYNTHETIC_TEACHERS, 1, 4), (DataStream.SYNTHETIC_SAMPLES, 2, 3)):
        old = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, value]).spawn(count)]
        assert [numpy_draws(r) for r in numpy_rngs(seed, count, key)] == [numpy_draws(r) for r in old]


def test_a_keyed_stream_needs_a_seed():
    with pytest.raises(ValueError, match="needs a seed"):
        numpy_rng(None, DataStream.FILE_SPLITS)


# ---- the streams are distinct ---------------------------------------------------------------------
def test_epoch_streams_never_collide_over_a_grid():
    grid = [(seed, epoch, stream) for seed in range(10) for epoch in range(300) for stream in EpochStream]
    seeds = {epoch_seed(*point) for point in grid}
    assert len(seeds) == len(grid)
    assert all(0 <= s < 2**63 - 1 for s in seeds)


@pytest.mark.parametrize("seed", [0, 5])
def test_keyed_numpy_streams_differ_from_each_other_and_from_the_plain_seed(seed):
    firsts = [numpy_draws(numpy_rng(seed))] + [numpy_draws(numpy_rng(seed, key)) for key in DataStream]
    firsts += [numpy_draws(r) for key in (None, *DataStream) for r in numpy_rngs(seed, 3, key)]
    assert len({tuple(f) for f in firsts}) == len(firsts)


# ---- one home: the static check ------------------------------------------------------------------
BUILDERS = frozenset({"default_rng", "SeedSequence", "Generator", "RandomState", "Random", "fork_rng"})
"""Calls that make a generator or a seed sequence: only the seeding module makes them."""
SEEDERS = frozenset({"manual_seed", "seed", "reseed"})
"""Calls whose positional arguments are a seed."""


def _callee(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else call.func.attr if isinstance(call.func, ast.Attribute) else None


def _seeding_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names bound to the seeding module's functions, and names bound to the module itself."""
    functions, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == SEEDING_MODULE:
            functions.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "routing_rl.core":
            modules.update(a.asname or a.name for a in node.names if a.name == "seeding")
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name == SEEDING_MODULE and a.asname)
    return functions, modules


def _is_plain(node: ast.expr) -> bool:
    """A seed handed in as it is: a name, an attribute (``cfg.seed``), None, or a choice between those."""
    if isinstance(node, ast.IfExp):
        return _is_plain(node.body) and _is_plain(node.orelse)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, (ast.Name, ast.Attribute)) and _is_plain(node.value)
    return isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and node.value is None)


def seeding_problems(source: str) -> list[str]:
    """Each place in ``source`` that makes a generator, or seeds one (or a seeding function) with
    anything but a plain passed-in seed or a seeding function's value."""
    tree = ast.parse(source)
    functions, modules = _seeding_names(tree)

    def from_seeding(call: ast.Call) -> bool:
        func = call.func
        return (isinstance(func, ast.Name) and func.id in functions) or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules
        )

    problems = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name, line = _callee(call), f"line {call.lineno}"
        if from_seeding(call):
            # the seed a seeding function derives from is itself handed in, never computed
            if call.args and not _is_plain(call.args[0]):
                problems.append(f"{line}: {name}({ast.unparse(call.args[0])}, ...) derives its seed by hand")
            continue
        if name in BUILDERS:
            problems.append(f"{line}: {ast.unparse(call.func)}(...) makes or forks a generator; take it from {SEEDING_MODULE}")
            continue
        seeds = list(call.args) if name in SEEDERS else []
        seeds += [k.value for k in call.keywords if k.arg and (k.arg == "seed" or k.arg.endswith("_seed"))]
        for arg in seeds:
            if not _is_plain(arg) and not (isinstance(arg, ast.Call) and from_seeding(arg)):
                problems.append(f"{line}: {name}(... {ast.unparse(arg)} ...) derives a seed outside {SEEDING_MODULE}")
    return problems


def test_no_module_but_the_seeding_module_derives_a_seed():
    found = [f"{path.relative_to(PACKAGE.parent)} {problem}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != SEEDING
             for problem in seeding_problems(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert not found, "derive seeds in routing_rl/core/seeding.py (and list the stream there):\n" + "\n".join(found)


IMPORT = "from routing_rl.core.seeding import EpochStream, epoch_seed, numpy_rng, torch_generator\n"


@pytest.mark.parametrize("line", [
    "torch.manual_seed(seed + 1)",
    "torch.manual_seed(epoch * 7919)",
    "generator.manual_seed(0)",
    "g = torch.Generator().manual_seed(seed)",
    "rng = np.random.default_rng(seed)",
    "rng = np.random.default_rng()",
    "children = np.random.SeedSequence([seed, 2]).spawn(3)",
    "with torch.random.fork_rng(devices=[]): pass",
    "r = random.Random(seed)",
    "router = Router(2, 1, 2, seed=cfg.seed * 2)",
    "load(data_seed=[seed, 18])",
    "rng = numpy_rng(seed + epoch)",
    "g = torch_generator(self.seed * 3)",
])  # fmt: skip
def test_the_static_check_catches_a_hand_made_seed(line):
    assert seeding_problems(IMPORT + line + "\n"), line


@pytest.mark.parametrize("line", [
    "torch.manual_seed(epoch_seed(cfg.seed, epoch, EpochStream.GLOBAL))",
    "self.generator.manual_seed(seed)",
    "rng = numpy_rng(self.split_seed if self.split_seed is not None else seed)",
    "router = Router(2, 1, 2, seed=cfg.seed)",
    "env.reset(seed=seed)",
    "g = torch_generator()",
    "x = torch.rand(3, generator=torch_generator(seed))",
    "def f(gen: torch.Generator | None = None, rng: np.random.Generator | None = None) -> None: pass",
])  # fmt: skip
def test_the_static_check_lets_passed_in_seeds_through(line):
    assert seeding_problems(IMPORT + line + "\n") == []
