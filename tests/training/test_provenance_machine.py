"""results.json names the machine that computed its numbers (CPU model, instruction sets, torch's
kernel capability, BLAS, threads, kernel-changing environment variables, CUDA device), per start and
per resume; files written before it did still load."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.training import ResultsError, load_results
from routing_rl.training.records.machine import cpu_flags, cpu_kind, cpu_model, describe, machine, same_cpu_kind

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--agent", "wpl", "--env", "synthetic-groups", "-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30",
         "--threads", "1", "--quiet"]  # fmt: skip
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw amx_tile avx512_bf16 some_other
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["run", *SMALL, "--epochs", "1", "--logdir", str(run)])
    assert result.exit_code == 0, result.output
    return run


def test_cpu_model_and_flags_come_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_flags(info) == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_tile"]


def test_without_cpuinfo_the_model_is_the_platforms(tmp_path):
    missing = tmp_path / "none"
    assert cpu_model(missing) == (platform.processor() or platform.machine() or "unknown")
    assert cpu_flags(missing) is None


def test_the_machine_record_is_this_processes(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    record = machine(torch.device("cpu"))
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["threads"] == torch.get_num_threads() and record["interop_threads"] == torch.get_num_interop_threads()
    assert record["env"]["MKL_CBWR"] == "COMPATIBLE" and "ONEDNN_MAX_CPU_ISA" not in record["env"]
    assert record["mkl"] is torch.backends.mkl.is_available()
    if torch.backends.mkl.is_available():
        assert record["blas"] == "mkl" and record["mkl_version"][:2] == "20"
    assert "cuda_device" not in record
    if Path("/proc/cpuinfo").exists():
        first = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        assert record["cpu_model"] == first.split(":", 1)[1].strip()


def test_a_cuda_run_names_its_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    record = machine(torch.device("cuda", 0))
    assert record["cuda_device"] == "NVIDIA H200" and "cuda_version" in record


def test_cpu_kind_is_model_capability_and_instruction_sets():
    here = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "cpu_flags": ["avx", "avx2"], "threads": 1}
    assert cpu_kind(here) == {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "cpu_flags": ["avx", "avx2"]}
    assert same_cpu_kind(here, {**here, "threads": 2, "env": {"OMP_NUM_THREADS": "2"}})
    assert not same_cpu_kind(here, {**here, "cpu_capability": "AVX512"})
    assert not same_cpu_kind(here, {**here, "cpu_model": "Intel Xeon"})
    # torch's kernels pinned to AVX2 on an AVX-512 CPU: MKL and oneDNN still use AVX-512
    assert not same_cpu_kind(here, {**here, "cpu_flags": ["avx", "avx2", "avx512f"]})
    assert same_cpu_kind(here, {**here, "cpu_flags": None})  # flags unknown (no /proc/cpuinfo): not compared
    assert not same_cpu_kind(None, here) and not same_cpu_kind({}, here) and cpu_kind({"cpu_model": "x"}) is None
    assert describe(None) == "an unrecorded CPU" and describe(here) == "AMD EPYC (torch kernels AVX2, avx avx2)"


def test_a_runs_provenance_records_its_machine(run_dir):
    prov = load_results(run_dir)["provenance"]
    here = machine(torch.device("cpu"))
    assert prov["machine"]["threads"] == 1 == prov["torch_threads"]
    assert cpu_kind(prov["machine"]) == cpu_kind(here) and prov["machine"]["blas"] == here["blas"]
    assert "resumes" not in prov


def test_a_resume_records_its_epoch_and_machine(tmp_path):
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["run", *SMALL, "--epochs", "1", "--logdir", str(run)]).exit_code == 0
    result = CliRunner().invoke(main, ["run", *SMALL, "--epochs", "2", "--resume", "--logdir", str(run)])
    assert result.exit_code == 0, result.output
    prov = load_results(run)["provenance"]
    (resume,) = prov["resumes"]
    assert resume["epoch"] == 2 and resume["started"] >= prov["started"] and "git_commit" in resume
    assert cpu_kind(resume["machine"]) == cpu_kind(prov["machine"])


def test_files_without_the_machine_still_load(run_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    results = json.loads((old / "results.json").read_text())
    del results["provenance"]["machine"]
    (old / "results.json").write_text(json.dumps(results))
    assert "machine" not in load_results(old)["provenance"]
    kept = sorted((ROOT / "results").glob("*/*/results.json"))
    assert kept, "no kept results.json"
    for file in kept:
        assert load_results(file)["provenance"]["torch_version"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.__setitem__("machine", "AMD EPYC"), "provenance.machine should be object"),
        (lambda p: p["machine"].__setitem__("cpu_model", 3), "provenance.machine.cpu_model should be str"),
        (lambda p: p["machine"].pop("cpu_capability"), "provenance.machine.cpu_capability is missing"),
        (lambda p: p.__setitem__("resumes", {}), "provenance.resumes should be list"),
        (lambda p: p.__setitem__("resumes", [{"epoch": 2}]), "provenance.resumes[0].machine should be object"),
    ],
)
def test_a_broken_machine_record_is_named(run_dir, tmp_path, edit, message):
    results = json.loads((run_dir / "results.json").read_text())
    edit(results["provenance"])
    file = tmp_path / "results.json"
    file.write_text(json.dumps(results))
    with pytest.raises(ResultsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_results(file)
