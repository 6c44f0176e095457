"""CIFAR-100 suites on generated files in the official format, and the batched augmentation."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from routing_rl.data import load_suite
from routing_rl.data.augment import make_image_augment, random_crop, random_hflip, random_rotation
from routing_rl.data.base import DataError, SingleLabelData
from routing_rl.data.cifar100 import Cifar100Alphabetical, Cifar100Superclass, read_batch


def superclass(root: Path, seed: int = 0, val_fraction: float = 0.0, **kwargs: object) -> SingleLabelData:
    return Cifar100Superclass(verify=False, **kwargs).load(root, seed, val_fraction)  # type: ignore[arg-type]


def fine_of(folder: Path, split: str) -> np.ndarray:
    return read_batch(folder / split)[1]


# ----------------------------------------------------------------------------- format


def test_generated_files_are_in_official_format(cifar_root: Path) -> None:
    raw = (cifar_root / "cifar-100-python" / "train").read_bytes()
    assert raw[:2] == b"\x80\x02"  # pickle protocol 2
    obj = pickle.loads(raw, encoding="bytes")
    assert set(obj) == {b"data", b"fine_labels", b"coarse_labels", b"filenames", b"batch_label"}
    assert obj[b"data"].dtype == np.uint8 and obj[b"data"].shape == (500, 3072)


def test_pickle_round_trip_channel_major(cifar_root: Path) -> None:
    folder = cifar_root / "cifar-100-python"
    obj = pickle.loads((folder / "test").read_bytes(), encoding="bytes")
    images, fine, coarse = read_batch(folder / "test")
    assert images.shape == (200, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[7, 0].ravel(), obj[b"data"][7, :1024])  # red plane first
    np.testing.assert_array_equal(images[7, 2].ravel(), obj[b"data"][7, 2048:])  # blue plane last
    np.testing.assert_array_equal(fine, obj[b"fine_labels"])
    np.testing.assert_array_equal(coarse, obj[b"coarse_labels"])


def test_malicious_pickle_is_refused(cifar_root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    (cifar_root / "cifar-100-python" / "meta").write_bytes(pickle.dumps({b"x": Evil()}, protocol=2))
    with pytest.raises(DataError, match="disallowed global"):
        superclass(cifar_root)
    assert not marker.exists()


def test_wrong_content_names_file(cifar_root: Path) -> None:
    path = cifar_root / "cifar-100-python" / "test"
    obj = pickle.loads(path.read_bytes(), encoding="bytes")
    del obj[b"fine_labels"]
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match=r"test.*fine_labels"):
        superclass(cifar_root)
    path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="cifar-100-python/test"):
        superclass(cifar_root)


@pytest.mark.parametrize(
    ("member", "damage", "message"),
    [("meta", lambda o: o.update({b"fine_label_names": [b"\xff\xfe"] * 100}), r"meta.*fine_label_names.*not UTF-8"),
     ("meta", lambda o: o.update({b"coarse_label_names": 7}), r"meta.*coarse_label_names.*list of names"),
     ("train", lambda o: o.update({b"fine_labels": [str(v) for v in o[b"fine_labels"]]}), r"train.*fine_labels.*integer labels"),
     ("test", lambda o: o.update({b"coarse_labels": [v + 0.5 for v in o[b"coarse_labels"]]}), r"test.*coarse_labels.*integer labels")],
)  # fmt: skip
def test_bad_names_and_labels_name_the_file(cifar_root: Path, member: str, damage: Callable[[dict], None], message: str) -> None:
    path = cifar_root / "cifar-100-python" / member
    obj = pickle.loads(path.read_bytes(), encoding="bytes")
    damage(obj)
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match=message):
        superclass(cifar_root)


# ----------------------------------------------------------------------------- superclass tasks


def test_superclass_tasks(cifar_root: Path, datagen: SimpleNamespace) -> None:
    data = superclass(cifar_root)
    assert data.num_tasks == 20 and data.num_classes == 5 and data.input_shape == (3, 32, 32)
    assert data.task_names == datagen.coarse_names
    assert data.train.inputs.shape == (500, 3, 32, 32) and data.train.inputs.dtype == torch.uint8
    assert sorted(data.train.index.tolist()) == list(range(500))  # every image in exactly one task
    fine = fine_of(cifar_root / "cifar-100-python", "train")
    mapping = np.array(datagen.fine_to_coarse)
    for task in range(20):
        rows = data.train.task_rows(task)
        images = data.train.index[rows].numpy()
        labels = data.train.targets[rows].numpy()
        members = np.flatnonzero(mapping == task)  # its 5 fine classes in index order
        assert set(fine[images]) == set(members)
        assert sorted(set(labels)) == [0, 1, 2, 3, 4]
        np.testing.assert_array_equal(labels, np.searchsorted(members, fine[images]))
    assert data.info["task_fine_classes"][0] == [4, 30, 55, 72, 95]  # aquatic_mammals


def test_superclass_label_is_rank_not_fine_mod_5(cifar_root: Path, datagen: SimpleNamespace) -> None:
    data = superclass(cifar_root)
    fine = fine_of(cifar_root / "cifar-100-python", "train")[data.train.index.numpy()]
    labels = data.train.targets.numpy()
    assert (labels != fine % 5).mean() > 0.5
    mapping = np.array(datagen.fine_to_coarse)
    collapsed = [c for c in range(20) if len(set(np.flatnonzero(mapping == c) % 5)) < 5]
    assert 0 in collapsed and len(collapsed) >= 10  # fine % 5 would merge classes in most tasks
    for task in range(20):
        assert len(set(labels[data.train.tasks.numpy() == task])) == 5


def test_test_split_and_augment(cifar_root: Path) -> None:
    data = superclass(cifar_root)
    assert len(data.test) == 200 and set(data.test.targets.tolist()) == {0, 1, 2, 3, 4}
    assert data.augment is not None
    x, _, _ = data.train.gather(torch.arange(4))
    assert data.augment(x, torch.Generator().manual_seed(0)).shape == x.shape
    assert superclass(cifar_root, augment=False).augment is None


def test_val_is_stratified_and_seeded(cifar_root: Path) -> None:
    a, b, c = superclass(cifar_root, 1, 0.2), superclass(cifar_root, 1, 0.2), superclass(cifar_root, 2, 0.2)
    assert len(a.val) == 100 and len(a.train) == 400  # one of the 5 images of every fine class
    for task in range(20):
        assert sorted(a.val.targets[a.val.task_rows(task)].tolist()) == [0, 1, 2, 3, 4]
    assert not set(a.val.index.tolist()) & set(a.train.index.tolist())
    assert torch.equal(a.val.index, b.val.index) and not torch.equal(a.val.index, c.val.index)


# ----------------------------------------------------------------------------- alphabetical tasks


def test_alphabetical_tasks(cifar_root: Path, datagen: SimpleNamespace) -> None:
    data = Cifar100Alphabetical(verify=False).load(cifar_root, 0, 0.0)
    names = sorted(datagen.fine_names)
    fine = fine_of(cifar_root / "cifar-100-python", "train")[data.train.index.numpy()]
    assert data.task_names[0] == "apple-aquarium_fish-baby-bear-beaver"
    for task in range(20):
        rows = data.train.task_rows(task).numpy()
        group = names[5 * task : 5 * task + 5]
        for f, label in zip(fine[rows], data.train.targets[rows].tolist()):
            assert datagen.fine_names[f] == group[label]
        assert sorted(set(data.train.targets[rows].tolist())) == [0, 1, 2, 3, 4]


def test_alphabetical_sorts_names_not_indices(tmp_path: Path, datagen: SimpleNamespace) -> None:
    shuffled = list(reversed(datagen.fine_names))  # fine index 0 is now called "worm"
    datagen.write_cifar(tmp_path, fine_names=shuffled)
    data = Cifar100Alphabetical(verify=False).load(tmp_path, 0, 0.0)
    assert data.info["task_fine_classes"][0] == [99, 98, 97, 96, 95]  # apple, aquarium_fish, ...
    assert data.info["task_fine_classes"][19] == [4, 3, 2, 1, 0]


# ----------------------------------------------------------------------------- files


def test_folder_or_parent(cifar_root: Path) -> None:
    a = superclass(cifar_root)
    b = superclass(cifar_root / "cifar-100-python")
    assert torch.equal(a.train.targets, b.train.targets)
    assert load_suite("cifar100-alphabetical", cifar_root, verify=False).num_tasks == 20


def test_verification(cifar_root: Path) -> None:
    folder = cifar_root / "cifar-100-python"
    with pytest.raises(DataError, match=r"checksum mismatch for .*cifar-100-python/train"):
        Cifar100Superclass().load(cifar_root, 0)
    sums = {f: hashlib.md5((folder / f).read_bytes()).hexdigest() for f in ("train", "test", "meta")}
    assert Cifar100Superclass(checksums=sums).load(cifar_root, 0).info["verified"] is True


def test_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        Cifar100Superclass().load(tmp_path, 0)
    text = str(info.value)
    for part in ("train", "meta", str(tmp_path / "cifar-100-python"), "cifar-100-python.tar.gz", "cs.toronto.edu"):
        assert part in text


def test_tarball_is_extracted(tmp_path: Path, datagen: SimpleNamespace) -> None:
    folder = datagen.write_cifar(tmp_path / "src")
    root = tmp_path / "root"
    root.mkdir()
    datagen.write_tarball(folder, root / "cifar-100-python.tar.gz", extra={"cifar-100-python/file.txt~": b"x"})
    data = superclass(root)
    assert data.num_tasks == 20
    assert sorted(p.name for p in (root / "cifar-100-python").iterdir()) == ["meta", "test", "train"]
    assert (root / "cifar-100-python" / "train").read_bytes() == (folder / "train").read_bytes()


def test_tarball_path_traversal_is_refused(tmp_path: Path, datagen: SimpleNamespace) -> None:
    folder = datagen.write_cifar(tmp_path / "src")
    root = tmp_path / "deep" / "root"
    root.mkdir(parents=True)
    datagen.write_tarball(folder, root / "cifar-100-python.tar.gz", extra={"../evil": b"x"})
    with pytest.raises(DataError, match="unsafe member"):
        superclass(root)
    assert not (tmp_path / "deep" / "evil").exists()


def test_download_tarball(tmp_path: Path, serve: Callable[[Path], str], datagen: SimpleNamespace) -> None:
    served = tmp_path / "served"
    served.mkdir()
    datagen.write_tarball(datagen.write_cifar(tmp_path / "src"), served / "cifar-100-python.tar.gz")
    root = tmp_path / "root"
    data = superclass(root, download=True, url=serve(served) + "cifar-100-python.tar.gz")
    assert data.num_tasks == 20 and (root / "cifar-100-python" / "meta").is_file()


def test_download_failure(tmp_path: Path, dead_url: str, datagen: SimpleNamespace) -> None:
    root = tmp_path / "root"
    with pytest.raises(DataError, match="Download failed"):
        Cifar100Superclass(download=True, url=dead_url + "cifar-100-python.tar.gz").load(root, 0)
    assert datagen.leftovers(root) == [] and not (root / "cifar-100-python.tar.gz").exists()


# ----------------------------------------------------------------------------- augmentation


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_augment_shape_and_determinism(batch: torch.Tensor) -> None:
    augment = make_image_augment()
    a = augment(batch, torch.Generator().manual_seed(5))
    b = augment(batch, torch.Generator().manual_seed(5))
    c = augment(batch, torch.Generator().manual_seed(6))
    assert a.shape == batch.shape and a.dtype == batch.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(make_image_augment(pad=0, max_degrees=0, hflip=False)(batch, torch.Generator()), batch)


def test_flip_mirrors_some_images(batch: torch.Tensor) -> None:
    out = random_hflip(batch, torch.Generator().manual_seed(1))
    flipped = [bool(torch.equal(o, x.flip(-1))) for o, x in zip(out, batch)]
    kept = [bool(torch.equal(o, x)) for o, x in zip(out, batch)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < len(batch)


def test_crop_is_a_shifted_window(batch: torch.Tensor) -> None:
    out = random_crop(batch, 4, torch.Generator().manual_seed(2))
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4))
    shifted = 0
    for o, p in zip(out, padded):
        offsets = [(dy, dx) for dy in range(9) for dx in range(9) if torch.equal(o, p[:, dy : dy + 32, dx : dx + 32])]
        assert offsets
        shifted += offsets[0] != (4, 4)
    assert shifted > 0 and not torch.equal(out, batch)


def test_rotation_changes_images_but_keeps_centre(batch: torch.Tensor) -> None:
    ones = torch.ones(4, 1, 32, 32)
    rotated = random_rotation(ones, 15.0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(rotated[:, :, 12:20, 12:20], ones[:, :, 12:20, 12:20])
    assert (rotated[:, :, 0, 0] < 1).all()  # corners rotate out of the image
    assert not torch.equal(random_rotation(batch, 15.0, torch.Generator().manual_seed(3)), batch)


def test_augment_pickles_and_validates() -> None:
    augment = make_image_augment(pad=2, max_degrees=5.0)
    clone = pickle.loads(pickle.dumps(augment))
    x = torch.randn(3, 3, 8, 8)
    assert torch.equal(augment(x, torch.Generator().manual_seed(0)), clone(x, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError):
        make_image_augment(pad=-1)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        augment(torch.zeros(3, 8, 8), torch.Generator())
