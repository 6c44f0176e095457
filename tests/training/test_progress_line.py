"""The progress line of a trial that nobody watches: when it speaks, what it says, and that lines of
several worker processes arrive whole."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.training.loop import progress_line
from routing_rl.training.loop.progress_line import ProgressLine
from tests.suite_texts import tiny_suite

LINE = re.compile(r"^[a-z-]+-s\d+: epoch \d+/\d+, batch \d+/\d+, [\d,]+ samples/s$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_ten_seconds_with_the_rate_of_the_batches_since_the_last():
    clock, lines = FakeClock(), []
    progress = ProgressLine("wpl-s2", batches=420, emit=lines.append, clock=clock)
    progress.on_epoch_start(1, 20)
    for _ in range(79):  # 79 batches of 128 in 9.875 s: nothing yet
        clock.now += 0.125
        progress.on_batch(128, 0.5)
    assert lines == []
    clock.now += 0.125
    progress.on_batch(128, 0.5)
    assert lines == ["wpl-s2: epoch 1/20, batch 80/420, 1,024 samples/s"]
    for _ in range(40):  # 5 s more: still one line
        clock.now += 0.125
        progress.on_batch(128, 0.5)
    assert len(lines) == 1
    progress.on_epoch_start(2, 20)  # evaluation took 100 s before epoch 2: not counted in the rate
    clock.now += 100.0
    progress.on_epoch_start(2, 20)
    clock.now += 0.5
    progress.on_batch(64, 0.5)
    assert lines[-1] == "wpl-s2: epoch 2/20, batch 1/420, 128 samples/s"


def test_a_run_shorter_than_the_interval_prints_nothing():
    clock, lines = FakeClock(), []
    progress = ProgressLine("mmoe-s0", batches=3, emit=lines.append, clock=clock)
    for epoch in (1, 2, 3):
        progress.on_epoch_start(epoch, 3)
        for _ in range(3):
            clock.now += 1.0
            progress.on_batch(32, 0.1)
    assert lines == []


def test_suite_run_prints_progress_lines_and_quiet_silences_them(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_line, "PROGRESS_EVERY", 0.0)  # a line at every batch
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(epochs=2))
    result = CliRunner().invoke(main, ["suite", "run", str(path), "--runs", "shared", "--out", str(tmp_path / "a"), "--population", "1"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if ": epoch " in line]
    assert lines and all(LINE.match(line) for line in lines), lines[:3]
    assert "shared-s0: epoch 2/2, batch 3/3, " in result.output  # 3 tasks x 60 rows in batches of 64
    quiet = CliRunner().invoke(main, ["suite", "run", str(path), "--runs", "shared", "--out", str(tmp_path / "b"), "--quiet"])
    assert quiet.exit_code == 0 and ": epoch " not in quiet.output


def test_lines_of_two_worker_processes_never_mix(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(epochs=2).replace("train_per_task = 60", "train_per_task = 120").replace("batch_size = 64", "batch_size = 8"))
    script = textwrap.dedent(f"""
        from pathlib import Path
        from routing_rl.suites import load_suite_file
        from routing_rl.suites.runner import plan, run_local
        todo = [(t, p) for t, p, _ in plan(load_suite_file(Path({str(path)!r})), None, Path({str(tmp_path / 'runs')!r}))]
        run_local(todo, 2, lambda s: None, progress_every=0.0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True).stdout
    lines = out.splitlines()
    assert len(lines) > 100 and {line.split(":")[0] for line in lines} == {"random-s0", "shared-s0", "random-s1", "shared-s1"}
    bad = [line for line in lines if not LINE.match(line)]
    assert not bad, bad[:3]
