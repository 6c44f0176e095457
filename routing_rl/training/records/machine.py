"""Which machine computed a run's numbers: the ``machine`` record of results.json's provenance.

A seed fixes every random stream, yet the numbers also depend on the kernels that did the
arithmetic, and torch, MKL and oneDNN each pick theirs from the CPU they run on. The first epoch
of a Table 2 trial re-trained with the commit that trained it ended at test accuracy 0.5557 on an
AVX-512 CPU against the 0.4907 on record (0.5451 with torch's AVX2 kernels forced): early epochs
amplify the last bits. So the record names the CPU (model, instruction sets, the capability of
torch's own kernels), the BLAS and oneDNN builds, the thread settings and the environment variables
that change kernels or threads, and the CUDA device where one is used.

:func:`cpu_kind` is what must match for a re-run to be expected to give the same numbers to the
last bit (``docs/rerun_trial.py``). Reading the record changes no setting and no number.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

import torch

ENV_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
    "MKL_DEBUG_CPU_TYPE", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE",
    "CUBLAS_WORKSPACE_CONFIG",
)  # fmt: skip
"""Environment variables that change which kernels run or on how many threads, recorded when set."""

ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip
"""The /proc/cpuinfo flags that MKL and oneDNN choose kernels by (they dispatch on the CPU itself,
whatever torch's own capability is set to)."""

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str, cpuinfo: Path = CPUINFO) -> str | None:
    """The first ``name : value`` of /proc/cpuinfo (Linux), or None where there is none."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(rf"^{re.escape(name)}\s*:\s*(.*)$", text, re.M)
    return match.group(1).strip() if match else None


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """/proc/cpuinfo's "model name" on Linux; elsewhere ``platform.processor()`` or the architecture."""
    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: Path = CPUINFO) -> list[str] | None:
    """The CPU's instruction-set flags among :data:`ISA_FLAGS`, or None where /proc/cpuinfo is absent."""
    flags = _cpuinfo_field("flags", cpuinfo)
    if flags is None:
        return None
    present = set(flags.split())
    return [flag for flag in ISA_FLAGS if flag in present]


def _build_info() -> dict[str, Any]:
    """The BLAS and oneDNN that torch was built with (and runs: both are linked into its library)."""
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([0-9.]+)", config)
    onednn = re.search(r"MKL-DNN v(\S+)", config)
    return {
        "blas": blas.group(1) if blas else None,
        "mkl": torch.backends.mkl.is_available(),
        "mkl_version": mkl.group(1) if mkl else None,
        "onednn_version": onednn.group(1) if onednn and torch.backends.mkldnn.is_available() else None,
    }


def machine(device: torch.device | None = None) -> dict[str, Any]:
    """The machine record of a run on ``device``; ``cuda_device`` only where the device is CUDA."""
    record: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": cpu_flags(),
        **_build_info(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "env": {name: os.environ[name] for name in ENV_VARIABLES if name in os.environ},
    }
    if device is not None and device.type == "cuda":
        record["cuda_device"] = torch.cuda.get_device_name(device)
        record["cuda_version"] = torch.version.cuda
    return record


def cpu_kind(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a CPU re-run must share with ``record`` to be expected to give the same numbers to the
    last bit: CPU model, torch's kernel capability and the instruction sets (these only where the
    record has them). None for a record without a machine (results.json written before it existed)."""
    if not record or "cpu_model" not in record or "cpu_capability" not in record:
        return None
    kind = {"cpu_model": record["cpu_model"], "cpu_capability": record["cpu_capability"]}
    if record.get("cpu_flags") is not None:
        kind["cpu_flags"] = record["cpu_flags"]
    return kind


def same_cpu_kind(stored: dict[str, Any] | None, current: dict[str, Any]) -> bool:
    """Whether the machine ``current`` is of the CPU kind of ``stored`` (False where ``stored`` is
    unknown); instruction sets are compared only where both records list them."""
    a, b = cpu_kind(stored), cpu_kind(current)
    if a is None or b is None:
        return False
    shared = set(a) & set(b)
    return all(a[key] == b[key] for key in shared)


def describe(record: dict[str, Any] | None) -> str:
    """One line naming a machine record's CPU kind, for messages."""
    kind = cpu_kind(record)
    if kind is None:
        return "an unrecorded CPU"
    flags = f", {' '.join(kind['cpu_flags'])}" if kind.get("cpu_flags") else ""
    return f"{kind['cpu_model']} (torch kernels {kind['cpu_capability']}{flags})"
