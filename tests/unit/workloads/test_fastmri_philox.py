"""TF's stateless Philox in numpy and upstream's fastMRI masks and preprocessing (golden values).

Golden values: the Random123 known-answer vectors for Philox-4x32-10, and outputs of TensorFlow
2.21 (``tf.random.stateless_uniform``, ``tf.random.experimental.stateless_fold_in``, a
``tf.data`` interleave with upstream's arguments, and upstream's ``_process_example`` run on
k-space drawn below), recorded once; TensorFlow is not needed to run these tests.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from workloads.fastmri import data, philox

# Random123 kat_vectors: philox4x32 10 <counter> <key> -> <output>.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]

TF_UNIFORM = {
    (0, 0): [
        0.2110154628753662,
        0.7060099840164185,
        0.8000633716583252,
        0.7707922458648682,
        0.38858866691589355,
        0.8703594207763672,
    ],
    (1, 2): [
        0.8440604209899902,
        0.19204533100128174,
        0.9962232112884521,
        0.16038739681243896,
        0.27199018001556396,
        0.6493459939956665,
    ],
    (-1, 5): [
        0.5690146684646606,
        0.8657257556915283,
        0.5149633884429932,
        0.6814154386520386,
        0.9254287481307983,
        0.4069552421569824,
    ],
    (9223372036854775807, -9223372036854775808): [
        0.42374980449676514,
        0.9102983474731445,
        0.5814179182052612,
        0.3070935010910034,
        0.2518610954284668,
        0.7169449329376221,
    ],
    (123456789, 987654321): [
        0.7978612184524536,
        0.8770014047622681,
        0.7122980356216431,
        0.6034976243972778,
        0.2451925277709961,
        0.9495046138763428,
    ],
}
TF_FOLD_IN_77 = {
    (0, 0): [-6856063536328932722, 77],
    (1, 2): [7464880146280614444, 77],
    (-1, 5): [-9084094585599634055, 77],
    (9223372036854775807, -9223372036854775808): [6698124406389357935, 77],
    (123456789, 987654321): [-5372722246661562287, 77],
}

INTERLEAVE_COUNTS = [
    70,
    76,
    113,
    142,
    5,
    21,
    123,
    142,
    37,
    46,
    130,
    63,
    40,
    124,
    38,
    61,
    96,
    82,
    12,
    4,
    129,
    113,
    125,
    80,
    122,
    49,
    67,
    118,
    18,
    45,
    18,
    68,
    146,
    20,
    57,
    60,
    135,
    64,
    128,
    1,
]
INTERLEAVE_SHA256 = "1359062eb2a29a68fafae969c885b3c9730c02355a513b64523f18507bb2d4f7"

EVAL_MASKS = {
    368: [
        10,
        11,
        19,
        20,
        25,
        28,
        30,
        32,
        38,
        49,
        53,
        55,
        63,
        66,
        69,
        76,
        82,
        86,
        91,
        105,
        113,
        118,
        122,
        125,
        135,
        140,
        153,
        156,
        162,
        164,
        170,
        171,
        172,
        173,
        174,
        175,
        176,
        177,
        178,
        179,
        180,
        181,
        182,
        183,
        184,
        185,
        186,
        187,
        188,
        189,
        190,
        191,
        192,
        193,
        194,
        195,
        196,
        197,
        198,
        202,
        203,
        208,
        219,
        226,
        228,
        232,
        233,
        237,
        242,
        245,
        249,
        250,
        253,
        266,
        274,
        283,
        286,
        294,
        296,
        301,
        302,
        305,
        309,
        312,
        320,
        321,
        322,
        326,
        330,
        333,
        346,
        351,
        352,
        358,
        361,
        363,
        366,
    ],
    640: [
        10,
        11,
        19,
        20,
        25,
        28,
        30,
        32,
        38,
        49,
        53,
        55,
        63,
        66,
        69,
        76,
        82,
        86,
        91,
        105,
        113,
        118,
        122,
        125,
        135,
        140,
        153,
        156,
        162,
        164,
        172,
        179,
        188,
        190,
        197,
        202,
        203,
        208,
        219,
        226,
        228,
        232,
        233,
        237,
        242,
        245,
        249,
        250,
        253,
        266,
        274,
        283,
        286,
        294,
        295,
        296,
        297,
        298,
        299,
        300,
        301,
        302,
        303,
        304,
        305,
        306,
        307,
        308,
        309,
        310,
        311,
        312,
        313,
        314,
        315,
        316,
        317,
        318,
        319,
        320,
        321,
        322,
        323,
        324,
        325,
        326,
        327,
        328,
        329,
        330,
        331,
        332,
        333,
        334,
        335,
        336,
        337,
        338,
        339,
        340,
        341,
        342,
        343,
        344,
        345,
        346,
        351,
        352,
        358,
        361,
        363,
        366,
        372,
        380,
        385,
        386,
        387,
        390,
        392,
        393,
        394,
        400,
        408,
        409,
        410,
        418,
        421,
        431,
        452,
        455,
        470,
        471,
        482,
        496,
        497,
        509,
        510,
        513,
        514,
        515,
        519,
        523,
        525,
        535,
        538,
        539,
        544,
        554,
        555,
        556,
        568,
        569,
        574,
        580,
        587,
        597,
        599,
        607,
        627,
        629,
        630,
        633,
        635,
    ],
}
TRAIN_SEED_7_12345 = [996995366859546695, 12345]
TRAIN_MASK_7_12345_W368 = [
    0,
    4,
    5,
    10,
    15,
    33,
    39,
    42,
    43,
    45,
    47,
    53,
    57,
    59,
    67,
    68,
    69,
    72,
    77,
    79,
    80,
    83,
    88,
    89,
    90,
    93,
    114,
    115,
    121,
    133,
    162,
    164,
    165,
    170,
    171,
    172,
    173,
    174,
    175,
    176,
    177,
    178,
    179,
    180,
    181,
    182,
    183,
    184,
    185,
    186,
    187,
    188,
    189,
    190,
    191,
    192,
    193,
    194,
    195,
    196,
    197,
    198,
    199,
    201,
    203,
    208,
    219,
    231,
    232,
    247,
    249,
    254,
    256,
    265,
    269,
    278,
    279,
    282,
    283,
    291,
    294,
    295,
    298,
    302,
    307,
    309,
    312,
    317,
    318,
    333,
    336,
    340,
    347,
    350,
    357,
]
PROCESSED = {
    368: {
        "mean": 6.434222996176686e-06,
        "std": 3.36178345605731e-06,
        "inputs_sum": -0.14035722475910006,
        "targets_sum": 528729.4309869712,
        "inputs_grid": [
            [
                -0.14953291416168213,
                -0.3957858085632324,
                0.11438633501529694,
                0.9699582457542419,
                0.3399311900138855,
            ],
            [
                0.5480713248252869,
                -1.0561434030532837,
                -0.7714985609054565,
                1.6340789794921875,
                0.4606722295284271,
            ],
            [
                -0.7011168003082275,
                1.331288456916809,
                -1.3595898151397705,
                0.9411531090736389,
                0.942903459072113,
            ],
            [
                -0.10995246469974518,
                -0.7237125039100647,
                -0.3497728705406189,
                0.3851812183856964,
                0.770318865776062,
            ],
            [
                0.7417647838592529,
                0.6479758024215698,
                -0.03331124037504196,
                -0.5027002692222595,
                -0.42014679312705994,
            ],
        ],
    },
    372: {
        "mean": 6.4414912230859045e-06,
        "std": 3.3557707865838893e-06,
        "inputs_sum": -0.0023114847472243127,
        "targets_sum": 528466.2917316159,
        "inputs_grid": [
            [
                -1.6623330116271973,
                0.5111729502677917,
                1.7475790977478027,
                2.6178910732269287,
                0.1713528037071228,
            ],
            [
                -1.2777295112609863,
                -0.47940880060195923,
                0.28363361954689026,
                1.3845597505569458,
                -0.6782866716384888,
            ],
            [
                -1.4586372375488281,
                -0.8308194279670715,
                -0.9089938402175903,
                -0.6252028346061707,
                0.8142185211181641,
            ],
            [
                -0.12333764135837555,
                2.7688612937927246,
                3.0293614864349365,
                -0.18817472457885742,
                0.32487359642982483,
            ],
            [
                0.3941445052623749,
                -0.931025505065918,
                -0.07596859335899353,
                -1.4140782356262207,
                0.02975749596953392,
            ],
        ],
    },
}


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers(counter, key, expected):
    out = philox.philox4x32(np.array([counter], dtype=np.uint32), key)
    assert tuple(int(x) for x in out[0]) == expected


def test_philox_rounds_differ_and_counters_are_independent():
    blocks = philox.philox4x32(np.array([[0, 0, 0, 0], [1, 0, 0, 0]], np.uint32), (0, 0))
    assert not np.array_equal(blocks[0], blocks[1])
    seven = philox.philox4x32(np.zeros((1, 4), np.uint32), (0, 0), rounds=7)
    assert not np.array_equal(seven, blocks[:1])


@pytest.mark.parametrize("seed", sorted(TF_UNIFORM))
def test_stateless_uniform_matches_tensorflow(seed):
    got = philox.stateless_uniform(6, seed)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(TF_UNIFORM[seed], np.float32))


@pytest.mark.parametrize("seed", sorted(TF_FOLD_IN_77))
def test_stateless_fold_in_matches_tensorflow(seed):
    assert list(philox.stateless_fold_in(seed, 77)) == TF_FOLD_IN_77[seed]


def test_streams_are_prefixes_of_longer_streams():
    # Block i of a stream uses counter + i: a short draw is a prefix of a longer one.
    short, long = philox.random_words((3, 4), 9), philox.random_words((3, 4), 40)
    np.testing.assert_array_equal(short, long[:9])


@pytest.mark.parametrize("width", sorted(EVAL_MASKS))
def test_eval_masks_are_upstreams(width):
    mask = data.column_mask(width, data.EVAL_SEED)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert np.flatnonzero(mask).tolist() == EVAL_MASKS[width]


def test_train_mask_seed_and_mask_are_upstreams_fold_in():
    seed = data.train_seed(7, 12345)
    assert list(seed) == TRAIN_SEED_7_12345
    assert np.flatnonzero(data.column_mask(368, seed)).tolist() == TRAIN_MASK_7_12345_W368


def test_mask_keeps_the_centre_and_about_a_quarter():
    widths = (320, 368, 372, 401)
    for w in widths:
        masks = np.stack([data.column_mask(w, data.train_seed(1, i)) for i in range(200)])
        n_low = int(np.float32(w) * np.float32(0.08))
        pad = (w - n_low + 1) // 2
        assert masks[:, pad : pad + n_low].all()
        assert abs(masks.mean() - 0.25) < 0.01


def test_interleave_order_matches_tf_data():
    order = data.interleave_order(INTERLEAVE_COUNTS)
    assert len(order) == sum(INTERLEAVE_COUNTS)
    assert hashlib.sha256(order.tobytes()).hexdigest() == INTERLEAVE_SHA256
    # Every slice exactly once.
    assert len({tuple(p) for p in order.tolist()}) == len(order)


@pytest.mark.parametrize("width", sorted(PROCESSED))
def test_process_slice_matches_upstream(width):
    rng = np.random.default_rng(0)
    for w in sorted(PROCESSED):  # the golden run drew both widths in this order
        k = ((rng.standard_normal((640, w)) + 1j * rng.standard_normal((640, w))) * 1e-5).astype(
            np.complex64
        )
        t = (np.abs(rng.standard_normal((320, 320))) * 1e-4).astype(np.float32)
        if w == width:
            break
    ex = data.process_slice(k, t, 0.5, data.EVAL_SEED)
    gold = PROCESSED[width]
    assert ex["inputs"].shape == ex["targets"].shape == (320, 320)
    assert ex["inputs"].dtype == np.float32
    # mean/std agree to float32 rounding (TF's FFT differs from pocketfft in the last bits).
    np.testing.assert_allclose(ex["mean"], gold["mean"], rtol=1e-6)
    np.testing.assert_allclose(ex["std"], gold["std"], rtol=1e-6)
    np.testing.assert_allclose(ex["inputs"][::64, ::64], gold["inputs_grid"], atol=1e-5)
    # Sums over 102,400 pixels: at most 1e-6 of float32 rounding per pixel on average.
    assert abs(float(ex["inputs"].astype(np.float64).sum()) - gold["inputs_sum"]) < 0.1
    assert abs(float(ex["targets"].astype(np.float64).sum()) - gold["targets_sum"]) < 0.1
    assert ex["volume_max"] == np.float32(0.5)
    assert np.abs(ex["inputs"]).max() <= 6.0
