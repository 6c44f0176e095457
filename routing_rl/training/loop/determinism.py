"""Same seed, same numbers on a GPU too.

Seeds fix every random stream of a run, but CUDA kernels that accumulate with atomics (the
backward of indexing a per-task table, ``index_add_``, some cuBLAS reductions) sum in an order
that changes from run to run: two CUDA runs of the hard-concrete router with one seed ended
0.00125 apart in test accuracy. :func:`select_cuda_kernels` picks torch's deterministic kernels
for CUDA runs unless the run asks for the fastest ones (``--nondeterministic``), which cost
reproducibility: on an H200 the deterministic kernels made a batch of the Table 2 network 2-3x
slower (benchmarks/README.md, "On a GPU"). CPU kernels are deterministic either way and are left
as they are.
"""

from __future__ import annotations

import os

import torch

CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS's workspace setting under which its kernels are reproducible (read when cuBLAS starts)."""


def select_cuda_kernels(deterministic: bool) -> None:
    """Deterministic or fastest CUDA kernels for this process; call it before the first CUDA matmul.

    With ``deterministic``, an operation that has no deterministic CUDA kernel warns rather than
    stops the run (``warn_only``): the run goes on, and the warning names the operation.
    """
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
