"""Search-space parsing, Halton sampling equal to upstream, trial selection and hparams.json."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from algoperf import halton, tuning
from algoperf.tuning import SearchSpaceError

# Expected values below were obtained once by running upstream AlgoPerf's `algoperf/halton.py`
# (mlcommons/algorithmic-efficiency, commit 2c90454f) from a temporary directory with its final
# trial shuffle disabled (`halton.random.shuffle = lambda x: None`), calling
# `halton.generate_search(space, n)` / `halton.generate_sequence(3, 2, shuffle_sequence=False)` and
# printing `repr(tuple(point))`. Comparisons are exact: the values must be bit-identical.

ONE_DIM_LOG = {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"}}
ONE_DIM_LOG_EXPECTED = [
    (0.00037346383673561915,),
    (0.004571288863341667,),
    (0.0005267355755292755,),
    (0.0008905229651342254,),
    (0.005608385506394282,),
]

MIXED = {
    "learning_rate": {"min": 1e-3, "max": 1.0, "scaling": "log"},
    "warmup_factor": {"min": 0.0, "max": 0.2, "scaling": "linear"},
    "label_smoothing": {"feasible_points": [0.0, 0.1, 0.2]},
    "nesterov": {"feasible_points": [True, False]},
    "num_steps": {"min": 10, "max": 20, "scaling": "linear"},
}
MIXED_EXPECTED = [
    (0.012371563190639187, 0.1382895186709177, 0.0, True, 12.861242772838189),
    (0.021291455099786135, 0.18442752073064994, 0.2, False, 18.300193327833142),
    (0.03291928780704568, 0.07011238169872408, 0.0, True, 13.607963257197419),
    (0.768421212272714, 0.10059641877390431, 0.0, True, 14.748225618448682),
    (0.13068010642607375, 0.06764070301695271, 0.0, True, 18.744189291506203),
    (0.026380115804270073, 0.18545738684805468, 0.2, True, 17.72501673852941),
]

# The 7-dimensional NAdamW baseline space of upstream's archived paper baselines.
NADAMW = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
    "one_minus_beta1": {"min": 4e-3, "max": 0.1, "scaling": "log"},
    "beta2": {"feasible_points": [0.999]},
    "warmup_factor": {"feasible_points": [0.05]},
    "weight_decay": {"min": 5e-3, "max": 1.0, "scaling": "log"},
    "label_smoothing": {"feasible_points": [0.1, 0.2]},
    "dropout_rate": {"feasible_points": [0.0, 0.1]},
}
NADAMW_EXPECTED = [
    (0.0019814680146414726, 0.045677535963609565, 0.999, 0.05, 0.010340635370188849, 0.1, 0.0),
    (0.0002366315233112939, 0.007676940273940445, 0.999, 0.05, 0.358796133013872, 0.2, 0.1),
    (0.0009554263254837416, 0.05281759963218209, 0.999, 0.05, 0.01950318659958426, 0.1, 0.0),
    (0.00010054778177688589, 0.005702987383013654, 0.999, 0.05, 0.012638327613865154, 0.1, 0.0),
    (0.00019766560226064676, 0.040447795913733486, 0.999, 0.05, 0.012300240728935494, 0.1, 0.1),
]

RAW_3X2_EXPECTED = [
    (0.2739744372653363, 0.28612427728381884),
    (0.9911667058309517, 0.8300193327833143),
    (0.23023079535282354, 0.36079632571974196),
]

# Upstream's v0.6 baseline: an explicit list of points (abridged to three keys and three points).
LIST_SPACE = [
    {"dropout_rate": 0.0, "learning_rate": 0.001308209823469072, "warmup_factor": 0.1},
    {"dropout_rate": 0.0, "learning_rate": 0.0008445074561975979, "warmup_factor": 0.05},
    {"dropout_rate": 0.1, "learning_rate": 0.0017486387539278373, "warmup_factor": 0.02},
]


def write_json(tmp_path: Path, data: object, name: str = "space.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_halton_bases_are_the_largest_odd_primes_below_997() -> None:
    primes = halton.odd_primes_below(1000)
    assert len(primes) == 167 and primes[0] == 3 and primes[-1] == 997
    assert halton.bases(1) == [991]
    assert halton.bases(2) == [983, 991]
    assert halton.bases(7) == [947, 953, 967, 971, 977, 983, 991]
    # More dimensions than primes below 1000 widen the window to primes below 2000.
    assert halton.bases(170)[-1] == halton.odd_primes_below(2000)[-2]


def test_raw_sequence_matches_upstream() -> None:
    assert halton.sequence(3, 2) == RAW_3X2_EXPECTED


@pytest.mark.parametrize(
    ("space", "expected"),
    [(ONE_DIM_LOG, ONE_DIM_LOG_EXPECTED), (MIXED, MIXED_EXPECTED), (NADAMW, NADAMW_EXPECTED)],
    ids=["one_dim_log", "mixed", "nadamw_7dim"],
)
def test_halton_points_equal_upstream(space: dict, expected: list[tuple], tmp_path: Path) -> None:
    points = tuning.generate_search(
        tuning.load_search_space(write_json(tmp_path, space)), len(expected)
    )
    assert [tuple(p) for p in points] == expected
    assert all(type(p).__name__ == "Hyperparameters" for p in points)
    assert all(p._fields == tuple(space) for p in points)
    # Values keep upstream's types: discrete points verbatim, ranges as floats.
    for point, want in zip(points, expected, strict=True):
        assert [type(v) for v in point] == [type(v) for v in want]


def test_trial_k_gets_point_k_whatever_num_trials() -> None:
    assert tuning.generate_search(MIXED, 2) == tuning.generate_search(MIXED, 6)[:2]
    assert tuning.generate_search(MIXED, 1)[0].nesterov is True


def test_list_form_is_used_verbatim_in_file_order(tmp_path: Path) -> None:
    space = tuning.load_search_space(write_json(tmp_path, LIST_SPACE))
    assert space.is_list and space.names == ("dropout_rate", "learning_rate", "warmup_factor")
    points = tuning.generate_search(space, 5)  # more trials than points: all points, no error
    assert [p._asdict() for p in points] == LIST_SPACE
    assert [p._asdict() for p in tuning.generate_search(space, 2)] == LIST_SPACE[:2]


def test_list_form_fields_follow_the_first_point() -> None:
    space = [{"b": 1, "a": "x", "c": [1, 2]}, {"c": None, "a": True, "b": 2.5}]
    points = tuning.generate_search(space, 2)
    assert points[0]._fields == ("b", "a", "c")
    assert tuple(points[1]) == (2.5, True, None)
    assert tuple(points[0]) == (1, "x", [1, 2])


def test_to_json_round_trips_both_forms() -> None:
    for data in (MIXED, NADAMW, LIST_SPACE):
        space = tuning.parse_search_space(data)
        assert space.to_json() == data
        assert tuning.parse_search_space(space.to_json()) == space


def test_num_trials_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_trials"):
        tuning.generate_search(MIXED, 0)


MALFORMED = {
    "not_json": ("{'learning_rate': 1}", "not valid JSON"),
    "empty_file": ("", "file is empty"),
    "blank_file": ("  \n", "file is empty"),
    "nan": ('{"lr": {"min": NaN, "max": 1, "scaling": "linear"}}', "NaN"),
    "duplicate_key": ('{"lr": {"feasible_points": [1]}, "lr": {"feasible_points": [2]}}', "twice"),
    "top_level_number": (3, "top level"),
    "empty_object": ({}, "object is empty"),
    "empty_list": ([], "list is empty"),
    "min_gt_max": ({"lr": {"min": 2.0, "max": 1.0, "scaling": "linear"}}, "swap them"),
    "log_min_zero": ({"lr": {"min": 0.0, "max": 1.0, "scaling": "log"}}, "positive min"),
    "log_min_negative": ({"lr": {"min": -1, "max": 1.0, "scaling": "log"}}, "positive min"),
    "unknown_key": ({"lr": {"min": 0, "max": 1, "scaling": "linear", "step": 1}}, "'step'"),
    "range_and_points": ({"lr": {"min": 0, "max": 1, "feasible_points": [0]}}, "not both"),
    "missing_scaling": ({"lr": {"min": 0, "max": 1}}, "lacks 'scaling'"),
    "bad_scaling": ({"lr": {"min": 0, "max": 1, "scaling": "exp"}}, '"log" or "linear"'),
    "string_min": ({"lr": {"min": "1e-3", "max": 1, "scaling": "log"}}, "finite JSON number"),
    "bool_max": ({"lr": {"min": 0, "max": True, "scaling": "linear"}}, "finite JSON number"),
    "empty_points": ({"lr": {"feasible_points": []}}, "non-empty JSON list"),
    "points_not_list": ({"lr": {"feasible_points": 0.1}}, "non-empty JSON list"),
    "dim_not_object": ({"lr": 0.1}, '{"feasible_points": [0.1]}'),
    "list_mixed_keys": ([{"a": 1, "b": 2}, {"a": 1, "c": 2}], "different keys"),
    "list_entry_not_object": ([{"a": 1}, 5], "list entry 1"),
    "list_empty_point": ([{}], "list entry 0"),
    "name_not_identifier": ({"learning-rate": {"feasible_points": [1]}}, "not a valid Python"),
    "name_keyword": ([{"lambda": 1}], "not a valid Python"),
    "name_underscore": ({"_lr": {"feasible_points": [1]}}, "underscore"),
}


@pytest.mark.parametrize(("content", "fragment"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_search_space_raises_one_line_error(
    content: object, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "tuning_search_space.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(SearchSpaceError) as info:
        tuning.load_search_space(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_missing_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="--tuning_search_space"):
        tuning.load_search_space(tmp_path / "nope.json")


def test_parse_accepts_raw_json_data_and_rejects_bad_data() -> None:
    assert tuning.parse_search_space(ONE_DIM_LOG).dimensions[0].scaling == "log"
    with pytest.raises(SearchSpaceError, match="<search space>"):
        tuning.generate_search({"lr": {"min": 1, "max": 0, "scaling": "linear"}}, 1)


POINTS = [f"p{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("start", "end"), [(None, None), (2, 3), (1, None), (None, 2), (3, 10), (0, 5), (4, 5)]
)
def test_select_trials_mirrors_islice(start: int | None, end: int | None) -> None:
    selected = tuning.select_trials(POINTS, start, end)
    assert selected == list(itertools.islice(enumerate(POINTS), start, end))


def test_select_trials_single_trial_keeps_its_index() -> None:
    assert tuning.select_trials(POINTS, 2, 3) == [(2, "p2")]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (None, -2), (5, None), (2, 2), (3, 1)])
def test_select_trials_rejects_empty_or_negative_ranges(start: int | None, end: int | None) -> None:
    with pytest.raises(ValueError, match="hparam_"):
        tuning.select_trials(POINTS, start, end)


def test_hparams_json_text_matches_upstream_layout() -> None:
    point = tuning.generate_search(NADAMW, 1)[0]
    assert tuning.hparams_to_json(point) == json.dumps(point._asdict(), indent=2)
    assert list(tuning.hparams_to_dict(point)) == list(NADAMW)


def test_hparams_written_then_reused_on_resume(tmp_path: Path) -> None:
    first, second = tuning.generate_search(MIXED, 2)
    assert tuning.resume_or_write_hparams(first, tmp_path) == first
    path = tmp_path / tuning.HPARAMS_FILENAME
    assert path.read_text(encoding="utf-8") == tuning.hparams_to_json(first)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away
    # A second call (a resumed trial) gets the stored values back, not the new point.
    reused = tuning.resume_or_write_hparams(second, tmp_path)
    assert reused == first and reused._fields == first._fields
    assert type(reused).__name__ == "Hyperparameters"
    assert tuning.load_hparams(path) == first


def test_hparams_not_written_when_not_the_writer(tmp_path: Path) -> None:
    point = tuning.generate_search(ONE_DIM_LOG, 1)[0]
    assert tuning.resume_or_write_hparams(point, tmp_path, write=False) == point
    assert not (tmp_path / tuning.HPARAMS_FILENAME).exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "{}", '{"a-b": 1}'])
def test_bad_hparams_file_is_a_clear_error(content: str, tmp_path: Path) -> None:
    path = tmp_path / tuning.HPARAMS_FILENAME
    path.write_text(content, encoding="utf-8")
    with pytest.raises(tuning.HparamsFileError) as info:
        tuning.resume_or_write_hparams(tuning.generate_search(ONE_DIM_LOG, 1)[0], tmp_path)
    assert str(path) in str(info.value) and "delete it" in str(info.value)
    assert "\n" not in str(info.value)
