"""finewebedu_lm: the spec's upstream numbers, and the data pipeline on parquet fixtures."""

from __future__ import annotations

from scoring import targets as tg
from workloads.finewebedu_lm.spec import FINEWEBEDU_LM


def test_spec_follows_upstream_workload_numbers():
    c = FINEWEBEDU_LM
    assert (c.max_allowed_runtime_sec, c.eval_period_time_sec, c.step_hint) == (
        31_967,
        2_571,
        72_000,
    )
    assert (c.eval_batch_size, c.num_train_examples, c.num_eval_train_examples) == (
        256,
        8_749_870,
        10_000,
    )
    assert (c.num_validation_examples, c.num_test_examples) == (100_000, None)
    assert (c.validation_target_value, c.maximize) == (22.432, False)


def test_runner_target_is_inclusive_and_scoring_keeps_its_own_target():
    c = FINEWEBEDU_LM
    assert c.reached(22.432, c.validation_target_value)  # upstream compares with <=
    assert not c.reached(22.4321, c.validation_target_value)
    # Every other workload stays strict.
    from workloads.wmt.spec import WMT

    assert not WMT.reached(WMT.validation_target_value, WMT.validation_target_value)
    current = tg.load_targets("current").workloads["finewebedu_lm"]
    assert (current.validation_target_value, current.max_allowed_runtime_sec) == (22.2995, 31_967)


# --- data pipeline on fixtures in the real formats --------------------------------------------------
import functools  # noqa: E402
import hashlib  # noqa: E402
import http.server  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install 'algoperf[text]'")
pytest.importorskip("tiktoken", reason="tiktoken not installed: pip install 'algoperf[text]'")

from algoperf.data import DataError, DatasetError  # noqa: E402
from algoperf.data.download import DiskSpaceError  # noqa: E402
from workloads.finewebedu_lm import data, testing  # noqa: E402


@pytest.fixture()
def source(tmp_path: Path) -> tuple[Path, Path]:
    src = testing.write_source(tmp_path / "src", num_files=3, docs_per_file=12)
    return src, testing.write_ranks(tmp_path / "fixture.tiktoken")


def _prepare(tmp_path: Path, src: Path, ranks: Path, **kw) -> Path:
    return data.prepare(
        tmp_path / "data",
        parquet_dir=src,
        ranks_file=ranks,
        validation_sequences=2,
        offline=True,
        progress=False,
        **kw,
    )


def test_windows_are_the_document_stream_with_eos(tmp_path, source):
    src, ranks = source
    dest = _prepare(tmp_path, src, ranks)
    val, train = (
        data.load_windows(tmp_path / "data", "validation"),
        data.load_windows(tmp_path / "data", "train"),
    )
    assert val.dtype == np.uint16 and val.shape == (2, data.WINDOW)
    stream = np.concatenate([val.reshape(-1), train.reshape(-1)])
    # Independent expectation: every document's text in file order, EOS after each.
    import pyarrow.parquet as pq

    texts = [
        t for f in sorted(src.rglob("*.parquet")) for t in pq.read_table(f)["text"].to_pylist()
    ]
    enc = data.load_encoding(ranks)
    eos = enc.eot_token
    assert eos == 256 + len(testing._MERGES)
    pieces = np.split(stream, np.flatnonzero(stream == eos) + 1)
    assert [enc.decode(p[:-1].tolist()) for p in pieces[:-1]] == texts[: len(pieces) - 1]
    assert len(stream) == (len(stream) // data.WINDOW) * data.WINDOW  # whole windows, rest dropped
    total = sum(len(enc.encode_ordinary(t)) + 1 for t in texts)
    assert len(stream) == (total // data.WINDOW) * data.WINDOW
    b = data.window_batch(train, np.array([1, 0]))
    assert b["inputs"].shape == (2, 1024) and b["targets"].shape == (2, 1024)
    np.testing.assert_array_equal(b["inputs"][0, 1:], b["targets"][0, :-1])
    np.testing.assert_array_equal(b["targets"][1], train[0, 1:])
    meta = (dest / "meta.json").read_text()
    assert '"validation": 2' in meta


def test_prepare_is_idempotent_and_resumes_after_interruption(tmp_path, source, monkeypatch):
    src, ranks = source
    clean = _prepare(tmp_path / "clean", src, ranks)
    real = data.encode_file
    calls: list[str] = []

    def failing(path, encoding, eos_id):
        calls.append(path.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted while converting the second file
        return real(path, encoding, eos_id)

    monkeypatch.setattr(data, "encode_file", failing)
    with pytest.raises(KeyboardInterrupt):
        _prepare(tmp_path, src, ranks)
    monkeypatch.setattr(
        data, "encode_file", lambda p, e, i: (calls.append(p.name), real(p, e, i))[1]
    )
    dest = _prepare(tmp_path, src, ranks)
    assert calls == [
        "000_00000.parquet",
        "001_00000.parquet",
        "001_00000.parquet",
        "002_00000.parquet",
    ]
    for split in data.SPLITS:
        assert (dest / f"{split}.bin").read_bytes() == (clean / f"{split}.bin").read_bytes()
    calls.clear()
    mtime = os.stat(dest / "train.bin").st_mtime_ns
    assert _prepare(tmp_path, src, ranks) == dest and calls == []
    assert os.stat(dest / "train.bin").st_mtime_ns == mtime


def test_clear_errors(tmp_path, source, monkeypatch):
    src, ranks = source
    with pytest.raises(DataError, match=r"r50k_base\.tiktoken.*openai-whisper"):
        data.prepare(tmp_path / "d1", parquet_dir=src, offline=True, progress=False)
    bad = tmp_path / "bad" / "000_00000.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"000_00000\.parquet: not a readable parquet file"):
        data.prepare(tmp_path / "d2", parquet_dir=bad.parent, ranks_file=ranks, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.parquet files; download them"):
        data.prepare(
            tmp_path / "d3", parquet_dir=tmp_path / "empty", ranks_file=ranks, progress=False
        )
    with pytest.raises(DataError, match="lower --finewebedu_validation_sequences"):
        data.prepare(
            tmp_path / "d4",
            parquet_dir=src,
            ranks_file=ranks,
            validation_sequences=10**6,
            progress=False,
        )
    with pytest.raises(DataError, match="not prepared; run `algoperf datasets prepare finewebedu"):
        data.prepare(tmp_path / "d5")
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 10))
    with pytest.raises(DiskSpaceError, match="finewebedu token stream needs"):
        data.prepare(tmp_path / "d6", parquet_dir=src, ranks_file=ranks, progress=False)


def test_ranks_file_is_downloaded_with_its_checksum(tmp_path, source, monkeypatch):
    src, ranks = source
    served = tmp_path / "www"
    served.mkdir()
    (served / "r.tiktoken").write_bytes(ranks.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(data, "RANKS_URL", f"http://127.0.0.1:{server.server_port}/r.tiktoken")
        monkeypatch.setattr(data, "RANKS_SHA256", "0" * 64)

        def no_index(spec, dest, cache=None):
            raise DatasetError(f"no index for {spec.requirement}")

        monkeypatch.setattr(data.index_files, "fetch_member", no_index)
        with pytest.raises(
            DataError, match=r"could not download r50k_base\.tiktoken.*and from the package index"
        ):
            data.prepare(tmp_path / "d", parquet_dir=src, validation_sequences=2, progress=False)
        monkeypatch.setattr(data, "RANKS_SHA256", hashlib.sha256(ranks.read_bytes()).hexdigest())
        dest = data.prepare(tmp_path / "d", parquet_dir=src, validation_sequences=2, progress=False)
    finally:
        server.shutdown()
    assert (dest / "r50k_base.tiktoken").read_bytes() == ranks.read_bytes()
    assert data.load_windows(tmp_path / "d", "validation").shape == (2, data.WINDOW)


def test_unreachable_ranks_url_falls_back_to_the_whisper_sdist_on_the_index(
    tmp_path, source, monkeypatch
):
    src, ranks = source
    monkeypatch.setattr(data, "RANKS_URL", "http://127.0.0.1:9/r50k_base.tiktoken")
    asked = []

    def from_index(spec, dest, cache=None):
        asked.append(spec.member)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(ranks.read_bytes())
        return dest

    monkeypatch.setattr(data.index_files, "fetch_member", from_index)
    dest = data.prepare(tmp_path / "d", parquet_dir=src, validation_sequences=2, progress=False)
    assert asked == ["openai_whisper-20250625/whisper/assets/gpt2.tiktoken"]
    assert (dest / "gpt2.tiktoken").read_bytes() == ranks.read_bytes()


@pytest.fixture(scope="module")
def real_gpt2_ranks(tmp_path_factory) -> Path:
    """GPT-2's ranks: $ALGOPERF_GPT2_RANKS, else from the openai-whisper sdist on the index."""
    path = os.environ.get("ALGOPERF_GPT2_RANKS")
    if path and Path(path).is_file():
        return Path(path)
    dest = tmp_path_factory.mktemp("gpt2") / "gpt2.tiktoken"
    try:
        return data.index_files.fetch_member(data.GPT2_RANKS_ON_INDEX, dest)
    except DatasetError as exc:
        pytest.skip(f"no GPT-2 ranks file ($ALGOPERF_GPT2_RANKS) and no package index: {exc}")


def test_real_gpt2_ranks_encode_as_gpt2(real_gpt2_ranks):
    enc = data.load_encoding(real_gpt2_ranks)
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert (enc.eot_token, enc.n_vocab) == (data.EOS_ID, data.VOCAB_SIZE)
