"""The tiny suite file the suite tests train: two runs (fixed random routes and shared bottom) of a
three-task synthetic problem, small enough to train in a second a trial."""

from __future__ import annotations


def tiny_suite(*, epochs: int = 1, kept: str | None = None) -> str:
    """The suite file's text; ``kept`` adds ``[suite] kept`` (the folder its finished trials are kept in)."""
    kept_line = f'kept = "{kept}"\n' if kept is not None else ""
    return f"""
[suite]
name = "tiny"
seeds = [0, 1]
baseline = "shared"
{kept_line}[defaults]
env = "synthetic-groups"
epochs = {epochs}
batch_size = 64
threads = 1
env_options = {{ num_tasks = 3, train_per_task = 60, test_per_task = 30 }}
[runs.random]
agent = "fixed-random"
[runs.shared]
agent = "shared-bottom"
"""
