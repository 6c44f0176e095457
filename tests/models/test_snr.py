"""SNR-Trans / SNR-Aver and the baselines: shapes, gates, pruning, parameter counts, training."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from routing_rl.data.multilabel_synthetic import MultiLabelSynthetic
from routing_rl.metrics.ranking import map_at_k
from routing_rl.models import (
    MultiTaskModel,
    SNRAver,
    SNRTrans,
    match_hidden_size,
    multitask_loss,
    train_parameter_count,
)
from routing_rl.models.layers import count_parameters

LABELS = [5, 3, 4]
INPUT_DIM = 7
SMALL = {
    "snr-trans": {"num_subnetworks": 4, "hidden_sizes": (16, 8)},
    "snr-aver": {"num_subnetworks": 4, "hidden_sizes": (16, 8)},
    "shared-bottom-mlp": {"hidden_sizes": (32, 16)},
    "mmoe": {"shared_hidden": 32, "expert_hidden": 8},
    "ml-mmoe": {"hidden_sizes": (8, 8)},
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run far faster on one thread (and do not fight other test processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def set_log_alpha(gate: torch.nn.Module, open_mask: torch.Tensor) -> None:
    """Open gates get log_alpha = 5 (z_hat = 1), closed ones -5 (z_hat = 0)."""
    with torch.no_grad():
        gate.log_alpha.copy_(torch.where(open_mask, torch.tensor(5.0), torch.tensor(-5.0)))


def test_all_models_are_registered() -> None:
    assert set(SMALL) <= set(MultiTaskModel.registry.names())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_output_is_every_task_padded_to_max_labels(name: str) -> None:
    torch.manual_seed(0)
    model = MultiTaskModel.build(name, INPUT_DIM, LABELS, **SMALL[name])
    out = model(torch.randn(6, INPUT_DIM))
    assert out.shape == (6, 3, 5)
    assert torch.all(out[:, 1, 3:] == 0) and torch.all(out[:, 2, 4:] == 0)
    assert model.label_mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2, [True] * 4 + [False]]
    counts = model.parameter_counts()
    assert counts["train"] == count_parameters(model) and counts["serving"] <= counts["train"]


def test_snr_trans_registers_transformations_and_gates_as_parameters() -> None:
    model = SNRTrans(INPUT_DIM, LABELS, num_subnetworks=4, hidden_sizes=(16, 8))
    names = dict(model.named_parameters())
    assert names["transforms.0"].shape == (3, 4, 16, 8)  # W_ij for 3 tasks x 4 sub-networks
    assert names["gates.0.log_alpha"].shape == (3, 4)
    model(torch.randn(5, INPUT_DIM)).sum().backward()
    assert names["transforms.0"].grad is not None and names["transforms.0"].grad.abs().sum() > 0
    assert names["gates.0.log_alpha"].grad is not None


def test_snr_trans_default_shared_part_is_two_transformation_layers() -> None:
    """The paper's "Shared part: Two subsequent transformation layers", read as the bottom
    sub-networks' weights on the input, then one layer of gated matrices z_ij W_ij into the task
    sub-networks (see the module docstring): two weight layers below the towers, one gated."""
    model = SNRTrans(INPUT_DIM, LABELS)
    assert len(model.transforms) == 1 and len(model.gates) == 1
    shared = [name for name, _ in model.named_parameters() if not name.startswith(("towers", "gates"))]
    weight_layers = {name.rsplit(".", 1)[0] for name in shared if "bias" not in name}
    assert len(weight_layers) == 2, shared


def test_snr_trans_routing_is_the_gated_sum_of_transformed_sub_networks() -> None:
    torch.manual_seed(1)
    u = torch.randn(2, 3, 4)  # B, n_low, h_low
    W = torch.randn(2, 3, 4, 5)  # n_up, n_low, h_low, h_up
    z = torch.rand(2, 3)
    expected = torch.stack(
        [torch.stack([sum(z[i, j] * (u[b, j] @ W[i, j]) for j in range(3)) for i in range(2)]) for b in range(2)]
    )
    assert torch.allclose(SNRTrans.route(u, W, z), expected, atol=1e-5)
    per_example = z.expand(2, 2, 3)
    assert torch.allclose(SNRTrans.route(u, W, per_example), expected, atol=1e-5)
    assert torch.allclose(SNRAver.route(u, z), torch.einsum("ij,bjd->bid", z, u), atol=1e-6)


@pytest.mark.parametrize("cls", [SNRTrans, SNRAver])
def test_one_gate_sample_per_mini_batch_unless_per_example(cls: type[MultiTaskModel]) -> None:
    torch.manual_seed(2)
    x = torch.randn(1, INPUT_DIM).expand(64, INPUT_DIM)
    shared = cls(INPUT_DIM, LABELS, log_alpha_init=0.0).train()
    out = shared(x)
    assert torch.allclose(out, out[:1].expand_as(out))
    per_example = cls(INPUT_DIM, LABELS, log_alpha_init=0.0, per_example_gates=True).train()
    out = per_example(x)
    assert not torch.allclose(out, out[:1].expand_as(out))


@pytest.mark.parametrize("cls", [SNRTrans, SNRAver])
def test_regularization_is_lambda_times_expected_l0(cls: type[MultiTaskModel]) -> None:
    model = cls(INPUT_DIM, LABELS, num_subnetworks=(3, 2), hidden_sizes=(8, 8, 4), l0_lambda=0.01, log_alpha_init=0.5)
    n_gates = 2 * 3 + 3 * 2
    expected = 0.01 * n_gates / (1 + math.exp(-(0.5 + 2 / 3 * math.log(11))))
    assert model.regularization().item() == pytest.approx(expected, rel=1e-5)


def test_snr_trans_pruning_removes_exactly_the_closed_transformations() -> None:
    torch.manual_seed(3)
    model = SNRTrans(INPUT_DIM, LABELS, num_subnetworks=4, hidden_sizes=(16, 8)).eval()
    open_mask = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)
    set_log_alpha(model.gates[0], open_mask)
    serving = model.serving_model()
    assert serving.kept_connections[0] == [tuple(ij) for ij in torch.nonzero(open_mask).tolist()]
    assert serving.kept_subnetworks[0] == [0, 1, 2, 3]
    closed = int((~open_mask).sum())
    counts = model.parameter_counts()
    # each closed gate removes one 16 x 8 W_ij; the 12 log_alpha are not served
    assert counts["serving"] == counts["train"] - closed * 16 * 8 - 12
    x = torch.randn(9, INPUT_DIM)
    assert torch.allclose(serving(x), model(x), atol=1e-5)
    assert model.utilization().tolist() == open_mask.float().tolist()


def test_snr_trans_pruning_drops_a_sub_network_nobody_reads() -> None:
    torch.manual_seed(4)
    model = SNRTrans(INPUT_DIM, LABELS, num_subnetworks=4, hidden_sizes=(16, 8)).eval()
    open_mask = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)  # column 1 closed
    set_log_alpha(model.gates[0], open_mask)
    serving = model.serving_model()
    assert serving.kept_subnetworks[0] == [0, 2, 3]
    counts = model.parameter_counts()
    bottom_subnetwork = INPUT_DIM * 16 + 16
    assert counts["serving"] == counts["train"] - 6 * 16 * 8 - 12 - bottom_subnetwork
    x = torch.randn(9, INPUT_DIM)
    assert torch.allclose(serving(x), model(x), atol=1e-5)


def test_two_routing_layers_prune_consistently() -> None:
    torch.manual_seed(5)
    model = SNRTrans(INPUT_DIM, LABELS, num_subnetworks=(3, 4), hidden_sizes=(8, 6, 4), log_alpha_init=0.0).eval()
    low = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=torch.bool)  # middle 2 reads nothing
    top = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0]], dtype=torch.bool)  # nobody reads middle 2
    set_log_alpha(model.gates[0], low)
    set_log_alpha(model.gates[1], top)
    serving = model.serving_model()
    assert serving.kept_subnetworks[:2] == [[0, 1], [0, 1, 3]]
    assert serving.kept_connections == [[(0, 0), (1, 0), (1, 1), (3, 0)], [(0, 0), (0, 3), (1, 1), (1, 3), (2, 0)]]
    x = torch.randn(9, INPUT_DIM)
    assert torch.allclose(serving(x), model(x), atol=1e-5)
    util = model.utilization()
    assert util.shape == (3, 3 + 4)
    assert util[2].tolist() == [1, 0, 0, 1, 0, 0, 0]  # task 2 <- middle 0 <- bottom 0


def test_snr_aver_removes_a_sub_network_only_when_all_its_gates_are_closed() -> None:
    torch.manual_seed(6)
    model = SNRAver(INPUT_DIM, LABELS, num_subnetworks=4, hidden_sizes=(16, 8)).eval()
    bottom_subnetwork = INPUT_DIM * 16 + 16
    x = torch.randn(9, INPUT_DIM)
    partly = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)  # every column open somewhere
    set_log_alpha(model.gates[0], partly)
    counts = model.parameter_counts()
    assert counts["serving"] == counts["train"] - 12  # only the log_alpha go
    assert model.serving_model().kept_subnetworks[0] == [0, 1, 2, 3]
    assert torch.allclose(model.serving_model()(x), model(x), atol=1e-5)
    column_closed = partly.clone()
    column_closed[:, 2] = False
    set_log_alpha(model.gates[0], column_closed)
    serving = model.serving_model()
    assert serving.kept_subnetworks[0] == [0, 1, 3]
    assert model.parameter_counts()["serving"] == counts["train"] - 12 - bottom_subnetwork
    assert torch.allclose(serving(x), model(x), atol=1e-5)


@pytest.mark.parametrize("cls", [SNRTrans, SNRAver])
def test_serving_equals_eval_with_fractional_gates(cls: type[MultiTaskModel]) -> None:
    torch.manual_seed(7)
    model = cls(INPUT_DIM, LABELS, num_subnetworks=(3, 4), hidden_sizes=(8, 8, 4), log_alpha_init=0.0)
    with torch.no_grad():
        for gate in model.gates:
            gate.log_alpha.uniform_(-4.0, 4.0)
    model.eval()
    x = torch.randn(11, INPUT_DIM)
    assert torch.allclose(model.pruned()(x), model(x), atol=1e-5)


@pytest.mark.parametrize("cls", [SNRTrans, SNRAver])
def test_strong_l0_penalty_closes_every_connection_and_pruned_model_still_serves(cls: type[MultiTaskModel]) -> None:
    torch.manual_seed(8)
    model = cls(INPUT_DIM, LABELS, num_subnetworks=3, hidden_sizes=(8, 4), l0_lambda=100.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        model.regularization().backward()
        opt.step()
    model.eval()
    assert all(not g.serving_mask().any() for g in model.gates)
    serving = model.serving_model()
    assert serving.kept_subnetworks[0] == []
    x = torch.randn(4, INPUT_DIM)
    assert torch.allclose(serving(x), model(x), atol=1e-6)
    # what is left: the towers and the task layer (SNR-Trans: its biases; SNR-Aver: its FC sub-networks)
    task_layer = 3 * 4 if cls is SNRTrans else count_parameters(model.uppers[-1])
    assert model.parameter_counts()["serving"] == count_parameters(model.towers) + task_layer


def test_match_hidden_size_hits_the_target_parameter_count() -> None:
    target = train_parameter_count("shared-bottom-mlp", 32, [10, 8, 6], hidden_sizes=(128, 64))
    size = match_hidden_size("mmoe", target, 32, [10, 8, 6], vary="expert_hidden", shared_hidden=64)
    below = train_parameter_count("mmoe", 32, [10, 8, 6], shared_hidden=64, expert_hidden=size - 1)
    at = train_parameter_count("mmoe", 32, [10, 8, 6], shared_hidden=64, expert_hidden=size)
    above = train_parameter_count("mmoe", 32, [10, 8, 6], shared_hidden=64, expert_hidden=size + 1)
    assert abs(at - target) <= min(abs(below - target), abs(above - target))
    second = match_hidden_size("snr-trans", target, 32, [10, 8, 6], hidden_sizes=(32, 16), position=-1)
    assert abs(train_parameter_count("snr-trans", 32, [10, 8, 6], hidden_sizes=(32, second)) - target) < 0.05 * target


@pytest.fixture(scope="module")
def synthetic_data():  # noqa: ANN201
    return MultiLabelSynthetic(num_train=2000, num_test=500).load(None, seed=0)


def macro_map(model: MultiTaskModel, data) -> float:  # noqa: ANN001
    model.eval()
    with torch.no_grad():
        result = map_at_k(model(data.test.x), data.test.y, 10, data.label_mask).macro
    model.train()
    return result


@pytest.mark.parametrize("name", sorted(SMALL))
def test_training_on_multilabel_synthetic_improves_map_at_10(name: str, synthetic_data) -> None:  # noqa: ANN001
    data = synthetic_data
    torch.manual_seed(0)
    sizes = {**SMALL[name]}
    if "hidden_sizes" in sizes:
        sizes["hidden_sizes"] = tuple(2 * h for h in sizes["hidden_sizes"])
    model = MultiTaskModel.build(name, data.input_dim, data.labels_per_task, **sizes)
    before = macro_map(model, data)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        for rows in data.train.batches(128, generator, shuffle=True):
            x, y = data.train.gather(rows)
            loss = multitask_loss(model(x), y, data.label_mask) + model.regularization()
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = macro_map(model, data)
    print(f"{name}: macro MAP@10 {before:.3f} -> {after:.3f}")
    assert after > before + 0.1
