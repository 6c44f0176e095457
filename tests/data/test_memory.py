"""Available-memory probing and the up-front size check of the generated suites."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from routing_rl.data import memory
from routing_rl.data.base import DataError
from routing_rl.data.synthetic import SyntheticGroups

MEMINFO = """MemTotal:       32768000 kB
MemFree:         1000000 kB
MemAvailable:   19531250 kB
Buffers:          100000 kB
"""


def test_available_memory_reads_memavailable(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO, encoding="ascii")
    assert memory.available_memory(meminfo) == 19531250 * 1024


def test_available_memory_falls_back_to_sysconf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert memory.available_memory(tmp_path / "no-meminfo") == 4096000
    (tmp_path / "no-line").write_text("MemTotal: 5 kB\n", encoding="ascii")
    assert memory.available_memory(tmp_path / "no-line") == 4096000

    def unknown(name: str) -> int:
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(os, "sysconf", unknown)
    assert memory.available_memory(tmp_path / "no-meminfo") is None


def test_format_bytes() -> None:
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(1500) == "1.5 kB"
    assert memory.format_bytes(20 * 10**9) == "20 GB"
    assert memory.format_bytes(12.4 * 10**12) == "12 TB"
    assert memory.format_bytes(5.06e16) == "51 PB"


def test_unknown_memory_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    suite = SyntheticGroups(train_per_task=10**12)  # nothing is allocated until load()
    assert suite.train_per_task == 10**12


def test_message_leads_with_the_changed_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 20 * 10**9)
    with pytest.raises(DataError) as info:
        SyntheticGroups(dim=10**9)
    assert str(info.value) == (
        "synthetic-groups: -e dim=1000000000 with -e num_tasks=8, -e train_per_task=1000, -e test_per_task=300 "
        "needs about 171 TB of memory for its generated data; this machine has 20 GB available. Lower -e dim."
    )
    SyntheticGroups(dim=64)  # fits: no error


def test_option_text_shortens_long_sequences() -> None:
    assert memory.option_text("labels_per_task", [3, 2]) == "-e labels_per_task=3,2"
    assert memory.option_text("labels_per_task", list(range(10))).endswith("7,... (10 values)")
