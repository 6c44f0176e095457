"""A table's feature columns encoded by their kind, every encoder fitted on the training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from routing_rl.data import DataError, load_suite
from routing_rl.data.feature_encoding import MAX_ONE_HOT, column_kind, encode_features
from routing_rl.data.table_files import Columns, read_columns


def columns(**values: list) -> Columns:
    arrays = {k: pd.Series(v).to_numpy() for k, v in values.items()}
    return Columns("t.csv", arrays, len(next(iter(arrays.values()))))


def test_each_column_kind_is_recognised_as_a_user_writes_it():
    assert column_kind(np.array([1.5, np.nan])) == "number"
    assert column_kind(np.array(["a", None], dtype=object)) == "string"
    assert column_kind(np.array([True, False])) == "boolean"
    assert column_kind(np.array(["True", "false", None], dtype=object)) == "boolean"
    assert column_kind(np.array(["2021-03-04", "2021-03-05T10:00:00"], dtype=object)) == "date"
    assert column_kind(np.array(["2021-03-04", "next week"], dtype=object)) == "string"


def test_strings_are_one_hot_with_the_categories_of_the_training_rows_only():
    data = columns(island=["a", "b", "a", "b", "c"])  # "c" only in a held-out row
    train = np.array([True, True, True, True, False])
    encoded = encode_features(data, ["island"], train, named=False)
    assert encoded.names == ["island=a", "island=b"]
    np.testing.assert_array_equal(encoded.x, [[1, 0], [0, 1], [1, 0], [0, 1], [0, 0]])  # unseen: all zeros
    assert encoded.described == ["island: string, 2 categories in training, one-hot"]


def test_a_column_of_many_categories_keeps_the_most_frequent_and_pools_the_rest_and_the_unseen():
    rng = np.random.default_rng(0)
    values = [f"zip{int(v)}" for v in rng.zipf(1.6, 400) % 80]
    train = np.arange(400) < 300
    encoded = encode_features(columns(zip=values + ["never-seen"]), ["zip"], np.append(train, False), named=True)
    assert encoded.x.shape[1] == MAX_ONE_HOT and encoded.names[-1] == "zip=(other)"
    assert encoded.x[-1].tolist() == [0.0] * (MAX_ONE_HOT - 1) + [1.0]  # the unseen category lands in (other)
    assert np.all(encoded.x.sum(axis=1) == 1.0)
    assert "pooled as (other)" in encoded.described[0]


def test_missing_numbers_are_filled_with_the_training_mean_and_flagged():
    data = columns(length=[1.0, 3.0, np.nan, 100.0])  # 100 is a held-out row: not in the mean
    encoded = encode_features(data, ["length"], np.array([True, True, True, False]), named=False)
    assert encoded.names == ["length", "length (missing)"]
    np.testing.assert_allclose(encoded.x, [[1, 0], [3, 0], [2, 1], [100, 0]])


def test_booleans_dates_and_missing_categories():
    data = columns(flag=["true", "False", "TRUE", "false"], day=["1970-01-02", "1970-01-11", "2000-01-01", "1970-01-01"],
                   colour=["red", None, "red", "blue"])  # fmt: skip
    encoded = encode_features(data, ["flag", "day", "colour"], np.ones(4, dtype=bool), named=False)
    assert encoded.names == ["flag", "day", "colour=(missing)", "colour=blue", "colour=red"]
    np.testing.assert_allclose(encoded.x[:, 0], [1, 0, 1, 0])
    np.testing.assert_allclose(encoded.x[:, 1], [1, 10, 10957, 0])  # days since 1970-01-01
    np.testing.assert_allclose(encoded.x[1, 2:], [1, 0, 0])


def test_an_id_column_is_left_out_by_default_and_encoded_when_named():
    ids = [f"person-{i}" for i in range(100)]
    data = columns(name=ids, height=list(np.linspace(1, 2, 100)))
    train = np.ones(100, dtype=bool)
    default = encode_features(data, ["name", "height"], train, named=False)
    assert default.names == ["height"] and default.left_out[0].startswith("name (text or an ID: 100 different values")
    named = encode_features(data, ["name", "height"], train, named=True)
    assert len(named.names) == MAX_ONE_HOT + 1


def test_an_infinite_feature_is_refused_by_row_and_column():
    with pytest.raises(DataError, match=r"row 2, column 'a' is infinite"):
        encode_features(columns(a=[1.0, np.inf]), ["a"], np.ones(2, dtype=bool), named=False)


def test_the_files_suite_reads_a_raw_table_with_strings_and_gaps_and_fits_on_training_rows(tmp_path):
    rng = np.random.default_rng(1)
    n = 80
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], n)
    mass = np.where(island == "Biscoe", 5000.0, 3700.0) + rng.normal(0, 100, n)
    bill = rng.normal(44, 5, n)
    bill[[3, 9]] = np.nan
    pd.DataFrame({"island": island, "bill": bill, "mass": mass, "species": np.where(mass > 4400, "Gentoo", "Adelie")}).to_csv(
        tmp_path / "p.csv", index=False)  # fmt: skip
    data = load_suite("files", seed=0, path=str(tmp_path / "p.csv"), tasks="species")
    assert data.info["features"] == ["island=Biscoe", "island=Dream", "island=Torgersen", "bill", "bill (missing)", "mass"]
    assert data.input_shape == (6,)
    assert read_columns(tmp_path / "p.csv").rows == n
