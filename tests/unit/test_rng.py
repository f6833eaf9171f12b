"""RNG proxy (NumPy emulation, JAX backend) and the runner's seed derivation, against upstream."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from algoperf import random_utils as prng
from algoperf import rng

# Expected keys below were obtained once by running upstream AlgoPerf's `algoperf/random_utils.py`
# (mlcommons/algorithmic-efficiency, commit 2c90454f) from a temporary directory, with absl
# `FLAGS.framework` set to "pytorch" (NumPy emulation) or "jax" (after upstream's
# `jax.config.update('jax_default_prng_impl', 'threefry2x32')` and
# `jax.config.update('jax_threefry_partitionable', True)`, jax 0.10.2), following the calls of
# upstream's `submission_runner.py`: `rng = PRNGKey(seed)`, for external tuning
# `rng, _ = split(rng, 2)`, `data, opt_init, model_init, loop = split(rng, 4)`, and per step
# `split(fold_in(loop, global_step), 4)`. Keys are printed as lists of ints.

NUMPY_PRNG_KEY = {
    0: [209652396, 398764591],
    1: [1791095845, 2135392491],
    42: [1608637542, 1273642419],
    -7: [16554512, 1212135392],
    2**31 - 1: [209652396, 398764591],  # == seed 0 after the modulo 2**31 - 1
    2**31 + 5: [1687321482, 1921895113],
    3_000_000_000: [1857154464, 2008679458],
}
NUMPY_SPLIT3 = {
    0: [[1490491116, 1775704360], [1052448728, 939031488], [1442483404, 1069925208]],
    42: [[432194565, 813807881], [1993579312, 1438804140], [1816096436, 1278005139]],
}
NUMPY_FOLD_IN5 = {0: [1490491116, 5], 42: [432194565, 5]}

JAX_PRNG_KEY = {0: [0, 0], 1: [0, 1], 42: [0, 42], 2**31 + 5: [0, 2**31 + 5]}
JAX_SPLIT3 = {
    0: [[1797259609, 2579123966], [928981903, 3453687069], [4146024105, 2718843009]],
    42: [[1832780943, 270669613], [64467757, 2916123636], [2465931498, 255383827]],
}
JAX_FOLD_IN5 = {0: [1524306142, 1887795613], 42: [2765691542, 824333390]}

# (seed, ruleset) -> trial key, (data, opt_init, model_init, loop), step keys for steps 0..3
# (each step: data_select, update, prep_eval, eval).
# fmt: off
RUNNER_CHAIN = {
    "pytorch": {
        (42, "external"): (
            [432194565, 813807881],
            [[1850274565, 1788412694], [1112605331, 1211592754], [59517614, 1732731800],
             [1680936811, 339609609]],
            [
                [[889307507, 1139078794], [1126166638, 1205172892], [1051301847, 484838610],
                 [1426661854, 329807865]],
                [[842019106, 1070269992], [1559685248, 1876963935], [738409025, 1983558765],
                 [1341489909, 1529762099]],
                [[71805195, 1658712348], [1454362140, 1521615460], [482593927, 1395296529],
                 [407781755, 1372587707]],
                [[282956088, 2031715170], [163299279, 739409962], [630335379, 76296291],
                 [1483043110, 1559181213]],
            ],
        ),
        (1234567890, "external"): (
            [123119344, 2114309300],
            [[1691575028, 143412158], [1648226388, 1339361887], [2027998565, 1230130936],
             [1042704072, 1400090292]],
            [
                [[311345628, 947898126], [489390800, 484464199], [271656791, 773434920],
                 [510662741, 1942105947]],
                [[918772336, 714129964], [136829158, 2092950953], [1558002259, 475478665],
                 [21294379, 203052375]],
                [[627472394, 1908737462], [1749299765, 1562239407], [825648882, 1508779122],
                 [79059163, 1957574827]],
                [[89028617, 1974701026], [1703052713, 92505091], [1743313551, 1305547166],
                 [1361055569, 391242138]],
            ],
        ),
        (-5, "self"): (
            [664996532, 1143594053],
            [[354143341, 123988592], [1052579251, 1167400055], [483418116, 1328288746],
             [1366692868, 2109709126]],
            [
                [[200579455, 195159397], [1548229708, 1025809884], [1741942329, 368120591],
                 [1106833804, 601458324]],
                [[1589485935, 1306377554], [548656084, 742110063], [576354795, 461055198],
                 [388959830, 66530097]],
                [[762931407, 131127100], [977222777, 728083569], [154664338, 443419932],
                 [1546669425, 681884615]],
                [[917087763, 581740157], [1151165254, 1582406653], [1397027437, 1453311983],
                 [1966475588, 1386033892]],
            ],
        ),
    },
    "jax": {
        (42, "external"): (
            [1832780943, 270669613],
            [[1012194634, 3152801799], [1705926158, 899080142], [4095997477, 317277840],
             [1820970612, 3729538270]],
            [
                [[1236066967, 3868644033], [1182870605, 3501116996], [1426589868, 1989012249],
                 [3285067785, 128652526]],
                [[2054375847, 2315276322], [3145959015, 3175981409], [3641270844, 1079340666],
                 [1724388577, 2312810797]],
                [[1297125532, 3088777117], [72470302, 3833446027], [1045950198, 566866632],
                 [2213642939, 1647798938]],
                [[3831520752, 1775765923], [1583281416, 925977659], [177633751, 2482886248],
                 [529902427, 3544324187]],
            ],
        ),
        (1234567890, "external"): (
            [4020679423, 3052741194],
            [[4171060363, 4198742868], [2968548558, 1988640147], [1284162052, 2404166487],
             [2537267346, 844439594]],
            [
                [[1224337701, 296066561], [4251385750, 1597755706], [4172065190, 1403374964],
                 [4049140830, 3960814322]],
                [[333847863, 3727115246], [3022148797, 3857661660], [973392241, 84813586],
                 [766960476, 3107144757]],
                [[4116187381, 1337502783], [4275213113, 3252288815], [2029871948, 911322073],
                 [2409832341, 1087099509]],
                [[1361187167, 4202511624], [4236386175, 3678611377], [622973829, 1120401496],
                 [346947800, 3464830341]],
            ],
        ),
        (-5, "self"): (
            [0, 4294967291],
            [[2499647543, 968047584], [3758264135, 3836933082], [1558829475, 1585976765],
             [311769057, 2376794222]],
            [
                [[4286785210, 3691451305], [1477651164, 3038231820], [675551877, 2778085512],
                 [3337644037, 4196380415]],
                [[4173923317, 170431453], [867576869, 1044264065], [2058620340, 3251530278],
                 [620249568, 233530102]],
                [[2475303954, 1603903808], [1778468421, 578777561], [3300407391, 2939235397],
                 [3849556887, 1121958339]],
                [[3438092558, 4216760747], [3561259469, 3889577713], [1647749983, 3146141798],
                 [3540766798, 1556148780]],
            ],
        ),
    },
}
# fmt: on


def as_list(key: object) -> list:
    """A key (ndarray, jax.Array, or the NumPy emulation's [seed, data] list) as plain ints."""
    if isinstance(key, list):
        return [int(x) for x in key]
    return np.asarray(key).astype(np.int64).tolist()


@pytest.fixture
def framework() -> Iterator[None]:
    """Restore the process-wide backend after a test changes it."""
    before = prng.get_framework()
    yield
    prng.set_framework(before)


@pytest.fixture(scope="module")
def jax_random():
    jax = pytest.importorskip("jax")
    rng.configure_jax_prng()
    return jax.random


def test_importing_rng_modules_imports_no_framework() -> None:
    code = (
        "import sys, algoperf.random_utils, algoperf.rng, algoperf.tuning; "
        "bad = [m for m in ('jax', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("seed", NUMPY_PRNG_KEY)
def test_numpy_prng_key_equals_upstream(seed: int, framework: None) -> None:
    prng.set_framework("pytorch")
    key = prng.PRNGKey(seed)
    assert isinstance(key, np.ndarray) and key.dtype == np.int32 and key.shape == (2,)
    assert as_list(key) == NUMPY_PRNG_KEY[seed]


@pytest.mark.parametrize("seed", NUMPY_SPLIT3)
def test_numpy_split_and_fold_in_equal_upstream(seed: int, framework: None) -> None:
    prng.set_framework("pytorch")
    keys = prng.split(prng.PRNGKey(seed), 3)
    assert keys.dtype == np.int32 and keys.shape == (3, 2)
    assert as_list(keys) == NUMPY_SPLIT3[seed]
    folded = prng.fold_in(prng.PRNGKey(seed), 5)
    assert as_list(folded) == NUMPY_FOLD_IN5[seed]
    assert isinstance(folded, list) and isinstance(folded[0], np.int32) and folded[1] == 5


def test_numpy_emulation_reduces_seeds_modulo_2_31_minus_1() -> None:
    modulus = 2**31 - 1
    for seed in (-1, -(2**40) + 3, 2**31 + 5, 2**63 - 1):
        assert as_list(prng.numpy_prng_key(seed)) == as_list(prng.numpy_prng_key(seed % modulus))
    # A key holding a negative or huge element reduces each element the same way.
    assert as_list(prng.numpy_split([-(2**33), 7])) == as_list(
        prng.numpy_split([(-(2**33)) % modulus, 7])
    )
    # fold_in passes data through unchanged, even a negative 64-bit hash.
    assert prng.numpy_fold_in(np.array([1, 2]), -(2**62))[1] == -(2**62)


def test_numpy_integer_scalars_are_seeds_like_ints() -> None:
    assert as_list(prng.numpy_prng_key(np.int32(42))) == NUMPY_PRNG_KEY[42]
    assert as_list(prng.numpy_prng_key(np.uint64(42))) == NUMPY_PRNG_KEY[42]
    assert as_list(prng.numpy_split((0, 5))) == as_list(prng.numpy_split([0, 5]))


@pytest.mark.parametrize("bad", [1.5, "42", True, None, np.zeros((2, 2), dtype=np.int32)])
def test_numpy_emulation_rejects_non_integer_seeds(bad: object) -> None:
    with pytest.raises(TypeError):
        prng.numpy_split(bad)


def test_set_framework_validates() -> None:
    with pytest.raises(ValueError, match="framework"):
        prng.set_framework("tensorflow")


@pytest.mark.parametrize("seed", JAX_SPLIT3)
def test_jax_backend_is_jax_random(seed: int, jax_random, framework: None) -> None:
    prng.set_framework("jax")
    key = prng.PRNGKey(seed)
    assert as_list(key) == as_list(jax_random.PRNGKey(seed)) == JAX_PRNG_KEY[seed]
    keys = prng.split(key, 3)
    assert as_list(keys) == as_list(jax_random.split(key, 3)) == JAX_SPLIT3[seed]
    folded = prng.fold_in(key, 5)
    assert as_list(folded) == as_list(jax_random.fold_in(key, 5)) == JAX_FOLD_IN5[seed]


def test_jax_prng_key_keeps_low_32_bits(jax_random, framework: None) -> None:
    prng.set_framework("jax")
    assert as_list(prng.PRNGKey(2**31 + 5)) == JAX_PRNG_KEY[2**31 + 5]


def test_automatic_mode_follows_the_key(jax_random, framework: None) -> None:
    prng.set_framework(None)
    assert as_list(prng.PRNGKey(42)) == NUMPY_PRNG_KEY[42]  # upstream's non-JAX default
    jax_key = jax_random.PRNGKey(42)
    assert as_list(prng.split(jax_key, 3)) == JAX_SPLIT3[42]
    assert as_list(prng.fold_in(jax_key, 5)) == JAX_FOLD_IN5[42]
    assert as_list(prng.split(prng.PRNGKey(42), 3)) == NUMPY_SPLIT3[42]


def test_jax_key_under_numpy_backend_is_an_error(jax_random, framework: None) -> None:
    prng.set_framework("pytorch")
    with pytest.raises(TypeError, match="set_framework"):
        prng.split(jax_random.PRNGKey(0))


def test_configure_process_sets_backend_and_jax_options(jax_random, framework: None) -> None:
    import jax

    jax.config.update("jax_threefry_partitionable", False)
    try:
        rng.configure_process("jax")
        assert prng.get_framework() == "jax"
        assert jax.config.jax_threefry_partitionable is True
        assert jax.config.jax_default_prng_impl == "threefry2x32"
    finally:
        rng.configure_jax_prng()
    rng.configure_process("pytorch")
    assert prng.get_framework() == "pytorch"


def chain_params() -> list:
    return [
        pytest.param(fw, seed, ruleset, id=f"{fw}-{ruleset}-{seed}")
        for fw, table in RUNNER_CHAIN.items()
        for seed, ruleset in table
    ]


@pytest.mark.parametrize(("fw", "seed", "ruleset"), chain_params())
def test_seed_derivation_equals_upstream_runner(
    fw: str, seed: int, ruleset: str, framework: None, request: pytest.FixtureRequest
) -> None:
    if fw == "jax":
        request.getfixturevalue("jax_random")
    # The derivation must not depend on the process-wide backend: set the other one.
    prng.set_framework("pytorch" if fw == "jax" else "jax")
    want_trial, want_train, want_steps = RUNNER_CHAIN[fw][(seed, ruleset)]
    trial = rng.trial_rng(seed, fw, ruleset)
    assert as_list(trial) == want_trial
    keys = rng.train_rngs(trial)
    assert [as_list(k) for k in keys] == want_train
    assert as_list(keys.loop) == want_train[3] and as_list(keys.data) == want_train[0]
    for step, want in enumerate(want_steps):
        step_keys = rng.step_rngs(keys.loop, step)
        assert [as_list(k) for k in step_keys] == want
        assert as_list(step_keys.prep_eval) == want[2]


def test_draw_seed_unpacks_os_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rng.os, "urandom", lambda n: b"\xff" * n)
    assert rng.draw_seed("external") == 2**32 - 1  # struct 'I': unsigned 32-bit
    assert rng.draw_seed("self") == -1  # struct 'q': signed 64-bit
    monkeypatch.undo()
    seeds = {rng.draw_seed("external") for _ in range(8)}
    assert len(seeds) > 1 and all(0 <= s < 2**32 for s in seeds)
    assert all(-(2**63) <= rng.draw_seed("self") < 2**63 for _ in range(8))


def test_resolve_seed_treats_zero_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rng.os, "urandom", lambda n: b"\x07" * n)
    drawn = rng.draw_seed("external")
    assert rng.resolve_seed(123, "external") == 123
    assert rng.resolve_seed(-9, "self") == -9
    assert rng.resolve_seed(0, "external") == drawn
    assert rng.resolve_seed(None, "external") == drawn
    assert rng.resolve_seed(None, "self") == rng.draw_seed("self")


@pytest.mark.parametrize(
    "call",
    [
        lambda: rng.draw_seed("selftuning"),
        lambda: rng.resolve_seed(1, "internal"),
        lambda: rng.trial_rng(1, "pytorch", "both"),
        lambda: rng.trial_rng(1, "tensorflow", "external"),
    ],
)
def test_bad_ruleset_or_framework_is_rejected(call) -> None:
    with pytest.raises(ValueError):
        call()
