"""The papers' protocol through the command line: presets, the no-sharing baseline, three routed FC
layers and a routed task-facing layer, Fashion-MNIST augmentation.

Fashion-MNIST runs read small IDX files written here in the official format (random pixels).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data.fashion_mnist import FashionMNISTMTL
from routing_rl.network import build_network
from routing_rl.training.setup.presets import PRESETS, PresetError, apply_preset


def run(args: list[str], logdir: Path) -> tuple[int, str, dict]:
    result = CliRunner().invoke(main, ["run", *args, "--logdir", str(logdir), "--quiet", "--threads", "1"])
    path = logdir / "results.json"
    return result.exit_code, result.output, json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture
def fmnist(tmp_path: Path, fmnist_writer) -> list[str]:
    return ["--data-dir", str(fmnist_writer(tmp_path / "fmnist")), "-e", "verify=false", "--max-batches", "2", "--epochs", "1"]


def test_preset_sets_the_papers_protocol_and_given_options_win(fmnist, tmp_path):
    code, out, results = run(["--agent", "wpl", "--preset", "reexamining-fmnist", "--lr", "1e-3", *fmnist], tmp_path / "a")
    assert code == 0, out
    config = results["config"]
    assert config["preset"] == "reexamining-fmnist" and config["env"] == "fmnist-mtl"
    assert (config["optimizer"], config["separate_optimizers"], config["router_lr"]) == ("adam", True, 2e-2)
    assert config["lr"] == 1e-3  # given on the command line: wins over the preset's 1.5e-4
    assert config["epochs"] == 1  # likewise
    assert config["env_options"] == {"verify": False, "augment": True}
    assert results["learner"]["routed_layers"] == ["fc1", "fc2", "fc3"]  # three routing layers, then per-task heads
    assert results["env"]["info"]["augment"] == {"crop_pad": 2, "max_degrees": 15.0, "hflip": True}
    # the paper's learner (section 3.3): the corrected public code with a softmax policy layer
    assert config["agent_options"] == {"variant": "public-code-corrected", "parameterization": "softmax"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, {"variant": "public-code-corrected", "parameterization": "softmax"}),
        ({"variant": "public-code"}, {"variant": "public-code"}),  # the learner is one unit: given keys replace it
        ({"variant": "wpl"}, {"variant": "wpl"}),
        ({"discount": 0.5}, {"variant": "public-code-corrected", "parameterization": "softmax", "discount": 0.5}),
    ],
)
def test_preset_learner_applies_unless_its_options_are_given(given, expected):
    for preset in PRESETS:
        assert apply_preset(preset, {"agent": "wpl", "agent_options": given})["agent_options"] == expected
        assert apply_preset(preset, {"agent": "reinforce", "agent_options": given})["agent_options"] == given


def test_preset_refuses_another_suite_and_unknown_names(fmnist, tmp_path):
    code, out, _ = run(["--preset", "reexamining-fmnist", "--env", "synthetic-groups"], tmp_path / "b")
    assert code == 2 and "--preset reexamining-fmnist is the protocol for --env fmnist-mtl" in out and "Traceback" not in out
    code, out, _ = run(["--preset", "nope"], tmp_path / "c")
    assert code == 2 and "unknown preset 'nope'; valid choices: reexamining-fmnist, reexamining-cifar100" in out
    with pytest.raises(PresetError):
        apply_preset("reexamining-cifar100", {"env": "fmnist-mtl"})
    assert apply_preset("reexamining-cifar100", {"lr": 0.1})["lr"] == 0.1
    assert PRESETS["reexamining-cifar100"].options["epochs"] == 200 and PRESETS["reexamining-fmnist"].options["epochs"] == 50


def test_no_sharing_is_a_separate_network_per_task(fmnist, tmp_path):
    code, out, results = run(["--agent", "no-sharing", "--env", "fmnist-mtl", *fmnist], tmp_path / "d")
    assert code == 0, out
    assert results["config"]["routed"] == "all"  # its default
    layers = results["learner"]["layers"]
    assert all(layer["mode"] == "routed" and layer["blocks"] == 10 for layer in layers)
    assert results["final"]["routes"] == [[t] * 5 for t in range(10)]  # task k on block k of every layer
    code, out, _ = run(["--agent", "no-sharing", "--env", "fmnist-mtl", "--routed", "fc", *fmnist], tmp_path / "e")
    assert code != 0 and "Traceback" not in out
    assert "no-sharing gives every task a network of its own, but --routed fc leaves conv1, conv2, conv3 shared: use --routed all" in out


def test_fc_layers_and_a_routed_head():
    net = build_network((1, 28, 28), 4, 3, routed="fc,head", blocks=2, fc_layers=3, seed=0).eval()
    assert [s.name for s in net.specs] == ["conv1", "conv2", "conv3", "fc1", "fc2", "fc3", "head"]
    assert net.routed_layer_names == ["fc1", "fc2", "fc3", "head"] and len(net.heads.blocks) == 0
    x, tasks = torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0])
    from routing_rl.core.contracts import RoutingDecision

    picks = [torch.tensor([0, 1, 1, 0, 1]) for _ in range(4)]
    out = net(x, tasks, [RoutingDecision(p) for p in picks])
    assert out.shape == (5, 3)
    head_block = net.layers[-1].layer.blocks[1]  # sample 1 went through head block 1 (a plain linear map)
    features = x[1:2]
    for layer, pick in zip(net.layers[:-1], [None, None, None, *[int(p[1]) for p in picks[:3]]]):
        features = layer.layer.blocks[0 if pick is None else pick](features.flatten(1) if layer.flatten_input else features)
    assert torch.allclose(out[1], head_block(features)[0], atol=1e-6)
    assert [s.name for s in build_network((8,), 2, 2, routed="fc", fc_layers=1).specs] == ["fc1"]


def test_routed_head_needs_equal_outputs_and_all_never_includes_it():
    from routing_rl.network import SpecError

    with pytest.raises(SpecError, match="same number of outputs"):
        build_network((8,), 2, [2, 3], routed="head")
    assert "head" not in [s.name for s in build_network((8,), 2, 2, routed="all").specs]


def test_fashion_mnist_augmentation_is_an_option(tmp_path, fmnist_writer):
    directory = fmnist_writer(tmp_path / "f")
    plain = FashionMNISTMTL(verify=False).load(directory, seed=0)
    augmented = FashionMNISTMTL(verify=False, augment=True, crop_pad=3, max_degrees=10).load(directory, seed=0)
    assert plain.augment is None
    x = torch.randn(4, 1, 28, 28)
    y = augmented.augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(y, augmented.augment(x, torch.Generator().manual_seed(0)))  # seeded: reproducible
    with pytest.raises(ValueError, match="crop_pad and max_degrees"):
        FashionMNISTMTL(crop_pad=-1)


def test_no_sharing_refuses_a_shared_warm_up_and_milestones_refuse_repeats(tmp_path):
    code, out, _ = run(["--agent", "no-sharing", "--warmup-epochs", "1", "--epochs", "1"], tmp_path / "w")
    assert code != 0 and "--warmup-epochs 1 would share every layer first" in out and "Traceback" not in out
    code, out, _ = run(["--lr-milestones", "5,5"], tmp_path / "m")
    assert code != 0 and "--lr-milestones repeats an epoch" in out and "Traceback" not in out
    from routing_rl.training.setup.config import RunConfig

    with pytest.raises(ValueError, match="repeats an epoch"):  # suites and the Python API too
        RunConfig(lr_milestones=[5, 5]).check()
