"""Fashion-MNIST one-vs-rest tasks: exact counts, determinism, verification and file handling."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from routing_rl.data import load_suite
from routing_rl.data.base import DataError, SingleLabelData, Split
from routing_rl.data.fashion_mnist import FashionMNISTMTL, negatives_per_class
from routing_rl.data.idx import read_idx, write_idx

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def load(directory: Path, seed: int = 0, val_fraction: float = 0.0, **kwargs: object) -> SingleLabelData:
    return FashionMNISTMTL(verify=False, **kwargs).load(directory, seed, val_fraction)  # type: ignore[arg-type]


def image_labels(directory: Path, prefix: str) -> np.ndarray:
    return read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)


def rows_of(split: Split, task: int) -> tuple[np.ndarray, np.ndarray]:
    rows = split.task_rows(task)
    return split.index[rows].numpy(), split.targets[rows].numpy()


def test_scaled_counts_on_small_files(fmnist_dir: Path) -> None:
    """60 train / 20 test images per class: negatives are 10 % of each other class (6 and 2)."""
    data = load(fmnist_dir)
    assert data.num_tasks == 10 and data.num_classes == 2 and data.input_shape == (1, 28, 28)
    assert data.train.inputs.shape == (600, 1, 28, 28) and data.train.inputs.dtype == torch.uint8
    assert len(data.val) == 0 and data.augment is None
    train_labels, test_labels = image_labels(fmnist_dir, "train"), image_labels(fmnist_dir, "t10k")
    for split, labels, per_class, negatives in ((data.train, train_labels, 60, 6), (data.test, test_labels, 20, 2)):
        for task in range(10):
            index, targets = rows_of(split, task)
            assert len(index) == per_class + 9 * negatives
            assert len(np.unique(index)) == len(index)
            np.testing.assert_array_equal(targets, (labels[index] == task).astype(np.int64))
            counts = np.bincount(labels[index], minlength=10)
            assert counts[task] == per_class
            assert all(counts[c] == negatives for c in range(10) if c != task)


def test_negatives_rule() -> None:
    assert negatives_per_class(6000, 0.1) == 600 and negatives_per_class(1000, 0.1) == 100
    assert negatives_per_class(60, 0.1) == 6 and negatives_per_class(20, 0.1) == 2
    assert negatives_per_class(3, 0.1) == 1 and negatives_per_class(0, 0.1) == 0
    assert negatives_per_class(5, 1.0) == 5


def test_val_hold_out_is_stratified_and_disjoint(fmnist_dir: Path) -> None:
    data = load(fmnist_dir, val_fraction=0.1)
    assert data.val.inputs is data.train.inputs
    for task in range(10):
        train_index, train_targets = rows_of(data.train, task)
        val_index, val_targets = rows_of(data.val, task)
        assert len(train_index) + len(val_index) == 114
        assert not set(train_index) & set(val_index)
        assert (val_targets == 1).sum() == 6 and (val_targets == 0).sum() == 5  # round(0.1*60), round(0.1*54)
    assert len(data.test) == 10 * 38


def test_deterministic_under_seed(fmnist_dir: Path) -> None:
    a, b, c = load(fmnist_dir, seed=3, val_fraction=0.1), load(fmnist_dir, seed=3, val_fraction=0.1), load(fmnist_dir, seed=4, val_fraction=0.1)
    for split in ("train", "val", "test"):
        for field in ("index", "targets", "tasks"):
            assert torch.equal(getattr(getattr(a, split), field), getattr(getattr(b, split), field))
    for task in range(10):
        pos_a = set(rows_of(a.test, task)[0][rows_of(a.test, task)[1] == 1])
        pos_c = set(rows_of(c.test, task)[0][rows_of(c.test, task)[1] == 1])
        assert pos_a == pos_c  # positives are all images of the class
    assert not torch.equal(a.test.index, c.test.index)  # negatives differ
    assert not torch.equal(a.train.index, c.train.index)


def test_val_fraction_does_not_change_negatives(fmnist_dir: Path) -> None:
    a, b = load(fmnist_dir, seed=1, val_fraction=0.0), load(fmnist_dir, seed=1, val_fraction=0.3)
    for task in range(10):
        all_b = np.concatenate([rows_of(b.train, task)[0], rows_of(b.val, task)[0]])
        assert set(rows_of(a.train, task)[0]) == set(all_b)


def test_plain_files_and_gather(tmp_path: Path, datagen: SimpleNamespace) -> None:
    directory = datagen.write_fmnist(tmp_path / "plain", train_per_class=10, test_per_class=10, gzip=False)
    data = load(directory, val_fraction=0.2)
    assert data.task_names[0] == "t-shirt/top-vs-rest" and data.task_names[-1] == "ankle-boot-vs-rest"
    x, y, task = data.train.gather(torch.arange(8))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    raw = data.train.inputs[data.train.index[:8]].float() / 255.0
    torch.testing.assert_close(x, (raw - 0.2860) / 0.3530)
    assert y.dtype == torch.int64 and task.dtype == torch.int64


def test_custom_checksums(fmnist_dir: Path) -> None:
    sums = {
        f: hashlib.sha256(gzip.decompress((fmnist_dir / f"{f}.gz").read_bytes())).hexdigest()
        for f in FashionMNISTMTL.files
    }
    data = FashionMNISTMTL(checksums=sums).load(fmnist_dir, 0)
    assert data.info["verified"] is True and data.num_tasks == 10
    sums["t10k-labels-idx1-ubyte"] = "0" * 64
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        FashionMNISTMTL(checksums=sums).load(fmnist_dir, 0)


def test_default_verification_rejects_foreign_files(fmnist_dir: Path) -> None:
    with pytest.raises(DataError, match=r"checksum mismatch for .*train-images-idx3-ubyte\.gz"):
        FashionMNISTMTL().load(fmnist_dir, 0)
    with pytest.raises(ValueError, match="checksums lacks"):
        FashionMNISTMTL(checksums={"train-images-idx3-ubyte": "0" * 64})


def test_missing_files_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        FashionMNISTMTL().load(empty, 0)
    text = str(info.value)
    for part in (*FashionMNISTMTL.files, str(empty / "fashion-mnist"), "fashion-mnist.s3-website"):
        assert part in text
    assert "pass -e download=true" in text and "pass --data-dir DIR" in text and "download=True" not in text


@pytest.mark.parametrize("subdir", ["", "fashion-mnist"])
def test_one_missing_file_is_reported_alone(tmp_path: Path, datagen: SimpleNamespace, subdir: str) -> None:
    root = tmp_path / "root"
    directory = datagen.write_fmnist(root / subdir, train_per_class=2, test_per_class=1)
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        FashionMNISTMTL(verify=False).load(root, 0)
    text = str(info.value)
    assert f"missing data file(s) t10k-labels-idx1-ubyte(.gz) in {directory} (the other files are there)." in text
    assert f"Put the files in {directory} " in text
    for present in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert present not in text


@pytest.mark.parametrize("prefix", ["train", "t10k"])
def test_file_without_images_is_refused_at_load(fmnist_dir: Path, prefix: str) -> None:
    write_idx(fmnist_dir / f"{prefix}-images-idx3-ubyte.gz", np.zeros((0, 28, 28), dtype=np.uint8), gzip=True)
    write_idx(fmnist_dir / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(0, dtype=np.uint8), gzip=True)
    with pytest.raises(DataError, match=rf"{prefix}-images-idx3-ubyte\.gz holds no images .*-e download=true"):
        load(fmnist_dir)


def test_truncated_and_inconsistent_files(fmnist_dir: Path, tmp_path: Path, datagen: SimpleNamespace) -> None:
    path = fmnist_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz"):
        load(fmnist_dir)
    other = datagen.write_fmnist(tmp_path / "other", train_per_class=3, test_per_class=3)
    mismatched = datagen.write_fmnist(tmp_path / "mismatched", train_per_class=4, test_per_class=3)
    (mismatched / "train-labels-idx1-ubyte.gz").write_bytes((other / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load(mismatched)


def test_env_var_and_subdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, datagen: SimpleNamespace) -> None:
    datagen.write_fmnist(tmp_path / "root" / "fashion-mnist", train_per_class=5, test_per_class=5)
    monkeypatch.setenv("ROUTING_RL_DATA", str(tmp_path / "root"))
    monkeypatch.setattr(FashionMNISTMTL, "system_dirs", ())
    data = load_suite("fmnist-mtl", seed=0, val_fraction=0.0, verify=False)
    assert data.info["source_dir"] == str(tmp_path / "root" / "fashion-mnist")
    assert len(data.test) == 10 * (5 + 9)


def test_download_from_mirror(tmp_path: Path, serve: Callable[[Path], str], datagen: SimpleNamespace) -> None:
    mirror = serve(datagen.write_fmnist(tmp_path / "mirror", train_per_class=8, test_per_class=4))
    root = tmp_path / "root"
    data = FashionMNISTMTL(download=True, verify=False, mirror=mirror).load(root, 0, 0.0)
    assert sorted(p.name for p in (root / "fashion-mnist").iterdir()) == sorted(f"{f}.gz" for f in datagen.fmnist_files)
    assert len(data.train) == 10 * (8 + 9 * 1)


def test_download_failure_explains_and_leaves_nothing(tmp_path: Path, dead_url: str, datagen: SimpleNamespace) -> None:
    root = tmp_path / "root"
    with pytest.raises(DataError) as info:
        FashionMNISTMTL(download=True, mirror=dead_url).load(root, 0)
    text = str(info.value)
    assert "Download failed" in text and "train-images-idx3-ubyte" in text and str(root / "fashion-mnist") in text
    assert datagen.leftovers(root) == []
    assert not list((root / "fashion-mnist").glob("*ubyte*"))


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Debian package dataset-fashion-mnist is not installed")
def test_real_data_has_paper_counts() -> None:
    data = FashionMNISTMTL().load(None, seed=0, val_fraction=0.1)  # found in the system directory, verified
    assert data.num_tasks == 10
    assert data.train.inputs.shape == (60000, 1, 28, 28) and data.test.inputs.shape == (10000, 1, 28, 28)
    for task in range(10):
        train_t, val_t = data.train.targets[data.train.task_rows(task)], data.val.targets[data.val.task_rows(task)]
        test_t = data.test.targets[data.test.task_rows(task)]
        assert len(train_t) + len(val_t) == 6000 + 9 * 600 == 11400
        assert int(train_t.sum() + val_t.sum()) == 6000
        assert len(val_t) == 600 + 540
        assert len(test_t) == 1000 + 9 * 100 == 1900 and int(test_t.sum()) == 1000
