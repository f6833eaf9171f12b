"""ogbg-molpcba on disk (OGB's raw CSVs, converted once), its preparation, and numpy graph batches.

Source: OGB's ``pcba.zip`` (39,533,472 bytes, SHA-256 ``0bb12da2...4e53``, the file and checksum
TFDS's ``ogbg_molpcba:0.1.3`` builder downloads), fetched with `algoperf.data.download`
(resumable, checksummed, progress). Its raw CSVs are ``pcba/raw/{edge, edge-feat, node-feat,
graph-label, num-node-list, num-edge-list}.csv.gz`` (one row per edge / node / graph, every graph's
rows contiguous, labels empty where unmeasured) and ``pcba/split/scaffold/{train, valid,
test}.csv.gz`` (graph indices). `prepare` converts them once into ``<data_dir>/ogbg/``::

    pcba.zip                      the verified archive (kept: re-preparing is a no-op)
    node_feat.npy     uint8 (N, 9)     atom features, every graph's nodes contiguous
    edge_feat.npy     uint8 (E, 3)     bond features; each graph's raw edges, then the same edges
    senders.npy       uint16 (E,)      reversed (upstream adds every edge in both directions)
    receivers.npy     uint16 (E,)      node indices local to their graph
    num_nodes.npy     int32 (G,)       nodes per graph
    num_edges.npy     int32 (G,)       directed edges per graph (twice the raw count)
    labels.npy        float32 (G, 128) the 128 binary tasks, NaN where unmeasured
    split_{train,validation,test}.npy  int32 graph indices of the scaffold split, sorted

Sizes: train 350,343, validation 43,793, test 43,793 graphs (checked against the config).

Other molecule sets use the same arrays in ``<data_dir>/<dataset>/`` with their own number of
tasks (``labels.npy`` (G, T); `workloads.ogbg.molecules` writes ``ogbg_solubility``, T = 2).
Everything below reads the folder named by the workload config's ``dataset`` and takes the task
count from the labels; the model's ``num_outputs`` must equal it (`check_num_tasks`).

Batches (`numpy_batches`) follow upstream's ``jraph.dynamically_batch``: a device shard built for
a per-device batch size ``b`` holds at most ``b`` graphs, ``26 b`` nodes and ``56 b`` edges (26 and
56 are ogbg-molpcba's mean nodes and directed edges per molecule; another dataset packs at its own
means, `GRAPH_SIZES`), taken greedily in stream order, and is
padded to exactly ``26 b + 1`` nodes, ``56 b`` edges and ``b + 1`` graphs: one padding graph holds
the spare nodes and edges (edges from its first node to itself), then empty graphs. A global
batch is ``num_shards`` such shards concatenated with global node indices (``jraph.batch_np``), so
every array has a static shape and splits evenly along its leading axis. Keys: ``nodes`` float32
(N, 9), ``edges`` float32 (E, 3), ``senders`` / ``receivers`` int32 (E,), ``n_node`` / ``n_edge``
int32 (G,), ``targets`` float32 (G, T) (NaN -> 0) and ``weights`` float32 (G, T) (0 for NaN
labels and padding graphs), T = 128 for ogbg-molpcba.

Train order: an endless stream of epoch permutations (``default_rng([seed, epoch])``, every graph
once per epoch; upstream shuffles with a 2^15-graph buffer), so batch ``k`` is a function of
``(seed, k)`` and ``start_step`` resumes by replaying only the packing arithmetic. Eval splits are
covered in index order, every graph exactly once (see `eval_groups`); upstream reads TFDS's
record order, which only decides which graphs its device-dependent eval covers (README).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from algoperf.data import DatasetError, iterators
from algoperf.data.download import (
    MANIFEST_NAME,
    check_free_space,
    download_file,
    manifest_status,
    write_manifest,
)
from algoperf.workload_config import WorkloadConfig

DATASET = "ogbg"
URLS = (
    "https://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/pcba.zip",
    "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/pcba.zip",
)
ARCHIVE = "pcba.zip"
ARCHIVE_SHA256 = "0bb12da2f3ec8b0bb80564114a6174fad2df6a3a0d3c19470b3a27813a7d4e53"
ARCHIVE_SIZE = 39_533_472
# Upper bound of the converted arrays (about 500 MB for molpcba, 224 MB of it the labels), for
# the free-space preflight.
CONVERTED_SIZE = 600_000_000


@dataclasses.dataclass(frozen=True)
class Source:
    """Where `prepare` downloads ``pcba.zip`` from and what it must verify as."""

    urls: tuple[str, ...] = URLS
    sha256: str | None = ARCHIVE_SHA256
    size: int | None = ARCHIVE_SIZE


# Read when `prepare` runs (tests point it at a local server).
SOURCE = Source()
FORMAT_VERSION = 1

NUM_TASKS = 128
NODE_FEATURES = 9
EDGE_FEATURES = 3
AVG_NODES_PER_GRAPH = 26
AVG_EDGES_PER_GRAPH = 56
# Shard budget per graph slot, (nodes, directed edges), by dataset folder: upstream's 26 / 56 are
# ogbg-molpcba's mean molecule, so a dataset of smaller molecules packs at its own means (rounded)
# rather than padding every shard to twice its real size. Datasets not listed use upstream's.
GRAPH_SIZES: dict[str, tuple[int, int]] = {
    DATASET: (AVG_NODES_PER_GRAPH, AVG_EDGES_PER_GRAPH),
    # Huuskonen solubility set (`workloads.ogbg.molecules`): 13.00 nodes, 26.76 edges a molecule.
    "ogbg_solubility": (13, 27),
}
SPLITS = ("train", "eval_train", "validation", "test")
# Our split name -> the scaffold split file's name.
SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}
RAW = {
    "edge_index": "pcba/raw/edge.csv.gz",
    "edge_feat": "pcba/raw/edge-feat.csv.gz",
    "node_feat": "pcba/raw/node-feat.csv.gz",
    "labels": "pcba/raw/graph-label.csv.gz",
    "num_nodes": "pcba/raw/num-node-list.csv.gz",
    "num_edges": "pcba/raw/num-edge-list.csv.gz",
}
ARRAYS = (
    "node_feat",
    "edge_feat",
    "senders",
    "receivers",
    "num_nodes",
    "num_edges",
    "labels",
    *(f"split_{s}" for s in SPLIT_FILES),
)
# Seed of the fixed training-set sample that `eval_train` evaluates.
EVAL_TRAIN_SEED = 0

Batch = dict[str, np.ndarray]


def _fix_hint(data_dir: Path | str, dataset: str = DATASET) -> str:
    return f"run `algoperf datasets prepare {dataset} --data_dir {data_dir}`"


def dataset_dir(data_dir: Path | str, dataset: str = DATASET) -> Path:
    """Where `dataset`'s arrays are: ``<data_dir>/<dataset>`` (``ogbg``, ``ogbg_solubility``),
    or `data_dir` itself if it holds the arrays and has no such folder."""
    root = Path(data_dir)
    if (root / "num_nodes.npy").is_file() and not (root / dataset).is_dir():
        return root
    return root / dataset


# Budgets ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Budget:
    """Static sizes of one device shard for per-device batch size ``b`` (upstream's budgets;
    the per-graph node and edge allowances are the dataset's, `budget_for`)."""

    graphs_per_device: int
    nodes_per_graph: int = AVG_NODES_PER_GRAPH
    edges_per_graph: int = AVG_EDGES_PER_GRAPH
    # Floors of a shard's node / edge budget (0 for ogbg-molpcba, as upstream; see `budget_for`).
    min_nodes: int = 0
    min_edges: int = 0

    @property
    def max_nodes(self) -> int:
        """Node slots: ``nodes_per_graph * b`` real nodes at most, plus at least one padding node."""
        return max(self.nodes_per_graph * self.graphs_per_device, self.min_nodes) + 1

    @property
    def max_edges(self) -> int:
        return max(self.edges_per_graph * self.graphs_per_device, self.min_edges)

    @property
    def max_graphs(self) -> int:
        """Graph slots: b real graphs at most, plus the padding graph."""
        return self.graphs_per_device + 1


def budget_for(dataset: str, graphs_per_device: int, graphs: Graphs | None = None) -> Budget:
    """The shard budget of `graphs_per_device` graph slots for molecules of `dataset`.

    ogbg-molpcba's is upstream's exactly. A dataset packed at its own (smaller) means also gets
    room for its largest molecule (from `graphs`), so that small shards still take every graph.
    """
    nodes, edges = GRAPH_SIZES.get(dataset, GRAPH_SIZES[DATASET])
    budget = Budget(int(graphs_per_device), nodes, edges)
    if dataset == DATASET or graphs is None or not graphs.num_graphs:
        return budget
    return dataclasses.replace(
        budget, min_nodes=int(graphs.num_nodes.max()), min_edges=int(graphs.num_edges.max())
    )


def per_device_budget(
    global_batch_size: int, num_shards: int, dataset: str = DATASET, graphs: Graphs | None = None
) -> Budget:
    """Upstream's shard budget: ``global_batch_size // num_shards`` graphs per device."""
    b = int(global_batch_size) // int(num_shards)
    if b < 1:
        raise ValueError(
            f"ogbg: global batch size {global_batch_size} gives less than one graph per device "
            f"on {num_shards} devices; use a batch size of at least {num_shards}"
        )
    return budget_for(dataset, b, graphs)


# On-disk arrays ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Graphs:
    """Every graph of the dataset as flat arrays plus per-graph offsets (read-only, mmapped)."""

    node_feat: np.ndarray
    edge_feat: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    num_nodes: np.ndarray
    num_edges: np.ndarray
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    node_offsets: np.ndarray  # (G + 1,) int64
    edge_offsets: np.ndarray

    @property
    def num_graphs(self) -> int:
        return len(self.num_nodes)

    @property
    def num_tasks(self) -> int:
        """Binary tasks per graph: the label columns (128 for ogbg-molpcba)."""
        return int(self.labels.shape[1])


@cache
def _load_cached(directory: str, dataset: str) -> Graphs:
    path = Path(directory)
    hint = _fix_hint(path.parent, dataset)
    arrays = {}
    for name in ARRAYS:
        f = path / f"{name}.npy"
        if not f.is_file():
            raise DatasetError(f"{f} not found; {hint}")
        try:
            arrays[name] = np.load(f, mmap_mode="r")
        except ValueError as e:
            raise DatasetError(f"{f} is not a readable .npy file ({e}); {hint}") from None
    num_nodes = np.asarray(arrays["num_nodes"], np.int64)
    num_edges = np.asarray(arrays["num_edges"], np.int64)
    node_offsets = np.concatenate([[0], np.cumsum(num_nodes)])
    edge_offsets = np.concatenate([[0], np.cumsum(num_edges)])
    checks = {
        "node_feat": (node_offsets[-1], NODE_FEATURES),
        "edge_feat": (edge_offsets[-1], EDGE_FEATURES),
        "senders": (edge_offsets[-1],),
        "receivers": (edge_offsets[-1],),
        # Any number of tasks (ogbg-molpcba has NUM_TASKS; smaller molecule sets fewer).
        "labels": (len(num_nodes), arrays["labels"].shape[-1] if arrays["labels"].ndim == 2 else 0),
    }
    for name, shape in checks.items():
        if arrays[name].shape != tuple(int(s) for s in shape):
            raise DatasetError(
                f"{path / (name + '.npy')}: shape {arrays[name].shape}, expected {shape} from "
                f"num_nodes.npy / num_edges.npy; the dataset is inconsistent: {hint}"
            )
    return Graphs(
        **{k: arrays[k] for k in ARRAYS if not k.startswith("split_")},
        splits={s: np.asarray(arrays[f"split_{s}"]) for s in SPLIT_FILES},
        node_offsets=node_offsets,
        edge_offsets=edge_offsets,
    )


def load(data_dir: Path | str, dataset: str = DATASET) -> Graphs:
    """The converted `dataset` under `data_dir` (cached per directory); see `dataset_dir`."""
    return _load_cached(str(dataset_dir(data_dir, dataset).resolve()), dataset)


def model_num_tasks(config: WorkloadConfig) -> int:
    """The tasks the config's GNN predicts: ``config.model["num_outputs"]`` (default 128)."""
    return int(config.model.get("num_outputs", NUM_TASKS))


def check_num_tasks(graphs: Graphs, config: WorkloadConfig, data_dir: Path | str) -> None:
    """Refuse a dataset whose label columns are not the model's outputs."""
    if graphs.num_tasks != model_num_tasks(config):
        raise DatasetError(
            f"{dataset_dir(data_dir, config.dataset) / 'labels.npy'}: {graphs.num_tasks} tasks, "
            f"the {config.name} model predicts {model_num_tasks(config)}; prepare "
            f"{config.dataset!r} into this folder ({_fix_hint(data_dir, config.dataset)}) or set "
            "model['num_outputs'] in workloads/ogbg/spec.py"
        )


def split_indices(
    graphs: Graphs, config: WorkloadConfig, split: str, data_dir: Path | str
) -> np.ndarray:
    """Graph indices of `split`, checked against the config's split size.

    ``eval_train`` is a fixed sample of ``num_eval_train_examples`` training graphs (the first of
    one seeded permutation, in index order), the same at every eval.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown ogbg split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "eval_train":
        train = split_indices(graphs, config, "train", data_dir)
        n = config.num_eval_train_examples
        if n > len(train):
            raise DatasetError(
                f"{dataset_dir(data_dir, config.dataset)}: eval_train needs {n} graphs, train "
                f"has {len(train)}"
            )
        order = iterators.epoch_permutation(len(train), EVAL_TRAIN_SEED, 0)
        return np.sort(train[order[:n]])
    idx = graphs.splits[split]
    expected = {
        "train": config.num_train_examples,
        "validation": config.num_validation_examples,
        "test": config.num_test_examples,
    }[split]
    if len(idx) != expected:
        name = "ogbg-molpcba" if config.dataset == DATASET else config.dataset
        raise DatasetError(
            f"{dataset_dir(data_dir, config.dataset) / f'split_{split}.npy'}: {len(idx)} graphs, "
            f"the workload expects {expected}; the dataset is incomplete or not {name}: "
            f"{_fix_hint(data_dir, config.dataset)}"
        )
    return idx


# Packing and gathering --------------------------------------------------------------------------


def pack_counts(num_nodes: np.ndarray, num_edges: np.ndarray, budget: Budget) -> int:
    """How many of the leading graphs (given by their node / edge counts) one shard takes.

    ``jraph.dynamically_batch``'s rule: graphs are added while the shard stays within ``b``
    graphs, ``nodes_per_graph * b`` nodes and ``edges_per_graph * b`` edges (26 b / 56 b for
    ogbg-molpcba). Raises if the first graph alone does not fit.
    """
    b = budget.graphs_per_device
    nodes = np.cumsum(num_nodes[:b])
    edges = np.cumsum(num_edges[:b])
    k = min(
        len(nodes),
        int(np.searchsorted(nodes, budget.max_nodes - 1, side="right")),
        int(np.searchsorted(edges, budget.max_edges, side="right")),
    )
    if k == 0 and len(nodes):
        raise ValueError(
            f"ogbg: a graph with {int(num_nodes[0])} nodes and {int(num_edges[0])} edges does not "
            f"fit the per-device budget of {budget.max_nodes - 1} nodes and {budget.max_edges} "
            f"edges ({b} graphs per device); use a larger batch size"
        )
    return k


def gather_shard(graphs: Graphs, ids: np.ndarray, budget: Budget) -> Batch:
    """One padded device shard holding graphs `ids` (in order), local node indices."""
    ids = np.asarray(ids, np.int64)
    n_node = graphs.num_nodes[ids].astype(np.int64)
    n_edge = graphs.num_edges[ids].astype(np.int64)
    real_nodes, real_edges, k = int(n_node.sum()), int(n_edge.sum()), len(ids)
    if real_nodes >= budget.max_nodes or real_edges > budget.max_edges or k >= budget.max_graphs:
        raise ValueError("ogbg: graphs exceed the shard budget")  # pack_counts prevents this

    node_rows = _ranges(graphs.node_offsets[ids], n_node)
    edge_rows = _ranges(graphs.edge_offsets[ids], n_edge)
    nodes = np.zeros((budget.max_nodes, NODE_FEATURES), np.float32)
    nodes[:real_nodes] = graphs.node_feat[node_rows]
    edges = np.zeros((budget.max_edges, EDGE_FEATURES), np.float32)
    edges[:real_edges] = graphs.edge_feat[edge_rows]
    # Local indices of each graph shifted by the nodes of the graphs before it in the shard; the
    # padding edges join the first padding node to itself (as `jraph.pad_with_graphs`).
    base = np.repeat(np.cumsum(n_node) - n_node, n_edge)
    senders = np.full(budget.max_edges, real_nodes, np.int32)
    receivers = np.full(budget.max_edges, real_nodes, np.int32)
    senders[:real_edges] = graphs.senders[edge_rows] + base
    receivers[:real_edges] = graphs.receivers[edge_rows] + base

    counts_n = np.zeros(budget.max_graphs, np.int32)
    counts_e = np.zeros(budget.max_graphs, np.int32)
    counts_n[:k], counts_e[:k] = n_node, n_edge
    counts_n[k] = budget.max_nodes - real_nodes
    counts_e[k] = budget.max_edges - real_edges

    labels = np.asarray(graphs.labels[ids], np.float32)
    targets = np.zeros((budget.max_graphs, graphs.num_tasks), np.float32)
    weights = np.zeros((budget.max_graphs, graphs.num_tasks), np.float32)
    measured = ~np.isnan(labels)
    targets[:k] = np.where(measured, labels, 0.0)
    weights[:k] = measured
    return {
        "nodes": nodes,
        "edges": edges,
        "senders": senders,
        "receivers": receivers,
        "n_node": counts_n,
        "n_edge": counts_e,
        "targets": targets,
        "weights": weights,
    }


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concat(arange(s, s + c) for s, c in zip(starts, counts))``, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return shift + np.arange(total)


def empty_shard(budget: Budget, num_tasks: int = NUM_TASKS) -> Batch:
    """A shard holding only the padding graph (fills the last eval group up to the devices)."""
    return gather_shard(_empty_graphs(num_tasks), np.zeros(0, np.int64), budget)


def concat_shards(shards: Sequence[Batch]) -> Batch:
    """Shards -> one global batch (``jraph.batch_np``: node indices offset by earlier shards)."""
    if len(shards) == 1:
        return shards[0]
    offsets = np.cumsum([0] + [len(s["nodes"]) for s in shards[:-1]])
    out = {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}
    for key in ("senders", "receivers"):
        out[key] = np.concatenate([s[key] + np.int32(o) for s, o in zip(shards, offsets)]).astype(
            np.int32
        )
    return out


def train_shard_ids(
    graphs: Graphs, ids: np.ndarray, budget: Budget, seed: int
) -> Iterator[np.ndarray]:
    """Graph ids of consecutive training shards over an endless stream of epoch permutations."""
    n = len(ids)
    if n == 0:
        raise DatasetError("ogbg: the training split is empty")
    epoch, pos = 0, 0
    stream = ids[iterators.epoch_permutation(n, seed, 0)]
    window = budget.graphs_per_device
    while True:
        if len(stream) - pos < window:
            # Join the rest of this epoch to the next ones (upstream's shuffled stream repeats;
            # a split smaller than a shard's graph budget spans several epochs per shard).
            parts = [stream[pos:]]
            while sum(len(p) for p in parts) < window:
                epoch += 1
                parts.append(ids[iterators.epoch_permutation(n, seed, epoch)])
            stream, pos = np.concatenate(parts), 0
        head = stream[pos : pos + window]
        k = pack_counts(graphs.num_nodes[head], graphs.num_edges[head], budget)
        yield head[:k]
        pos += k


def eval_shard_ids(graphs: Graphs, ids: np.ndarray, budget: Budget) -> Iterator[np.ndarray]:
    """Graph ids of consecutive shards covering `ids` once, in order."""
    pos = 0
    while pos < len(ids):
        head = ids[pos : pos + budget.graphs_per_device]
        k = pack_counts(graphs.num_nodes[head], graphs.num_edges[head], budget)
        yield head[:k]
        pos += k


def numpy_batches(
    data_dir: Path | str,
    config: WorkloadConfig,
    split: str,
    global_batch_size: int,
    seed: int,
    num_shards: int = 1,
    start_step: int = 0,
) -> Iterator[Batch]:
    """Global batches of `num_shards` device shards (budget from ``global_batch_size``).

    'train' is infinite (see the module docstring; ``start_step`` skips that many batches);
    other splits are finite and cover the split once, the last group of shards filled with
    empty shards.
    """
    graphs = load(data_dir, config.dataset)
    ids = split_indices(graphs, config, split, data_dir)
    budget = per_device_budget(global_batch_size, num_shards, config.dataset, graphs)
    if split == "train":
        shard_ids = train_shard_ids(graphs, ids, budget, seed)
        for _ in range(start_step * num_shards):
            next(shard_ids)
        while True:
            yield concat_shards(
                [gather_shard(graphs, next(shard_ids), budget) for _ in range(num_shards)]
            )
    for group in eval_groups(graphs, ids, budget, num_shards):
        yield concat_shards([shard for shard, _ in group])


def eval_groups(
    graphs: Graphs, ids: np.ndarray, budget: Budget, num_shards: int
) -> Iterator[list[tuple[Batch, int]]]:
    """Groups of `num_shards` (shard, number of real graphs) covering `ids` exactly once, the
    last group filled with empty shards: every graph is evaluated once, in a shard that does not
    depend on the device count."""
    group: list[tuple[Batch, int]] = []
    for shard in eval_shard_ids(graphs, ids, budget):
        group.append((gather_shard(graphs, shard, budget), len(shard)))
        if len(group) == num_shards:
            yield group
            group = []
    if group:
        yield group + [(empty_shard(budget, graphs.num_tasks), 0)] * (num_shards - len(group))


def synthetic_batch(config: WorkloadConfig, batch_size: int, seed: int) -> Batch:
    """A random one-shard batch with `batch_size` graph slots (``batch_size - 1`` random
    molecule-like graphs and the padding graph; at least one graph), for smoke runs: its
    logits, targets and weights have `batch_size` rows like any other family's batch, and as
    many tasks as the config's model has outputs."""
    rng = np.random.default_rng(iterators._seed_word(seed))
    budget = Budget(max(1, batch_size - 1))
    num_tasks = model_num_tasks(config)
    # At most 20 nodes and 44 directed edges per graph: a full budget of them always fits.
    graphs = random_graphs(rng, budget.graphs_per_device, max_nodes=20, num_tasks=num_tasks)
    return gather_shard(graphs, np.arange(budget.graphs_per_device), budget)


def random_graphs(
    rng: np.random.Generator, num_graphs: int, max_nodes: int = 30, num_tasks: int = NUM_TASKS
) -> Graphs:
    """Random molecule-sized graphs in the converted layout (chains with extra ring bonds)."""
    num_nodes = rng.integers(1, max_nodes + 1, num_graphs)
    edge_lists = []
    for n in num_nodes:
        chain = [(i, i + 1) for i in range(n - 1)]
        extra = (
            [tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(n // 6)] if n > 2 else []
        )
        raw = np.array(chain + extra, np.int64).reshape(-1, 2)
        edge_lists.append(raw)
    labels = np.where(
        rng.random((num_graphs, num_tasks)) < 0.3,
        np.nan,
        (rng.random((num_graphs, num_tasks)) < 0.2),
    ).astype(np.float32)
    node_feat = rng.integers(0, 10, (int(num_nodes.sum()), NODE_FEATURES)).astype(np.uint8)
    raw_feat = [rng.integers(0, 4, (len(e), EDGE_FEATURES)).astype(np.uint8) for e in edge_lists]
    return from_raw(
        num_nodes, edge_lists, node_feat, raw_feat, labels, {s: np.arange(0) for s in SPLIT_FILES}
    )


def from_raw(
    num_nodes: np.ndarray,
    edge_lists: Sequence[np.ndarray],
    node_feat: np.ndarray,
    edge_feats: Sequence[np.ndarray],
    labels: np.ndarray,
    splits: dict[str, np.ndarray],
) -> Graphs:
    """In-memory `Graphs` from per-graph raw (one-direction) edge lists and features."""
    arrays = _bidirectional(
        np.asarray(num_nodes, np.int64),
        np.concatenate(edge_lists) if edge_lists else np.zeros((0, 2), np.int64),
        np.array([len(e) for e in edge_lists], np.int64),
        np.concatenate(edge_feats) if edge_feats else np.zeros((0, EDGE_FEATURES), np.uint8),
    )
    num_edges = arrays["num_edges"].astype(np.int64)
    return Graphs(
        node_feat=node_feat,
        edge_feat=arrays["edge_feat"],
        senders=arrays["senders"],
        receivers=arrays["receivers"],
        num_nodes=np.asarray(num_nodes, np.int32),
        num_edges=arrays["num_edges"],
        labels=labels,
        splits=splits,
        node_offsets=np.concatenate([[0], np.cumsum(num_nodes)]).astype(np.int64),
        edge_offsets=np.concatenate([[0], np.cumsum(num_edges)]).astype(np.int64),
    )


def _bidirectional(
    num_nodes: np.ndarray, edge_index: np.ndarray, raw_edges: np.ndarray, edge_feat: np.ndarray
) -> dict[str, np.ndarray]:
    """Raw per-graph edges -> each graph's edges followed by the same edges reversed."""
    g = len(raw_edges)
    starts = np.concatenate([[0], np.cumsum(raw_edges)])[:-1]
    # Output row of raw edge j of graph i: 2*starts[i] + j (forward), + raw_edges[i] (reversed).
    graph_of = np.repeat(np.arange(g), raw_edges)
    j = np.arange(len(edge_index)) - starts[graph_of]
    fwd = 2 * starts[graph_of] + j
    rev = fwd + raw_edges[graph_of]
    total = 2 * len(edge_index)
    senders = np.zeros(total, np.int64)
    receivers = np.zeros(total, np.int64)
    feats = np.zeros((total, EDGE_FEATURES), edge_feat.dtype)
    senders[fwd], receivers[fwd] = edge_index[:, 0], edge_index[:, 1]
    senders[rev], receivers[rev] = edge_index[:, 1], edge_index[:, 0]
    feats[fwd] = feats[rev] = edge_feat
    if len(edge_index) and (
        edge_index.min() < 0 or np.any(edge_index.max(1) >= num_nodes[graph_of])
    ):
        raise DatasetError("ogbg: an edge refers to a node outside its graph")
    return {
        "senders": senders.astype(np.uint16),
        "receivers": receivers.astype(np.uint16),
        "edge_feat": feats,
        "num_edges": (2 * raw_edges).astype(np.int32),
    }


@cache
def _empty_graphs(num_tasks: int) -> Graphs:
    """A dataset of no graphs with `num_tasks` label columns (the source of empty shards)."""
    return from_raw(
        np.zeros(0, np.int64),
        [],
        np.zeros((0, NODE_FEATURES), np.uint8),
        [],
        np.zeros((0, num_tasks), np.float32),
        {},
    )


# Preparing --------------------------------------------------------------------------------------


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _read_csv(archive: zipfile.ZipFile, member: str, dtype, archive_path: Path) -> np.ndarray:
    import pandas as pd

    try:
        with archive.open(member) as raw, gzip.open(raw) as f:
            frame = pd.read_csv(io.BufferedReader(f), header=None, dtype=dtype)
    except KeyError:
        raise DatasetError(
            f"{archive_path}: {member} missing; the archive is not OGB's pcba.zip: delete it and "
            f"{_fix_hint(archive_path.parent.parent)}"
        ) from None
    return frame.to_numpy()


def _small_ints(values: np.ndarray, name: str, archive_path: Path) -> np.ndarray:
    if values.size and (values.min() < 0 or values.max() > 255):
        raise DatasetError(f"{archive_path}: {name} has values outside 0..255; not OGB's molpcba")
    return values.astype(np.uint8)


def convert(archive_path: Path, dest: Path, progress: bool = False) -> dict[str, np.ndarray]:
    """Read the raw CSVs of `archive_path` and write the converted arrays into `dest`."""
    _say(progress, f"ogbg: converting {archive_path.name} (a minute for molpcba)")
    with zipfile.ZipFile(archive_path) as archive:
        raw = {
            "edge_index": _read_csv(archive, RAW["edge_index"], np.int64, archive_path),
            "edge_feat": _read_csv(archive, RAW["edge_feat"], np.int64, archive_path),
            "node_feat": _read_csv(archive, RAW["node_feat"], np.int64, archive_path),
            "labels": _read_csv(archive, RAW["labels"], np.float32, archive_path),
            "num_nodes": _read_csv(archive, RAW["num_nodes"], np.int64, archive_path)[:, 0],
            "num_edges": _read_csv(archive, RAW["num_edges"], np.int64, archive_path)[:, 0],
        }
        splits = {
            ours: np.sort(
                _read_csv(archive, f"pcba/split/scaffold/{theirs}.csv.gz", np.int64, archive_path)[
                    :, 0
                ]
            ).astype(np.int32)
            for ours, theirs in SPLIT_FILES.items()
        }
    g = len(raw["num_nodes"])
    problems = []
    if raw["labels"].shape != (g, NUM_TASKS):
        problems.append(f"graph-label has shape {raw['labels'].shape}, expected ({g}, {NUM_TASKS})")
    if raw["node_feat"].shape != (raw["num_nodes"].sum(), NODE_FEATURES):
        problems.append("node-feat rows do not match num-node-list")
    if raw["edge_index"].shape != (raw["num_edges"].sum(), 2) or len(raw["edge_feat"]) != len(
        raw["edge_index"]
    ):
        problems.append("edge / edge-feat rows do not match num-edge-list")
    if raw["num_nodes"].max(initial=0) >= 1 << 16:
        problems.append("a graph has 65,536 nodes or more")
    for name, idx in splits.items():
        if idx.size and (idx.min() < 0 or idx.max() >= g):
            problems.append(f"split {name} has indices outside 0..{g - 1}")
    if problems:
        raise DatasetError(f"{archive_path}: " + "; ".join(problems) + "; not OGB's pcba.zip")
    arrays = _bidirectional(
        raw["num_nodes"],
        raw["edge_index"],
        raw["num_edges"],
        _small_ints(raw["edge_feat"], "edge-feat", archive_path),
    )
    arrays.update(
        node_feat=_small_ints(raw["node_feat"], "node-feat", archive_path),
        num_nodes=raw["num_nodes"].astype(np.int32),
        labels=raw["labels"].astype(np.float32),
        **{f"split_{s}": idx for s, idx in splits.items()},
    )
    save_arrays(dest, arrays)
    return arrays


def save_arrays(dest: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the converted arrays (`ARRAYS`) into `dest`, each file replaced atomically."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        tmp = dest / f"{name}.tmp.npy"
        np.save(tmp, arrays[name])
        os.replace(tmp, dest / f"{name}.npy")
    _load_cached.cache_clear()  # a re-prepared directory is read again


def prepare(
    data_dir: Path | str,
    *,
    source: Source | None = None,
    progress: bool = True,
    timeout: float = 20.0,
) -> Path:
    """Download ``pcba.zip`` (resumable, verified) and convert it once; return the dataset dir.

    Args:
        data_dir: data root; the dataset goes to ``<data_dir>/ogbg``.
        source: URLs and checksum of the archive (default: `SOURCE`, OGB's file).
        progress: progress bar and messages on stderr.
        timeout: seconds for connecting and for each read.

    Idempotent: a directory whose manifest lists every converted file, unchanged, is returned as
    is. Preflight: refuses to start without room for the archive and the converted arrays.
    """
    source = SOURCE if source is None else source
    dest = Path(data_dir) / DATASET
    archive = dest / ARCHIVE
    if manifest_status(dest) == "ready" and _manifest_format(dest) == FORMAT_VERSION:
        return dest
    need = CONVERTED_SIZE + (0 if archive.is_file() else (source.size or ARCHIVE_SIZE))
    check_free_space(dest, need, f"{DATASET} (pcba.zip and its converted arrays)")
    download_file(
        source.urls,
        archive,
        sha256=source.sha256,
        size=source.size,
        timeout=timeout,
        progress=progress,
    )
    arrays = convert(archive, dest, progress=progress)
    write_manifest(
        dest,
        [ARCHIVE, *(f"{n}.npy" for n in ARRAYS)],
        dataset=DATASET,
        format_version=FORMAT_VERSION,
        num_graphs=len(arrays["num_nodes"]),
        splits={s: len(arrays[f"split_{s}"]) for s in SPLIT_FILES},
    )
    _load_cached.cache_clear()
    _say(progress, f"ogbg: {len(arrays['num_nodes'])} graphs ready in {dest}")
    return dest


def _manifest_format(dest: Path) -> int | None:
    try:
        return json.loads((dest / MANIFEST_NAME).read_text()).get("format_version")
    except (OSError, ValueError):
        return None


def prepare_dataset(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    **kwargs: object,
) -> Path:
    """`algoperf datasets prepare ogbg` entry (the `algoperf.data.DATASETS` signature).

    ogbg has no offline source, so `offline_fallback` has no effect.
    """
    del offline_fallback
    if dataset != DATASET:
        raise ValueError(f"workloads.ogbg.data prepares {DATASET!r}, not {dataset!r}")
    return prepare(data_dir, progress=progress, **kwargs)  # type: ignore[arg-type]
