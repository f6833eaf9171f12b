"""ogbg data: pcba.zip preparation, the converted layout, and graph batches against jraph.

The batches are checked against upstream's own batching code path: ``jraph.dynamically_batch``
over graphs built the way upstream's ``_to_jraph`` builds them (edges concatenated with their
reverses), then upstream's NaN / padding weights, then ``jraph.batch_np`` over the shards.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
import zipfile
from pathlib import Path

import jraph
import numpy as np
import pytest

from algoperf.data import DatasetError
from algoperf.data import cli as data_cli
from algoperf.data.download import ChecksumError, DiskSpaceError, DownloadError, manifest_status
from algoperf.registry import get_config
from workloads.ogbg import data, testing


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("ogbg")
    dest, fixture = testing.prepare_fixture(root, num_train=60, num_valid=17, num_test=13)
    return root, dest, fixture


@pytest.fixture()
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path, honouring ``Range: bytes=N-``; yields
    (base URL, list of the Range headers it received)."""
    ranges: list[str | None] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            ranges.append(self.headers.get("Range"))
            path = Path(self.translate_path(self.path))
            spec = self.headers.get("Range", "")
            if not spec.startswith("bytes=") or not path.is_file():
                return super().do_GET()
            body = path.read_bytes()
            start = int(spec[len("bytes=") :].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

    handler = functools.partial(Handler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", ranges
    httpd.shutdown()
    thread.join()


def config_for(fixture, name="ogbg", **kw):
    return testing.fixture_config(get_config(name), fixture, **kw)


# Preparation -------------------------------------------------------------------------------------


def test_converted_arrays_hold_the_raw_rows_with_edges_both_ways(prepared):
    root, dest, fx = prepared
    graphs = data.load(root)
    assert graphs.num_graphs == len(fx.num_nodes)
    np.testing.assert_array_equal(graphs.num_nodes, fx.num_nodes)
    np.testing.assert_array_equal(graphs.node_feat, fx.node_feat)
    np.testing.assert_array_equal(graphs.labels, fx.labels)  # NaN where the CSV cell is empty
    assert np.isnan(graphs.labels).mean() > 0.2
    raw_offsets = np.concatenate([[0], np.cumsum([len(e) for e in fx.edges])])
    for g, edges in enumerate(fx.edges):
        e = len(edges)
        assert graphs.num_edges[g] == 2 * e
        sl = slice(graphs.edge_offsets[g], graphs.edge_offsets[g + 1])
        feats = fx.edge_feat[raw_offsets[g] : raw_offsets[g + 1]]
        # upstream's _to_jraph: senders [s, r], receivers [r, s], features repeated.
        np.testing.assert_array_equal(graphs.senders[sl], np.r_[edges[:, 0], edges[:, 1]])
        np.testing.assert_array_equal(graphs.receivers[sl], np.r_[edges[:, 1], edges[:, 0]])
        np.testing.assert_array_equal(graphs.edge_feat[sl], np.r_[feats, feats])
    for ours, theirs in data.SPLIT_FILES.items():
        np.testing.assert_array_equal(graphs.splits[ours], np.sort(fx.splits[theirs]))
    assert manifest_status(dest) == "ready"


def test_prepare_is_idempotent_and_needs_no_network_once_done(prepared):
    root, dest, fx = prepared
    before = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    offline = data.Source(urls=("http://127.0.0.1:9/none",), sha256=fx.sha256, size=fx.size)
    assert data.prepare(root, source=offline, progress=False) == dest
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == before


def test_prepare_downloads_over_http_and_resumes_a_partial_file(tmp_path, server, monkeypatch):
    url, ranges = server
    fx = testing.write_archive(tmp_path / "pcba.zip", num_train=20, num_valid=5, num_test=5)
    root = tmp_path / "data"
    part = root / "ogbg" / "pcba.zip.part"
    part.parent.mkdir(parents=True)
    half = fx.size // 2
    part.write_bytes(fx.archive.read_bytes()[:half])  # an interrupted earlier transfer
    source = testing.fixture_source(fx, urls=(f"{url}/pcba.zip",))
    monkeypatch.setattr(data, "SOURCE", source)
    # The user's command: `algoperf datasets prepare ogbg`.
    assert data_cli.main(["prepare", "ogbg", f"--data_dir={root}", "--quiet"]) == 0
    assert (root / "ogbg" / "pcba.zip").read_bytes() == fx.archive.read_bytes()
    assert not part.exists()
    assert ranges == [f"bytes={half}-"]  # only the missing half was transferred
    assert data.load(root).num_graphs == 30


def test_prepare_refuses_a_corrupt_archive(tmp_path, server):
    fx = testing.write_archive(tmp_path / "pcba.zip", num_train=4, num_valid=2, num_test=2)
    bad = data.Source(urls=(f"{server[0]}/pcba.zip",), sha256="0" * 64, size=fx.size)
    with pytest.raises(DownloadError, match="sha256"):
        data.prepare(tmp_path / "data", source=bad, progress=False)
    assert not (tmp_path / "data" / "ogbg" / "pcba.zip").exists()


def test_prepare_checks_free_space_first(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(DiskSpaceError, match="ogbg"):
        data.prepare(tmp_path, source=data.Source(urls=("http://127.0.0.1:9/x",)), progress=False)
    assert not list(tmp_path.iterdir()) or not (tmp_path / "ogbg" / "pcba.zip").exists()


def test_an_archive_without_the_raw_csvs_is_refused_with_the_fix(tmp_path):
    archive = tmp_path / "src" / "pcba.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("pcba/raw/edge.csv.gz", gzip.compress(b"0,1\n"))
    with pytest.raises(DatasetError, match=r"edge-feat.csv.gz missing.*datasets prepare ogbg"):
        data.convert(archive, tmp_path / "out")


def test_missing_or_wrong_sized_data_is_one_clear_error(prepared, tmp_path):
    root, _, fx = prepared
    with pytest.raises(DatasetError, match=r"node_feat.npy not found.*prepare ogbg"):
        data.load(tmp_path)
    wrong = config_for(fx).variant("ogbg", num_validation_examples=43_793)
    with pytest.raises(DatasetError, match=r"split_validation.npy: 17 graphs.*expects 43793"):
        data.split_indices(data.load(root), wrong, "validation", root)


# Batches against jraph ---------------------------------------------------------------------------


def _upstream_batches(graphs: data.Graphs, ids, global_batch_size: int, num_shards: int):
    """Upstream's input_pipeline._get_batch_iterator on graphs `ids` (in order), in numpy."""

    def to_jraph(g):
        nodes = slice(graphs.node_offsets[g], graphs.node_offsets[g + 1])
        edges = slice(graphs.edge_offsets[g], graphs.edge_offsets[g + 1])
        return jraph.GraphsTuple(
            n_node=np.array([graphs.num_nodes[g]]),
            n_edge=np.array([graphs.num_edges[g]]),
            nodes=np.asarray(graphs.node_feat[nodes], np.float32),
            edges=np.asarray(graphs.edge_feat[edges], np.float32),
            senders=np.asarray(graphs.senders[edges], np.int64),
            receivers=np.asarray(graphs.receivers[edges], np.int64),
            globals=np.asarray(graphs.labels[g])[None],
        )

    b = global_batch_size // num_shards
    shards = []
    for batched in jraph.dynamically_batch(map(to_jraph, ids), 26 * b + 1, 56 * b, b + 1):
        labels = batched.globals
        graph = batched._replace(globals={})
        nan = np.isnan(labels)
        weights = (1.0 - nan) * jraph.get_graph_padding_mask(graph)[:, None]
        shards.append((graph, np.where(nan, 0, labels), weights))
        if len(shards) == num_shards:
            yield (
                jraph.batch_np([s[0] for s in shards]),
                np.vstack([s[1] for s in shards]),
                np.vstack([s[2] for s in shards]),
            )
            shards = []


def _assert_same(ours: dict, upstream) -> None:
    graph, targets, weights = upstream
    for key in ("nodes", "edges", "senders", "receivers", "n_node", "n_edge"):
        np.testing.assert_array_equal(ours[key], getattr(graph, key), err_msg=key)
    np.testing.assert_array_equal(ours["targets"], targets)
    np.testing.assert_array_equal(ours["weights"], weights)


@pytest.mark.parametrize(("batch_size", "num_shards"), [(4, 1), (8, 2), (6, 3), (16, 1)])
def test_train_batches_equal_upstreams_jraph_batching(prepared, batch_size, num_shards):
    root, _, fx = prepared
    config = config_for(fx)
    graphs = data.load(root)
    ids = data.split_indices(graphs, config, "train", root)
    # The stream our train iterator packs: epoch permutations one after another.
    from algoperf.data.iterators import epoch_permutation

    stream = np.concatenate([ids[epoch_permutation(len(ids), 5, e)] for e in range(8)])
    ours = data.numpy_batches(root, config, "train", batch_size, seed=5, num_shards=num_shards)
    theirs = _upstream_batches(graphs, stream, batch_size, num_shards)
    b = batch_size // num_shards
    for _ in range(12):
        batch = next(ours)
        _assert_same(batch, next(theirs))
        # Static shapes: upstream's budgets per device shard.
        assert batch["nodes"].shape == (num_shards * (26 * b + 1), 9)
        assert batch["edges"].shape == (num_shards * 56 * b, 3)
        assert batch["n_node"].shape == (num_shards * (b + 1),)
        assert batch["targets"].shape == batch["weights"].shape == (num_shards * (b + 1), 128)


def test_train_batch_k_depends_only_on_seed_and_k(prepared):
    root, _, fx = prepared
    config = config_for(fx)
    full = data.numpy_batches(root, config, "train", 8, seed=3, num_shards=2)
    batches = [next(full) for _ in range(20)]
    resumed = data.numpy_batches(root, config, "train", 8, seed=3, num_shards=2, start_step=13)
    for k in range(13, 20):
        got = next(resumed)
        for key in got:
            np.testing.assert_array_equal(got[key], batches[k][key])
    other = next(data.numpy_batches(root, config, "train", 8, seed=4, num_shards=2))
    assert not np.array_equal(other["nodes"], batches[0]["nodes"])


@pytest.mark.parametrize("num_shards", [1, 2, 3, 5])
def test_eval_covers_every_graph_once_in_shards_independent_of_devices(prepared, num_shards):
    root, _, fx = prepared
    config = config_for(fx)
    graphs = data.load(root)
    ids = data.split_indices(graphs, config, "validation", root)
    budget = data.Budget(4)
    reference = [s for group in data.eval_groups(graphs, ids, budget, 1) for s, k in group if k]
    groups = list(data.eval_groups(graphs, ids, budget, num_shards))
    assert all(len(g) == num_shards for g in groups)
    real = [(s, k) for g in groups for s, k in g if k]
    assert len(real) == len(reference)
    for (shard, _), ref in zip(real, reference):
        for key in shard:
            np.testing.assert_array_equal(shard[key], ref[key])
    assert sum(k for _, k in real) == len(ids) == 17
    # The graphs are the split's, once each, in order: compare the node features.
    nodes = np.concatenate([s["nodes"][: int(s["n_node"][:k].sum())] for s, k in real])
    rows = np.concatenate(
        [np.arange(graphs.node_offsets[g], graphs.node_offsets[g + 1]) for g in ids]
    )
    np.testing.assert_array_equal(nodes, graphs.node_feat[rows])
    # Filler shards hold only the padding graph, so no weight.
    for g in groups:
        for s, k in g:
            if k == 0:
                assert s["weights"].sum() == 0 and s["n_node"][0] == budget.max_nodes


def test_eval_shards_equal_upstreams_for_one_device(prepared):
    root, _, fx = prepared
    graphs = data.load(root)
    ids = data.split_indices(graphs, config_for(fx), "test", root)
    ours = [s for g in data.eval_groups(graphs, ids, data.Budget(4), 1) for s, _ in g]
    theirs = list(_upstream_batches(graphs, ids, 4, 1))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _assert_same(a, b)


def test_eval_train_is_a_fixed_sample_of_train(prepared):
    root, _, fx = prepared
    graphs = data.load(root)
    config = config_for(fx, num_eval_train=9)
    first = data.split_indices(graphs, config, "eval_train", root)
    assert len(first) == 9 and len(set(first)) == 9
    assert set(first) <= set(graphs.splits["train"])
    np.testing.assert_array_equal(first, data.split_indices(graphs, config, "eval_train", root))


def test_a_graph_larger_than_the_budget_is_a_clear_error():
    budget = data.Budget(1)  # 26 nodes, 56 edges
    with pytest.raises(ValueError, match=r"30 nodes.*per-device budget of 26 nodes.*larger batch"):
        data.pack_counts(np.array([30]), np.array([10]), budget)
    assert data.pack_counts(np.array([26, 1]), np.array([56, 0]), budget) == 1
    assert data.pack_counts(np.array([5, 5, 5]), np.array([10, 10, 10]), data.Budget(2)) == 2


def test_batch_size_below_one_graph_per_device_is_refused():
    with pytest.raises(ValueError, match="at least 4"):
        data.per_device_budget(3, 4)


def test_synthetic_batch_has_the_real_layout():
    batch = data.synthetic_batch(get_config("ogbg"), 4, seed=0)  # 3 graphs + the padding graph
    assert batch["nodes"].shape == (79, 9) and batch["edges"].shape == (168, 3)
    assert batch["n_node"].shape == (4,) and batch["targets"].shape == (4, 128)
    assert batch["n_node"].sum() == 79 and batch["n_edge"].sum() == 168
    assert batch["weights"][3].sum() == 0 and batch["weights"][:3].sum() > 0
    assert batch["senders"].max() < 79


def test_fixture_is_in_ogb_format(tmp_path: Path):
    fx = testing.write_archive(tmp_path / "pcba.zip", num_train=3, num_valid=1, num_test=1)
    with zipfile.ZipFile(fx.archive) as z:
        names = set(z.namelist())
        assert {*data.RAW.values(), "pcba/split/scaffold/valid.csv.gz"} <= names
        first = gzip.decompress(z.read("pcba/raw/graph-label.csv.gz")).decode().splitlines()[0]
    assert len(first.split(",")) == 128 and "" in first.split(",")
    with pytest.raises(ChecksumError):
        from algoperf.data.download import verify_checksum

        verify_checksum(fx.archive, sha256="0" * 64)
