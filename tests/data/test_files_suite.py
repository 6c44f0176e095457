"""The ``files`` suite: a user's CSV, Parquet or .npz file, its inferred task kinds, partial labels,
splits, scaling and every bad input, and the standard battery on it end to end (suite init -> run ->
table -> report). Every file is written by the test in its real format (pandas, pyarrow, numpy)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data import DataError, MultiLabelData, SingleLabelData, load_suite
from routing_rl.data.families import task_family


def table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two features that carry the labels, a string task, an int-class task, a binary task, a regression."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    return pd.DataFrame({
        "a": a * 10 + 100, "b": b,
        "colour": np.where(a > 0.3, "red", np.where(a < -0.3, "blue", "green")),
        "grade": (b > 0).astype(int) + (a > 0).astype(int),
        "flag": a + b > 0,
        "mass": 3 * a - b + 0.1 * rng.standard_normal(n),
    })  # fmt: skip


def load(path, **options):
    return load_suite("files", seed=0, path=str(path), **options)


def test_csv_classification_infers_kinds_and_leaves_unlabelled_rows_out_of_their_task_only(tmp_path):
    frame = table()
    frame["flag"] = frame["flag"].astype(object)
    frame.loc[[1, 4, 7], "flag"] = None  # partly labelled: flag is missing in three rows
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = load(tmp_path / "t.csv", tasks="colour,grade,flag", kinds="grade:multi-class", features="a,b")
    assert isinstance(data, SingleLabelData) and data.input_shape == (2,)
    assert data.info["kinds"] == {"colour": "multi-class", "grade": "multi-class", "flag": "binary"}
    assert data.info["labels"]["colour"] == ["blue", "green", "red"] and data.info["labels"]["grade"] == ["0", "1", "2"]
    rows = {t: sum(int((s.tasks == t).sum()) for s in (data.train, data.val, data.test)) for t in range(3)}
    assert rows == {0: 60, 1: 60, 2: 57}
    examples = sum(int(s.inputs.shape[0]) for s in (data.train, data.val, data.test))
    assert examples == 60 and data.info["rows"] == {"train": 43, "val": 5, "test": 12}
    x = data.train.inputs.double()  # standardised with the training rows' own mean and std
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert not torch.allclose(data.test.inputs.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6)


def test_seed_fixes_the_drawn_splits_and_split_seed_decouples_them(tmp_path):
    table().to_csv(tmp_path / "t.csv", index=False)
    test_rows = lambda **kw: load_suite("files", path=str(tmp_path / "t.csv"), tasks="colour", features="a,b", **kw).test.inputs
    assert torch.equal(test_rows(seed=3), test_rows(seed=3))
    assert not torch.equal(test_rows(seed=3), test_rows(seed=4))
    assert torch.equal(test_rows(seed=3, split_seed=9), test_rows(seed=4, split_seed=9))


def test_given_splits_by_column_and_by_files(tmp_path):
    frame = table()
    frame["part"] = ["test"] * 10 + ["val"] * 5 + ["train"] * 45
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = load(tmp_path / "t.csv", tasks="colour", split="part")  # features: every other column
    assert data.info["rows"] == {"train": 45, "val": 5, "test": 10} and data.info["features"] == ["a", "b", "grade", "flag", "mass"]
    frame.iloc[:50].drop(columns="part").to_parquet(tmp_path / "train.parquet")
    frame.iloc[50:].drop(columns="part").to_parquet(tmp_path / "test.parquet")
    data = load(tmp_path / "train.parquet", tasks="colour", features="a,b", test_path=str(tmp_path / "test.parquet"))
    assert data.info["rows"] == {"train": 45, "val": 5, "test": 10}


def test_parquet_regression_with_partial_targets_trains_and_scores_the_labelled_entries(tmp_path):
    frame = table()
    frame.loc[::4, "mass"] = np.nan
    frame[["a", "b", "mass", "grade"]].to_parquet(tmp_path / "r.parquet")
    data = load(tmp_path / "r.parquet", tasks="mass,grade", kinds="grade:regression", features="a,b")
    assert isinstance(data, MultiLabelData) and data.problem == "regression" and data.labels_per_task == [1, 1]
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    assert int(torch.isnan(y[:, 0]).sum()) == 15 and not torch.isnan(y[:, 1]).any()
    labelled = data.train.y[:, 0, 0][~torch.isnan(data.train.y[:, 0, 0])]
    assert abs(float(labelled.mean())) < 1e-5  # scaled by the labelled training rows
    family = task_family(data)
    batch = family.gather(data.test, torch.arange(len(data.test)), torch.device("cpu"))
    scorer = family.scorer()
    scorer.update(torch.zeros_like(batch.y), batch)
    score = scorer.result()
    seen = ~torch.isnan(batch.y[:, 0, 0])
    assert score.counts == [int(seen.sum()), len(data.test)]
    assert score.per_task[0] == pytest.approx(float(batch.y[seen, 0, 0].double().square().mean()))
    assert torch.isfinite(family.model_loss(torch.zeros_like(batch.y), batch))


def test_multi_label_from_a_list_column_and_from_0_1_columns(tmp_path):
    frame = table(40)
    frame["tags"] = [["x", "y"] if g == 2 else (["y"] if g == 1 else []) for g in frame["grade"]]
    frame["tags"] = frame["tags"].astype(object)
    frame.loc[3, "tags"] = None
    frame["t1"], frame["t2"] = (frame["grade"] > 0).astype(int), (frame["grade"] > 1).astype(int)
    frame[["a", "b", "tags", "t1", "t2"]].to_parquet(tmp_path / "m.parquet")
    data = load(tmp_path / "m.parquet", tasks="tags,both:t1+t2", features="a,b", test_fraction=0.3)
    assert data.problem == "multilabel" and data.info["kinds"] == {"tags": "multi-label", "both": "multi-label"}
    assert data.label_names == [["x", "y"], ["t1", "t2"]]
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    assert int(torch.isnan(y[:, 0, 0]).sum()) == 1 and int(torch.isnan(y).sum()) == 2


def test_npz_images_get_the_conv_stack_and_vectors_fc_blocks(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    images = (rng.random((50, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / "img.npz", x=images, digit=labels, odd=labels % 2)
    data = load(tmp_path / "img.npz", tasks="digit,odd", kinds="digit:multi-class")
    assert data.input_shape == (1, 8, 8) and data.train.inputs.dtype == torch.uint8 and len(data.train.mean) == 1
    x, _, _ = data.train.gather(torch.arange(len(data.train)))
    assert abs(float(x.mean())) < 0.05
    from routing_rl.network.spec import build_layer_specs

    assert build_layer_specs(data.input_shape)[0].kind == "conv" and build_layer_specs((5,))[0].kind == "fc"


def write(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (lambda p: write(p, table()), {"tasks": "colour,nope"}, "no column 'nope' for task 'nope'; columns: a, b"),
        (lambda p: write(p, table().assign(one="same")), {"tasks": "one", "features": "a"}, "task 'one' has one class ('same')"),
        (lambda p: write(p, table().assign(none=np.nan)), {"tasks": "colour,none", "features": "a"}, "task 'none' has no labelled row"),
        (lambda p: write(p, table().assign(a=np.nan)), {"tasks": "colour", "features": "a,b"}, "feature column 'a' has no value in any training row"),
        (lambda p: write(p, table().assign(b=[np.inf] + [0.0] * 59), "bad.parquet"), {"tasks": "colour", "features": "a,b"}, "row 1, column 'b' is infinite"),
        (lambda p: write(p, table()), {"tasks": "colour", "kinds": "colour:binary", "features": "a"}, "stated binary but its values make it multi-class"),
        (lambda p: write(p, table().assign(part="x")), {"tasks": "colour", "split": "part"}, "row 1 of split column 'part' holds 'x'"),
    ],
)
def test_bad_tables_name_the_file_and_the_column_or_row(tmp_path, make, options, message):
    path = make(tmp_path)
    with pytest.raises(DataError) as error:
        load(path, **options)
    assert str(path) in str(error.value) or "files:" in str(error.value)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_files_npz_lengths_empty_unknown_and_too_large(tmp_path, monkeypatch):
    np.savez(tmp_path / "x.npz", x=np.zeros((5, 3)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"x.npz: array 'y' has 4 rows but 'x' has 5"):
        load(tmp_path / "x.npz", tasks="y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load(tmp_path / "empty.csv", tasks="y")
    (tmp_path / "header.csv").write_text("a,y\n")
    with pytest.raises(DataError, match="header.csv: the file has no rows"):
        load(tmp_path / "header.csv", tasks="y")
    with pytest.raises(DataError, match=r"unknown file format '.xlsx'"):
        load(tmp_path / "t.xlsx", tasks="y")
    table().to_parquet(tmp_path / "big.parquet")
    import routing_rl.data.table_files as table_files

    monkeypatch.setattr(table_files, "available_memory", lambda: 1000)
    monkeypatch.setattr("pandas.read_parquet", lambda *a, **k: pytest.fail("read before the size check"))
    with pytest.raises(DataError, match=r"big.parquet: reading it needs about .* of memory, but this machine has 1.0 kB"):
        load(tmp_path / "big.parquet", tasks="colour")


def test_cli_refuses_bad_data_in_one_line_and_writes_no_run_directory(tmp_path):
    write(tmp_path, table().assign(a=np.nan))
    logdir = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--env", "files", "-e", f"path={tmp_path / 'bad.csv'}", "-e", "tasks=colour",
                                       "--logdir", str(logdir), "--quiet"])  # fmt: skip
    assert result.exit_code == 1 and "feature column 'a' has no value in any training row" in result.output and "Traceback" not in result.output
    assert not logdir.exists()


def test_the_battery_runs_end_to_end_with_verdicts_and_figures(tmp_path):
    table(48).to_csv(tmp_path / "d.csv", index=False)
    suite_file, out = tmp_path / "battery.toml", tmp_path / "suite"
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", "-e", f"path={tmp_path / 'd.csv'}",
                                     "-e", "tasks=colour,flag", "-e", "features=a,b", "--out", str(suite_file),
                                     "--seeds", "2", "--epochs", "1"])  # fmt: skip
    assert init.exit_code == 0, init.output
    assert "8 methods x 2 seeds" in init.output and "single-label tasks scored by accuracy" in init.output
    from routing_rl.suites.spec import tomllib  # tomli on Python 3.10

    spec = tomllib.loads(suite_file.read_text())
    assert list(spec["runs"]) == ["shared-bottom", "no-sharing", "fixed-random", "wpl", "reinforce", "hard-concrete", "snr-trans", "mmoe"]
    assert spec["suite"]["baseline"] == "shared-bottom"
    run = CliRunner().invoke(main, ["suite", "run", str(suite_file), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "16 trials trained" in run.output
    result = CliRunner().invoke(main, ["suite", "table", str(suite_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    verdicts = [line for line in result.output.splitlines() if " beats shared-bottom: " in line]
    assert len(verdicts) == 7 and all((": yes, p = " in v) or (": no, p = " in v) for v in verdicts)
    references = [line for line in result.output.splitlines() if line.startswith("| reference: ")]
    assert [line.split(" | ")[0] for line in references] == ["| reference: majority class / mean", "| reference: linear model"] * 2
    assert [line.split(" | ")[1] for line in references[:2]] == ["2", "2"]  # both seeds, each on its own split
    assert "reference:" not in "".join(verdicts) and (out / "references.json").is_file()
    figures = CliRunner().invoke(main, ["report", str(out), "--out", str(tmp_path / "fig")])
    assert figures.exit_code == 0, figures.output
    assert list((tmp_path / "fig").glob("*.png"))
    trial = next(out.glob("wpl-s0-*"))
    assert json.loads((trial / "results.json").read_text())["env"]["task_names"] == ["colour", "flag"]


def test_suite_run_checks_the_file_before_writing_its_directory(tmp_path):
    table().to_csv(tmp_path / "d.csv", index=False)
    suite_file, out = tmp_path / "battery.toml", tmp_path / "suite"
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", "-e", f"path={tmp_path / 'd.csv'}",
                                     "-e", "tasks=colour", "-e", "features=a,b", "--out", str(suite_file)])  # fmt: skip
    assert init.exit_code == 0, init.output
    table().assign(b=np.nan).to_csv(tmp_path / "d.csv", index=False)  # the file went bad after init
    result = CliRunner().invoke(main, ["suite", "run", str(suite_file), "--out", str(out)])
    assert result.exit_code == 1 and "feature column 'b' has no value in any training row" in result.output and "Traceback" not in result.output
    assert not out.exists()
    again = CliRunner().invoke(main, ["suite", "init", "--env", "files", "-e", f"path={tmp_path / 'd.csv'}",
                                      "-e", "tasks=colour", "--out", str(suite_file)])  # fmt: skip
    assert again.exit_code == 1 and "exists" in again.output


def test_a_suite_file_reads_its_data_relative_to_its_own_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "suites").mkdir(parents=True)
    table(40).to_csv(project / "d.csv", index=False)
    monkeypatch.chdir(project)
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", "-e", "path=d.csv", "-e", "tasks=colour", "-e", "features=a,b",
                                     "--out", "suites/b.toml", "--seeds", "2", "--epochs", "1"])  # fmt: skip
    assert init.exit_code == 0, init.output
    assert 'path = "../d.csv"' in (project / "suites" / "b.toml").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    dry = CliRunner().invoke(main, ["suite", "run", str(project / "suites" / "b.toml"), "--dry-run", "--out", str(tmp_path / "s")])
    assert dry.exit_code == 0 and dry.output.count("new ") == 16, dry.output
    from routing_rl.suites.spec import load_suite_file

    trials = load_suite_file(project / "suites" / "b.toml").trials()
    assert {t.config.data_dir for t in trials} == {str((project / "suites").resolve())}
    from routing_rl.suites.runner import check_data

    check_data(trials)  # reads ../d.csv from the suite file's folder, not from the working directory
    moved = load_suite_file(project / "suites" / "b.toml").trials()[0]
    assert moved.name == trials[0].name  # the folder is not part of a trial's identity


def test_integer_targets_of_more_than_two_values_are_numbers_with_a_note_that_offers_kinds(tmp_path):
    frame = table(60)
    frame["visits"] = np.random.default_rng(2).poisson(2.0, 60)
    frame["smoker"] = (frame["a"] > 100).astype(int)
    frame.to_csv(tmp_path / "h.csv", index=False)
    data = load(tmp_path / "h.csv", tasks="visits,smoker", features="a,b")
    assert data.info["kinds"] == {"visits": "regression", "smoker": "binary"} and data.problem == "mixed"
    assert "state -e kinds=visits:multi-class" in data.info["notes"]["visits"] and "smoker" not in data.info["notes"]
    stated = load(tmp_path / "h.csv", tasks="visits", kinds="visits:multi-class", features="a,b")
    assert isinstance(stated, SingleLabelData) and stated.info["kinds"] == {"visits": "multi-class"}
