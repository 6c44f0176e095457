"""A user's own data file (``--env files``) that cannot train meets a one-line error before anything is written.

Each case writes a small real file (CSV as plain text, Parquet through pyarrow, ``.npz`` through
numpy) and runs the real command line in-process. What it guards: a target that is also an input
(the scores would measure the copy), names a file repeats (pandas renames a repeated CSV header,
numpy keeps the last of two ``.npz`` members), infinite targets, finite values too large to
standardise, inputs with no values, images the conv blocks would pool below one pixel, and tasks,
classes or outputs past the bounds a real multi-task set stays under. The bounds and the smallest
image are read from the code that sets them, so the cases follow if those change.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.core.records import MAX_TASKS
from routing_rl.data.task_kinds import MAX_CLASSES
from routing_rl.network.spec import CONV_POOL, smallest_image_side
from tests.test_reliability import assert_clean_error

SIDE = smallest_image_side(3)
"""The smallest image side of the network the command line builds (its three conv layers)."""

ROWS = 40


def noise_csv(path: Path, extra: str = "", rows: int = ROWS) -> None:
    """Two features and a pure-noise binary target ``y`` (a model that sees ``y`` scores 1.0)."""
    rng = np.random.default_rng(0)
    lines = ["a,b,y" + (",part" if extra == "part" else "")]
    for i in range(rows):
        part = ",test" if i < 8 else (",val" if i < 12 else ",train")
        lines.append(f"{rng.standard_normal():.4f},{rng.standard_normal():.4f},{rng.integers(0, 2)}" + (part if extra == "part" else ""))
    path.write_text("\n".join(lines) + "\n")


def csv_text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


def csv_rows(header: str, row: Callable[[int], str], rows: int = ROWS) -> Callable[[Path], None]:
    return lambda path: path.write_text(header + "\n" + "\n".join(row(i) for i in range(rows)) + "\n")


def npz(**arrays: Callable[[np.random.Generator], np.ndarray]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        rng = np.random.default_rng(0)
        np.savez(path, **{name: make(rng) for name, make in arrays.items()})

    return write


def labels(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, ROWS)


def images(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: (rng.random((ROWS, *shape)) * 255).astype(np.uint8)


def duplicate_parquet(path: Path) -> None:
    """A Parquet file whose schema names ``f1`` twice (pyarrow writes it; pandas cannot)."""
    rng = np.random.default_rng(0)
    table = pa.table([pa.array(rng.standard_normal(ROWS)), pa.array(rng.standard_normal(ROWS)), pa.array(labels(rng))], names=["f1", "f1", "y"])
    pq.write_table(table, path)


def duplicate_npz(path: Path) -> None:
    """An ``.npz`` archive holding two members ``x.npy`` (numpy would read the last one only)."""
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        with zipfile.ZipFile(path, "w") as archive:
            for name, array in (("x.npy", rng.standard_normal((ROWS, 3))), ("x.npy", rng.standard_normal((ROWS, 3))), ("y.npy", labels(rng))):
                buffer = io.BytesIO()
                np.save(buffer, array)
                archive.writestr(name, buffer.getvalue())


def parquet_regression(path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal(ROWS)
    y[[4, 9, 30]] = -np.inf
    pq.write_table(pa.table({"a": rng.standard_normal(ROWS), "y": y}), path)


def npz_with_inf(rng: np.random.Generator) -> np.ndarray:
    y = rng.standard_normal((ROWS, 2))
    y[7, 1] = np.inf
    return y


def bad_data_cases() -> dict[str, tuple[str, Callable[[Path], None], list[str], list[str]]]:
    """Case -> (file name, its writer, ``-e`` options after the path, fragments the one-line error must hold)."""
    many_tasks = ",".join(f"t{i}" for i in range(MAX_TASKS + 1))
    return {
        "target also a feature": ("d.csv", noise_csv, ["tasks=y", "features=a,b,y"],
                                  ["d.csv: column 'y' is a target of task 'y' and also a feature in -e features", "drop 'y' from -e features"]),
        "target of a multi-column task also a feature": ("d.csv", noise_csv, ["tasks=both:a+y", "kinds=both:regression", "features=b,y"],
                                                         ["column 'y' is a target of task 'both'", "drop 'y'"]),
        "split column also a feature": ("d.csv", lambda p: noise_csv(p, "part"), ["tasks=y", "split=part", "features=a,part"],
                                        ["column 'part' is the split column (-e split) and also a feature", "drop 'part'"]),
        "npz input array is a target": ("d.npz", npz(x=lambda r: r.standard_normal((ROWS, 3)), y=labels), ["tasks=y", "features=y"],
                                        ["d.npz: array 'y' is the input array (-e features) and a target of task 'y'", "-e features=NAME"]),
        "npz default input array is a target": ("d.npz", npz(x=labels, z=lambda r: r.standard_normal((ROWS, 3))), ["tasks=x"],
                                                ["array 'x' is the input array (-e features, default x) and a target of task 'x'"]),
        "feature named twice": ("d.csv", noise_csv, ["tasks=y", "features=a,a"], ["-e features names 'a' more than once"]),
        "repeated CSV header": ("d.csv", csv_rows("f1,f1,y", lambda i: f"{i},{-i},{i % 2}"), ["tasks=y"],
                                ["d.csv: column names repeat ('f1')", "name every column once"]),
        "repeated CSV header, quoted": ("d.csv", csv_rows('"a",a,y', lambda i: f"{i},{-i},{i % 2}"), ["tasks=y", "features=a"],
                                        ["d.csv: column names repeat ('a')"]),
        "repeated Parquet column": ("d.parquet", duplicate_parquet, ["tasks=y"], ["d.parquet: column names repeat ('f1')"]),
        "repeated npz array": ("d.npz", duplicate_npz, ["tasks=y"], ["d.npz: array names repeat ('x')", "name every array once"]),
        "infinite regression target": ("d.csv", csv_rows("a,y", lambda i: f"{i},{'inf' if i in (2, 5) else i * 1.5}"), ["tasks=y"],
                                       ["d.csv: task 'y': column 'y' is infinite in 2 rows (first: row 3)", "a target must be finite"]),
        "infinite regression target in Parquet": ("d.parquet", parquet_regression, ["tasks=y"],
                                                  ["column 'y' is infinite in 3 rows (first: row 5)"]),
        "infinite multi-output target": ("d.npz", npz(x=lambda r: r.standard_normal((ROWS, 3)), y=npz_with_inf), ["tasks=y"],
                                         ["task 'y': column 'y' is infinite in 1 rows (first: row 8)"]),
        "infinite stated class": ("d.csv", csv_rows("a,y", lambda i: f"{i},{'inf' if i == 0 else i % 3}"), ["tasks=y", "kinds=y:multi-class"],
                                  ["column 'y' is infinite in 1 rows (first: row 1)"]),
        "feature too large to standardise": ("d.csv", csv_rows("a,b,y", lambda i: f"{(-1) ** i * 1.7e308:.3e},{i},{i % 2}"), ["tasks=y"],
                                             ["d.csv: feature column 'a' holds values too large to standardise", "rescale it"]),
        "regression target too large to standardise": ("d.csv", csv_rows("a,y", lambda i: f"{i},{i * 1e306:.1e}"), ["tasks=y", "kinds=y:regression"],
                                                       ["d.csv: target 'y' of task 'y' holds values too large to standardise"]),
        "input of no columns": ("d.npz", npz(x=lambda r: np.zeros((ROWS, 0)), y=labels), ["tasks=y"],
                                ["d.npz: input array 'x' of shape (40, 0) has no feature columns", "D >= 1"]),
        "images of no channels": ("d.npz", npz(x=lambda r: np.zeros((ROWS, 0, SIDE, SIDE)), y=labels), ["tasks=y"],
                                  ["input array 'x' of shape (40, 0, 8, 8) has no channels"]),
        "images of no rows of pixels": ("d.npz", npz(x=lambda r: np.zeros((ROWS, 0, SIDE)), y=labels), ["tasks=y"], ["has no rows of pixels"]),
        "1x1 images": ("d.npz", npz(x=images(1, 1), y=labels), ["tasks=y"],
                       ["the input images are 1 x 1 pixels", f"need at least {SIDE} x {SIDE} pixels", "N x D vectors"]),
        "2x2 images": ("d.npz", npz(x=images(3, 2, 2), y=labels), ["tasks=y"], ["the input images are 2 x 2 pixels", f"at least {SIDE} x {SIDE}"]),
        "images one pixel short": ("d.npz", npz(x=images(SIDE, SIDE - 1), y=labels), ["tasks=y"],
                                   [f"are {SIDE} x {SIDE - 1} pixels", f"max-pools by {CONV_POOL}"]),
        "an ID column as a task": ("d.csv", csv_rows("a,id", lambda i: f"{i % 7},user{i}", MAX_CLASSES + 1), ["tasks=id"],
                                   [f"task 'id' has {MAX_CLASSES + 1:,} classes, more than the {MAX_CLASSES:,} a task may have (MAX_CLASSES)",
                                    "drop it from -e tasks"]),
        "too many labels": ("d.csv", csv_rows("a,tags", lambda i: f"{i % 7},x{i}|y{i}", MAX_CLASSES // 2 + 1), ["tasks=tags", "kinds=tags:multi-label"],
                            [f"task 'tags' has {2 * (MAX_CLASSES // 2 + 1):,} labels, more than the {MAX_CLASSES:,}"]),
        "too many outputs": ("d.npz", npz(x=lambda r: r.standard_normal((ROWS, 3)), y=lambda r: np.zeros((ROWS, MAX_CLASSES + 1))), ["tasks=y"],
                             [f"task 'y' has {MAX_CLASSES + 1:,} values per row (outputs), more than the {MAX_CLASSES:,}"]),
        "too many tasks": ("d.csv", noise_csv, [f"tasks={many_tasks}"], [f"-e tasks names {MAX_TASKS + 1:,} tasks, more than the {MAX_TASKS:,}"]),
    }  # fmt: skip


CASES = [
    "target also a feature", "target of a multi-column task also a feature", "split column also a feature",
    "npz input array is a target", "npz default input array is a target", "feature named twice", "repeated CSV header",
    "repeated CSV header, quoted", "repeated Parquet column", "repeated npz array", "infinite regression target",
    "infinite regression target in Parquet", "infinite multi-output target", "infinite stated class", "feature too large to standardise",
    "regression target too large to standardise", "input of no columns",
    "images of no channels", "images of no rows of pixels", "1x1 images", "2x2 images", "images one pixel short",
    "an ID column as a task", "too many labels", "too many outputs", "too many tasks",
]  # fmt: skip


def run_files(path: Path, options: list[str], logdir: Path, epochs: int = 1):
    env = [arg for option in [f"path={path}", *options] for arg in ("-e", option)]
    args = ["run", "--env", "files", *env, "--epochs", str(epochs), "--threads", "1", "--quiet", "--logdir", str(logdir)]
    return CliRunner().invoke(main, args)


def test_the_case_table_is_complete():
    assert sorted(bad_data_cases()) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_own_data_is_refused_in_one_line_before_anything_is_written(tmp_path, case):
    name, write, options, fragments = bad_data_cases()[case]
    write(tmp_path / name)
    logdir = tmp_path / "run"
    result = run_files(tmp_path / name, options, logdir)
    assert_clean_error(result, *fragments, code=1)
    message = [line for line in result.output.splitlines() if line.strip()]
    assert len(message) == 1 and message[0].startswith("Error: "), result.output
    assert not logdir.exists()


def test_a_correct_small_table_still_trains(tmp_path):
    noise_csv(tmp_path / "d.csv")
    result = run_files(tmp_path / "d.csv", ["tasks=y", "features=a,b"], tmp_path / "run")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "complete" and results["env"]["info"]["features"] == ["a", "b"]


def test_images_of_the_smallest_side_still_train(tmp_path):
    npz(x=images(1, SIDE, SIDE), y=labels)(tmp_path / "d.npz")
    result = run_files(tmp_path / "d.npz", ["tasks=y"], tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["env"]["input_shape"] == [1, SIDE, SIDE]


def test_the_smallest_image_side_follows_the_pooling():
    """Each conv block divides the side by the pool, rounding down: the side that ends at one pixel."""
    for layers in range(1, 5):
        side = smallest_image_side(layers)
        ends = lambda s: [s := s // CONV_POOL for _ in range(layers)][-1]  # noqa: B023
        assert ends(side) == 1 and ends(side - 1) == 0
