"""The dropout option (Re-examining paper, section 3.2: "we use dropout in all layers"): each layer's
output below the heads, training only, no extra parameters, same seed same run, resume exact."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data import load_suite
from routing_rl.network import build_network
from routing_rl.core.contracts import RoutingDecision
from routing_rl.training import RunConfig, Trainer
from routing_rl.training.setup.composition import compose


def test_dropout_zeroes_each_layer_output_and_rescales_the_rest():
    net = build_network((6,), num_tasks=2, num_classes=3, routed="fc1", blocks=2, seed=0, fc_layers=2, hidden=5, dropout=0.5)
    plain = build_network((6,), num_tasks=2, num_classes=3, routed="fc1", blocks=2, seed=0, fc_layers=2, hidden=5)
    assert [p.tolist() for p in net.parameters()] == [p.tolist() for p in plain.parameters()]  # no parameters, same weights
    x, tasks = torch.randn(4, 6), torch.tensor([0, 1, 0, 1])
    decision = [RoutingDecision(torch.tensor([0, 1, 1, 0]))]
    seen: list[torch.Tensor] = []
    net.layers[0].register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    torch.manual_seed(3)
    out = net.train()(x, tasks, decision)
    # by hand, from the same generator state: fc1's output dropped, fc2 on it and dropped, then the task heads
    h1 = seen[0]
    assert torch.equal(plain.train().layers[0](x, tasks, decision[0]), h1)
    torch.manual_seed(3)
    d1 = torch.nn.functional.dropout(h1, 0.5, True)
    assert set(torch.unique(d1[h1 > 0] / h1[h1 > 0]).tolist()) <= {0.0, 2.0}  # kept values are doubled, others zeroed
    d2 = torch.nn.functional.dropout(plain.layers[1](d1, tasks), 0.5, True)
    expected = torch.stack([plain.heads.blocks[t](d2[i]) for i, t in enumerate(tasks.tolist())])
    torch.testing.assert_close(out, expected)
    net.eval()
    torch.testing.assert_close(net(x, tasks, decision), plain.eval()(x, tasks, decision))  # no dropout when evaluating


def test_dropout_values_are_checked():
    with pytest.raises(ValueError, match="dropout must be in"):
        build_network((6,), num_tasks=2, num_classes=3, dropout=1.0)
    with pytest.raises(ValueError, match="--dropout must be in"):
        RunConfig(dropout=-0.1).check()
    result = CliRunner().invoke(main, ["run", "--agent", "snr-trans", "--env", "multilabel-synthetic", "--dropout", "0.2"])
    assert result.exit_code == 2 and "--dropout only applies to routers" in result.output


def test_a_run_with_dropout_is_seeded_and_resumes_exactly(tmp_path):
    data = load_suite("synthetic-groups", seed=0, num_tasks=3, num_groups=1, train_per_task=120, test_per_task=40)

    def fit(name: str, epochs: int, resume: bool = False, dropout: float = 0.3):
        cfg = RunConfig(env="synthetic-groups", agent="fixed-random", epochs=epochs, batch_size=32, dropout=dropout, logdir=str(tmp_path / name))
        trainer = Trainer(compose(cfg), data)
        trainer.prepare_run_dir(resume=resume)
        return [e["train_loss"] for e in trainer.fit()["epochs"]]

    full = fit("a", 3)
    assert fit("b", 3) == full
    assert fit("c", 3, dropout=0.0) != full
    fit("d", 2)
    assert fit("d", 3, resume=True) == full
