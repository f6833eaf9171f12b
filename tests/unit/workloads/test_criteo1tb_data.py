"""Criteo 1TB data: upstream's hashing (checked against pyfarmhash), parsing, splits, batches."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from algoperf.data import DataError
from algoperf.data import cli as data_cli
from algoperf.data.download import DiskSpaceError
from workloads.criteo1tb import data, testing

farmhash = pytest.importorskip("farmhash", reason="pyfarmhash (dev extra) is the hashing oracle")


def _expected_row(line: str) -> tuple[int, np.ndarray, np.ndarray]:
    """Upstream's `_parse_example_fn` for one line, written out scalar by scalar."""
    fields = line.split("\t")
    label = int(fields[0])
    dense = []
    for v in fields[1:14]:
        x = np.float32(0.0 if v in ("", "-1") else float(v))
        dense.append(np.log(np.maximum(x, np.float32(0)) + np.float32(1)))
    cat = []
    for col, v in enumerate(fields[14:]):
        v = "00000000" if v in ("", "-1") else v
        h = farmhash.fingerprint64(v + str(col)) % data.RAW_VOCAB_SIZES[col]
        cat.append(int(np.float32(h)))
    return label, np.array(dense, np.float32), np.array(cat, np.int64)


def test_vectorised_fingerprint64_matches_pyfarmhash_on_random_values():
    rng = random.Random(7)
    values = [f"{rng.getrandbits(32):08x}" for _ in range(500)] + ["00000000", "ffffffff"]
    words = np.frombuffer("".join(values).encode(), "<u8")
    for col in (0, 5, 9, 10, 25):
        got = data.hash_categorical(words, col)
        want = [int(np.float32(farmhash.fingerprint64(v + str(col)) % data.RAW_VOCAB_SIZES[col]))
                for v in values]  # fmt: skip
        np.testing.assert_array_equal(got, want)


def test_ids_above_2_pow_24_are_rounded_through_float32_as_upstream():
    rng = random.Random(1)
    values = [f"{rng.getrandbits(32):08x}" for _ in range(2000)]
    raw = [farmhash.fingerprint64(v + "0") % data.RAW_VOCAB_SIZES[0] for v in values]
    got = data.hash_categorical(np.frombuffer("".join(values).encode(), "<u8"), 0)
    big = [i for i, r in enumerate(raw) if r > 2**25 and r % 4]  # float32 spacing 4 there
    assert big, "column 0 (vocabulary 39.9M) has ids above 2**25"
    assert all(int(got[i]) != raw[i] and int(got[i]) == int(np.float32(raw[i])) for i in big)


def test_parse_lines_handles_empty_minus_one_and_odd_values():
    lines = testing.fixture_lines(np.random.default_rng(3), 300)
    lines.append("\t".join(["1", *[""] * 13, *[""] * 26]))  # every field missing
    lines.append("\t".join(["0", *["-1"] * 13, *["-1"] * 26]))  # every field -1
    lines.append("\t".join(["0", "123456789", *["7"] * 12, "abc", *["0a1b2c3d"] * 25]))  # 3 bytes
    out = data.parse_lines(("\n".join(lines) + "\n").encode())
    assert out["dense"].dtype == np.float32 and out["cat"].dtype == np.int32
    for i, line in enumerate(lines):
        label, dense, cat = _expected_row(line)
        assert out["labels"][i] == label
        np.testing.assert_array_equal(out["dense"][i], dense)
        np.testing.assert_array_equal(out["cat"][i], cat)
    np.testing.assert_array_equal(out["cat"][-3], out["cat"][-2])  # empty == -1 == '00000000'
    assert not out["dense"][-2].any()


@pytest.mark.parametrize(
    ("line", "what"),
    [("1\t2\t3", "has 2 tabs"), ("x" + "\t0" * 39, "label"), ("0\t1a" + "\t0" * 38, "non-integer")],
)
def test_malformed_lines_name_the_file_and_line(line, what):
    good = "\t".join(["0"] * 40)
    with pytest.raises(DataError, match=rf"day_4.gz: line 2 .*{what}.*re-download"):
        data.parse_lines(f"{good}\n{line}\n".encode(), Path("day_4.gz"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("criteo")
    source = root / "source"
    days = testing.write_days(source)
    dest = data.prepare(root, source, rows_per_file=testing.FIXTURE_ROWS_PER_FILE, progress=False)
    return root, source, dest, days


def test_prepare_writes_upstream_files_and_splits(prepared):
    root, _, dest, days = prepared
    rows = testing.FIXTURE_ROWS_PER_FILE
    assert len(data.split_files(root, "test")) == 19
    assert data.split_files(root, "validation") == [f"day_23_{i:02d}" for i in range(19, 36)]
    assert data.split_files(root, "train")[:3] == ["day_0_00", "day_0_01", "day_1_00"]
    info = json.loads((dest / ".algoperf_manifest.json").read_text())
    assert info["splits"] == {
        "train": 23 * testing.FIXTURE_TRAIN_ROWS_PER_DAY,
        "test": 19 * rows,
        "validation": testing.FIXTURE_DAY_23_ROWS - 19 * rows,
    }
    # Every stored row is upstream's preprocessing of the same line of the day file.
    for day, index in ((0, 1), (23, 0), (23, 35)):
        name = data.shard_name(day, index)
        lines = days[day][index * rows : (index + 1) * rows]
        labels = np.load(dest / f"{name}.labels.npy")
        dense, cat = np.load(dest / f"{name}.dense.npy"), np.load(dest / f"{name}.cat.npy")
        assert len(labels) == len(lines)
        for i, line in enumerate(lines):
            label, d, c = _expected_row(line)
            assert labels[i] == label
            np.testing.assert_array_equal(dense[i], d)
            np.testing.assert_array_equal(cat[i], c)


def test_prepare_is_idempotent_and_resumes_by_day(prepared, tmp_path, monkeypatch):
    root, source, dest, _ = prepared
    calls = []
    real = data.convert_day
    monkeypatch.setattr(data, "convert_day", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    assert data.prepare(root, source, rows_per_file=32, progress=False) == dest
    assert calls == []
    # A run killed during day 5: its done-record is gone, so only day 5 is converted again.
    other = tmp_path / "copy"
    (other / "criteo1tb").mkdir(parents=True)
    for f in dest.iterdir():
        if f.name != ".algoperf_manifest.json" and f.is_file():
            (other / "criteo1tb" / f.name).write_bytes(f.read_bytes())
    (other / "criteo1tb" / "day_5.done.json").unlink()
    data.prepare(other, source, rows_per_file=32, progress=False)
    assert calls == [5]
    assert data.split_files(other, "train") == data.split_files(root, "train")


def test_prepare_errors_are_one_line_with_the_fix(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"missing day_0.gz, .*day_23.gz; download the 24"):
        data.prepare(tmp_path, tmp_path)
    testing.write_days(tmp_path / "src", train_rows_per_day=4, day_23_rows=40)
    with pytest.raises(DataError, match=r"day_23.gz: 2 files .* more than 19; use the complete"):
        data.prepare(tmp_path, tmp_path / "src", rows_per_file=32, progress=False)
    monkeypatch.setattr(data, "BYTES_PER_ROW", 10**15)
    with pytest.raises(DiskSpaceError, match=r"criteo1tb .* free"):
        data.prepare(tmp_path / "b", tmp_path / "src", rows_per_file=32, progress=False)
    with gzip.open(tmp_path / "src" / "day_0.gz", "wb") as f:
        f.write(b"0\t1\n")
    monkeypatch.setattr(data, "BYTES_PER_ROW", 1)
    with pytest.raises(DataError, match=r"day_0.gz: line 1 has 1 tabs"):
        data.prepare(tmp_path / "c", tmp_path / "src", rows_per_file=32, progress=False)
    with pytest.raises(DataError, match="not prepared; run `algoperf datasets prepare criteo1tb"):
        data.split_files(tmp_path / "d", "train")


def test_train_batches_shuffle_files_only_and_drop_the_remainder(prepared):
    root, _, dest, _ = prepared
    it = data.train_batches(root, 50, seed=3)
    per_epoch = 23 * testing.FIXTURE_TRAIN_ROWS_PER_DAY // 50
    batches = [next(it) for _ in range(per_epoch + 1)]
    assert set(batches[0]) == {"inputs", "targets"}
    assert batches[0]["inputs"].shape == (50, 39) and batches[0]["inputs"].dtype == np.float32
    # The epoch is the train files in a permutation, each read in order.
    order = np.random.default_rng([3, 0]).permutation(len(data.split_files(root, "train")))
    names = [data.split_files(root, "train")[i] for i in order]
    rows = np.concatenate([np.load(dest / f"{n}.cat.npy") for n in names]).astype(np.float32)
    got = np.concatenate([b["inputs"][:, 13:] for b in batches[:per_epoch]])
    np.testing.assert_array_equal(got, rows[: per_epoch * 50])
    assert not np.array_equal(batches[per_epoch]["inputs"], batches[0]["inputs"])  # new epoch
    again = data.train_batches(root, 50, seed=3)
    np.testing.assert_array_equal(next(again)["inputs"], batches[0]["inputs"])


def test_eval_batches_pad_with_zero_weight_and_cap(prepared):
    root, _, _, _ = prepared
    val = list(data.eval_batches(root, "validation", 256))
    n_val = testing.FIXTURE_DAY_23_ROWS - 19 * testing.FIXTURE_ROWS_PER_FILE
    assert [b["inputs"].shape for b in val] == [(256, 39)] * 3
    assert sum(b["weights"].sum() for b in val) == n_val
    assert not val[-1]["inputs"][n_val - 512 :].any()
    capped = list(data.eval_batches(root, "eval_train", 100, num_examples=150, seed=1))
    assert [int(b["weights"].sum()) for b in capped] == [100, 50]
    same = list(data.eval_batches(root, "eval_train", 100, num_examples=150, seed=1))
    np.testing.assert_array_equal(same[1]["inputs"], capped[1]["inputs"])


def test_train_batches_resume_at_any_step(prepared):
    """``start_step`` k gives batch k onwards, across an epoch boundary too."""
    root = prepared[0]
    full = data.train_batches(root, 50, seed=3)
    batches = [next(full) for _ in range(40)]  # 29 batches an epoch
    for start in (0, 5, 29, 31):
        resumed = data.train_batches(root, 50, seed=3, start_step=start)
        for want in batches[start : start + 3]:
            np.testing.assert_array_equal(next(resumed)["inputs"], want["inputs"])


def test_shards_are_the_rows_of_the_unsharded_batches(prepared):
    """Each of W ranks reads its contiguous B / W rows of every global batch (train and eval,
    the padded last eval batch included) and nothing else."""
    root = prepared[0]
    world = 4
    train = data.train_batches(root, 48, seed=1, start_step=27)
    ranks = [
        data.train_batches(root, 48, seed=1, start_step=27, shard=(r, world)) for r in range(4)
    ]
    for _ in range(4):
        whole = next(train)
        parts = [next(it) for it in ranks]
        for key in whole:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])
    whole = list(data.eval_batches(root, "validation", 96, num_examples=500))
    for r in range(world):
        part = list(data.eval_batches(root, "validation", 96, num_examples=500, shard=(r, world)))
        assert len(part) == len(whole) == 6
        for a, b in zip(part, whole, strict=True):
            for key in b:
                np.testing.assert_array_equal(a[key], b[key][r * 24 : (r + 1) * 24])
    assert sum(b["weights"].sum() for b in whole) == 500
    with pytest.raises(ValueError, match=r"shard \(0, 5\).*divisible"):
        next(data.eval_batches(root, "validation", 96, shard=(0, 5)))


def test_split_sizes_from_the_manifest(prepared):
    sizes = data.split_sizes(prepared[0])
    assert sizes == {"train": 1472, "validation": 522, "test": 608}


def test_cli_fixture_prepares_the_real_format(tmp_path, capsys):
    assert data_cli.main(["prepare", "criteo1tb", "--fixture", f"--data_dir={tmp_path}"]) == 0
    assert (tmp_path / "criteo1tb" / "source" / "day_23.gz").is_file()
    fixture = json.loads((tmp_path / "criteo1tb" / "fixture.json").read_text())
    assert fixture["config"]["num_validation_examples"] == 522
    assert len(data.split_files(tmp_path, "validation")) == 17


def test_synthetic_batch_layout():
    b = data.synthetic_batch(None, 8, seed=0)
    assert b["inputs"].shape == (8, 39) and b["targets"].shape == (8,)
    assert np.all(b["inputs"][:, 13:] < np.array(data.RAW_VOCAB_SIZES))


def test_parallel_days_give_the_same_shards(prepared, tmp_path):
    root, source, dest, _ = prepared
    other = data.prepare(tmp_path, source, rows_per_file=32, workers=2, progress=False)
    for name in ("day_0_01", "day_22_00", "day_23_35"):
        for key in ("labels", "dense", "cat"):
            a, b = (np.load(d / f"{name}.{key}.npy") for d in (dest, other))
            np.testing.assert_array_equal(a, b)
    assert data.split_files(tmp_path, "validation") == data.split_files(root, "validation")


def test_cli_prepare_forwards_the_source_dir_and_workers(prepared, tmp_path, capsys):
    _, source, _, _ = prepared
    assert data_cli.main(["prepare", "criteo1tb", f"--data_dir={tmp_path}"]) != 0
    assert "pass --criteo1tb_source_dir DIR" in capsys.readouterr().err
    argv = ["prepare", "criteo1tb", f"--data_dir={tmp_path}", f"--criteo1tb_source_dir={source}"]
    # Upstream's 5M-line files: the tiny day 23 is one file, too few for the validation split.
    assert data_cli.main([*argv, "--criteo1tb_workers=2"]) != 0
    assert "day_23.gz: 1 files of 5,000,000 rows" in capsys.readouterr().err
    assert len(json.loads((tmp_path / "criteo1tb" / "day_7.done.json").read_text())["sizes"]) == 1
