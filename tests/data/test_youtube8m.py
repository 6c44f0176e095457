"""The YouTube8M suite on small files written here in the real format (CRCs included)."""

from __future__ import annotations

import csv
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from routing_rl.data import Suite
from routing_rl.data.base import DataError
from routing_rl.data.multilabel import SparseMultiHot
from routing_rl.data.tf_example import bytes_feature, encode_example, float_feature, int64_feature
from routing_rl.data.tfrecord import write_tfrecord
from routing_rl.data.youtube8m import (
    DATASET_URL,
    YouTube8M,
    encode_video_example,
    rank_verticals,
    read_vocabulary,
)

# index -> (vertical, TrainVideoCount). Games: 4 labels; Arts and Autos: 3 labels each; Beauty and
# Food: 1 label each; 9 has none. The tasks are ranked by the videos of the tfrecords written below,
# not by these counts (which the suite ignores).
VOCAB = {
    0: ("Games", 50),
    1: ("Arts", 10),
    2: ("Autos", 30),
    3: ("Games", 5),
    4: ("Arts", 10),
    5: ("Autos", 30),
    6: ("Beauty", 7),
    7: ("Games", 1),
    8: ("Food", 7),
    9: ("", 3),
    10: ("Arts", 1),
    11: ("Autos", 1),
    12: ("Games", 1),
}


def write_vocabulary(path: Path) -> None:
    columns = [
        "Index",
        "TrainVideoCount",
        "KnowledgeGraphId",
        "Name",
        "WikiUrl",
        "Vertical1",
        "Vertical2",
        "Vertical3",
        "WikiDescription",
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for index, (vertical, count) in VOCAB.items():
            writer.writerow(
                [index, count, f"/m/{index}", f"label{index}", "", vertical, "", "", "a, quoted, description"]
            )


def video(i: int, labels: list[int]) -> tuple[bytes, list[int], np.ndarray, np.ndarray]:
    rgb = np.full(1024, i, dtype=np.float32) + np.arange(1024, dtype=np.float32) / 1024
    audio = -np.full(128, i, dtype=np.float32)
    return (b"vid%03d" % i, labels, rgb, audio)


def write_dataset(root: Path, n_validate: int = 10) -> None:
    # Training videos 0..7 carry labels i % 13 and 5i % 13: videos per vertical Games 5 (videos
    # 0, 3, 4, 5, 7), Arts 4 (1, 2, 4, 6) and Autos 4 (1, 2, 3, 5) (tie, 3 labels each: by name),
    # Beauty 1 (6), Food 0.
    root.mkdir(parents=True, exist_ok=True)
    write_vocabulary(root / "vocabulary.csv")
    train = [video(i, [i % 13, (i * 5) % 13]) for i in range(8)]
    write_tfrecord(root / "train0000.tfrecord", (encode_video_example(*v) for v in train[:5]))
    write_tfrecord(root / "train0001.tfrecord", (encode_video_example(*v) for v in train[5:]))
    validate = [video(100 + i, [i % 13]) for i in range(n_validate)]
    write_tfrecord(root / "validate0000.tfrecord", (encode_video_example(*v) for v in validate))


def test_vocabulary_groups_labels_by_vertical1_with_documented_tie_break(tmp_path: Path) -> None:
    write_vocabulary(tmp_path / "vocabulary.csv")
    every = read_vocabulary(tmp_path / "vocabulary.csv")
    assert every.task_names == ["Arts", "Autos", "Beauty", "Food", "Games"]  # name order
    assert every.labels_per_task == [3, 3, 1, 1, 4]
    # Ranked by videos; ties: more vocabulary labels first (Arts, Autos: 3 labels > Beauty, Food:
    # 1), then name (Arts < Autos, Beauty < Food).
    ranking = rank_verticals(every, [2, 2, 2, 2, 1])
    assert [every.task_names[t] for t in ranking] == ["Arts", "Autos", "Beauty", "Food", "Games"]
    ranking = rank_verticals(every, [0, 0, 0, 9, 0])
    assert [every.task_names[t] for t in ranking] == ["Food", "Games", "Arts", "Autos", "Beauty"]
    tasks, remap = every.select([4, 1, 0, 2])
    assert tasks.task_names == ["Games", "Autos", "Arts", "Beauty"]
    assert tasks.label_indices == [[0, 3, 7, 12], [2, 5, 11], [1, 4, 10], [6]]
    assert tasks.labels_per_task == [4, 3, 3, 1]
    assert tasks.label_names[3] == ["label6"]
    # label 5 is Autos' second label; label 9 has no vertical; label 8 (Food) is not kept
    assert tasks.positives(np.array([5, 9, 8, 0, 99])).tolist() == [0, 1 * 4 + 1]
    # the same labels' positions under every vertical, moved by remap
    # (sorted under every vertical: Autos' label 5, Food's label 8, Games' label 0)
    assert remap[every.positives(np.array([5, 9, 8, 0, 99]))].tolist() == [1 * 4 + 1, -1, 0]


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("100000000000", r"field Index is 100000000000, but it must be 0 <= Index < 1000000"),
        ("-1", r"field Index is -1, but it must be 0 <= Index < 1000000"),
        ("1e11", r"Index and TrainVideoCount must be integers"),
    ],
)
def test_vocabulary_index_out_of_range_is_refused(tmp_path: Path, index: str, message: str) -> None:
    """A huge Index would size the label lookup beyond memory; a negative one adds a dead label."""
    write_dataset(tmp_path)
    path = tmp_path / "vocabulary.csv"
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([index, 4, "/m/x", "bad", "", "Games", "", "", ""])
    pattern = rf"vocabulary\.csv, line {len(VOCAB) + 2}: {message}"
    with pytest.raises(DataError, match=pattern):
        read_vocabulary(path)
    with pytest.raises(DataError, match=pattern):
        YouTube8M(num_verticals=2).load(tmp_path, seed=0)


def test_vocabulary_short_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.csv"
    path.write_text("Vertical1,Name,Index\nGames,a,0\nGames\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"vocabulary\.csv, line 3: Index and TrainVideoCount must be integers"):
        read_vocabulary(path)


def test_load_builds_sparse_multilabel_tasks(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    data = YouTube8M(num_verticals=3).load(tmp_path, seed=0)
    assert data.task_names == ["Games", "Arts", "Autos"]
    assert data.labels_per_task == [4, 3, 3]
    assert data.info["videos_per_vertical"] == {"Games": 5, "Arts": 4, "Autos": 4, "Beauty": 1, "Food": 0}
    assert data.input_dim == 1152 and data.problem == "multilabel"
    assert len(data.train) == 8 and len(data.val) + len(data.test) == 10
    assert isinstance(data.train.targets, SparseMultiHot)
    x, y = data.train.gather(torch.tensor([3]))
    # video 3 has labels 3 (Games, position 1) and 15 % 13 = 2 (Autos, position 0)
    expected = torch.zeros(3, 4)
    expected[0, 1] = 1
    expected[2, 0] = 1
    assert torch.equal(y[0], expected)
    rgb = torch.full((1024,), 3.0) + torch.arange(1024) / 1024
    assert torch.allclose(x[0, :1024], rgb) and torch.equal(x[0, 1024:], torch.full((128,), -3.0))
    assert not bool(data.train.y[:, ~data.label_mask].any())


def test_tasks_are_the_verticals_with_most_training_videos_not_most_labels(tmp_path: Path) -> None:
    """The paper's "top categories in data volume": distinct training videos per vertical.

    By vocabulary labels the ranking would be Games (4), Arts, Autos (3), Beauty, Food (1); by
    TrainVideoCount summed over labels Autos (61), Games (57), ...; by the videos written here it is
    Food (5 videos, one label), Beauty (3), Arts (2), Games (1), Autos (0).
    """
    write_vocabulary(tmp_path / "vocabulary.csv")
    train = [
        video(0, [8]),
        video(1, [8, 6]),
        video(2, [8, 1, 4]),  # two Arts labels on one video: Arts counts it once
        video(3, [8, 0, 3, 7, 12]),  # all four Games labels: Games still has one video
        video(4, [8, 6]),
        video(5, [6, 10]),
        video(6, [9]),  # no vertical: a negative for every task
        video(7, []),
        video(8, [2]),  # beyond max_train_records: counted only by task_counts="all" (then Autos beats Games)
        video(9, [5, 11]),
    ]
    write_tfrecord(tmp_path / "train0000.tfrecord", (encode_video_example(*v) for v in train))
    validate = [video(100 + i, [i]) for i in range(10)]
    write_tfrecord(tmp_path / "validate0000.tfrecord", (encode_video_example(*v) for v in validate))

    data = YouTube8M(num_verticals=4, max_train_records=8, task_counts="read").load(tmp_path, seed=0)
    assert data.task_names == ["Food", "Beauty", "Arts", "Games"]
    assert data.labels_per_task == [1, 1, 3, 4]
    assert data.info["videos_per_vertical"] == {"Food": 5, "Beauty": 3, "Arts": 2, "Games": 1, "Autos": 0}
    assert list(data.info["videos_per_vertical"]) == ["Food", "Beauty", "Arts", "Games", "Autos"]  # ranking order
    assert data.info["vocabulary_indices"] == [[8], [6], [1, 4, 10], [0, 3, 7, 12]]
    assert len(data.train) == 8
    assert data.train.positive_counts().tolist() == [5, 3, 2, 1]
    y = data.train.y
    expected = torch.zeros(4, 4)
    expected[0, 0] = 1  # Food: label 8
    expected[2, 0] = expected[2, 1] = 1  # Arts: labels 1 and 4
    assert torch.equal(y[2], expected)
    assert torch.equal(y[3, 3], torch.ones(4)) and y[3].sum() == 5  # Food + all of Games
    assert not bool(y[6].any()) and not bool(y[7].any())  # videos with no kept label stay as negatives
    assert not bool(y[:, ~data.label_mask].any())
    # validate video 100 + i has label i and is mapped to the same tasks
    held_out = {round(-float(v)): row for s in (data.val, data.test) for v, row in zip(s.x[:, 1024], s.y)}
    assert held_out[108][0, 0] == 1 and held_out[106][1, 0] == 1 and held_out[104][2, 1] == 1
    assert held_out[107][3, 2] == 1 and held_out[108].sum() == 1
    assert held_out[102].sum() == 0 and held_out[109].sum() == 0  # Autos (dropped) and no vertical

    # with every record read, Autos has 2 videos (8, 9) and passes Games (1)
    data = YouTube8M(num_verticals=4).load(tmp_path, seed=0)
    assert data.task_names == ["Food", "Beauty", "Arts", "Autos"]
    assert data.info["videos_per_vertical"]["Autos"] == 2
    # by default the tasks are those of every record, however many are read
    for limit in (3, 8):
        prefix = YouTube8M(num_verticals=4, max_train_records=limit).load(tmp_path, seed=0)
        assert prefix.task_names == ["Food", "Beauty", "Arts", "Autos"] and len(prefix.train) == limit
        assert prefix.info["videos_per_vertical"] == data.info["videos_per_vertical"]
    with pytest.raises(ValueError, match="task_counts must be one of all, read"):
        YouTube8M(task_counts="prefix")


def test_validation_is_split_into_val_and_test_by_seed(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_validate=40)
    suite = YouTube8M(num_verticals=3)

    def ids(split) -> set[float]:  # noqa: ANN001
        return set(split.x[:, 1024].neg().tolist())  # -video number, read back from mean_audio

    a, b, c = suite.load(tmp_path, seed=0), suite.load(tmp_path, seed=0), suite.load(tmp_path, seed=1)
    assert len(a.val) == 20 and len(a.test) == 20
    assert ids(a.val).isdisjoint(ids(a.test)) and ids(a.val) | ids(a.test) == {100.0 + i for i in range(40)}
    assert ids(a.val) == ids(b.val) and torch.equal(a.test.y, b.test.y)
    assert ids(a.val) != ids(c.val)


def test_record_limits(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    data = YouTube8M(num_verticals=2, max_train_records=6, max_eval_records=4).load(tmp_path, seed=0)
    assert len(data.train) == 6 and len(data.val) + len(data.test) == 4


def test_missing_data_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="vocabulary.csv.*train\\*.tfrecord.*validate\\*.tfrecord") as err:
        YouTube8M().load(tmp_path / "nowhere", seed=0)
    assert DATASET_URL in str(err.value) and "nowhere" in str(err.value)
    write_vocabulary(tmp_path / "vocabulary.csv")
    with pytest.raises(DataError, match="missing train\\*.tfrecord, validate\\*.tfrecord"):
        YouTube8M().load(tmp_path, seed=0)
    with pytest.raises(DataError, match=DATASET_URL):
        YouTube8M().load(None, seed=0)


def test_corrupt_shard_names_file_and_record(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    shard = tmp_path / "train0001.tfrecord"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # inside the last record's payload
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train0001\.tfrecord: record 2 "):
        YouTube8M().load(tmp_path, seed=0)


def test_impossible_record_length_with_crc_checks_off(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    shard = tmp_path / "train0001.tfrecord"
    raw = bytearray(shard.read_bytes())
    raw[:8] = struct.pack("<Q", 2**64 - 1)  # length field of record 0
    shard.write_bytes(bytes(raw))
    pattern = r"train0001\.tfrecord: record 0 \(0-based\): length field says .*truncated or corrupt"
    with pytest.raises(DataError, match=pattern):
        YouTube8M(verify_crc=False).load(tmp_path, seed=0)


@pytest.mark.parametrize("name", ["train0002.tfrecord", "validate0001.tfrecord", "vocabulary.csv"])
def test_directory_named_like_a_data_file(tmp_path: Path, name: str) -> None:
    write_dataset(tmp_path)
    if name == "vocabulary.csv":
        (tmp_path / name).unlink()
    (tmp_path / name).mkdir()
    pattern = rf"{re.escape(str(tmp_path / name))} is a directory, but its name makes it a YouTube8M data file"
    with pytest.raises(DataError, match=pattern):
        YouTube8M().load(tmp_path, seed=0)


def test_frame_level_or_wrong_size_features_are_rejected(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    bad = encode_example(
        {"id": bytes_feature([b"v"]), "labels": int64_feature([0]), "mean_rgb": float_feature(np.zeros(10))}
    )
    write_tfrecord(tmp_path / "train0002.tfrecord", [bad])
    with pytest.raises(DataError, match=r"train0002\.tfrecord: record 0 .*'mean_rgb' must be 1024 floats"):
        YouTube8M().load(tmp_path, seed=0)


def test_registered_with_audio_only_option(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    suite = Suite.registry.get("youtube8m")(num_verticals=2, features=["mean_audio"])
    data = suite.load(tmp_path, seed=0)
    assert data.input_dim == 128 and data.train.x.shape == (8, 128)
