"""Layer specs: the paper's network, --routed parsing and its errors."""

from __future__ import annotations

import pytest

from routing_rl.network import SpecError, build_layer_specs, build_network, parse_routed

IMAGE_LAYERS = ["conv1", "conv2", "conv3", "fc1", "fc2"]


def test_image_network_has_three_conv_and_two_fc_layers():
    specs = build_layer_specs((1, 28, 28), routed="conv1", blocks=5)
    assert [s.name for s in specs] == IMAGE_LAYERS
    assert [s.mode for s in specs] == ["routed", "shared", "shared", "shared", "shared"]
    assert specs[0].blocks == 5 and specs[0].width == 32 and specs[3].width == 64


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fc", ["fc1", "fc2"]),
        ("conv1", ["conv1"]),
        ("conv1,2,3", ["conv1", "conv2", "conv3"]),
        ("conv3", ["conv3"]),
        ("fc2,conv1", ["conv1", "fc2"]),
        ("all", IMAGE_LAYERS),
        ("none", []),
    ],
)
def test_parse_routed(value, expected):
    assert parse_routed(value, IMAGE_LAYERS) == expected


def test_unknown_layer_lists_valid_names():
    with pytest.raises(SpecError, match="valid: none, all, fc, conv, conv1"):
        parse_routed("conv9", IMAGE_LAYERS)


def test_routed_and_per_task_must_not_overlap():
    with pytest.raises(SpecError, match="both routed and per-task"):
        build_layer_specs((8,), routed="fc1", blocks=2, per_task="fc1")


def test_default_blocks_is_number_of_tasks_and_per_task_layers():
    net = build_network((8,), num_tasks=6, num_classes=2, routed="fc1,fc2", per_task="fc3")
    assert net.blocks_per_layer == [6, 6]
    assert len(net.layers[2].layer.blocks) == 6
