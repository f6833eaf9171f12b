"""Per-version target sets: generated from the workload specs, frozen where published."""

from __future__ import annotations

import json

import pytest

from algoperf.registry import all_configs
from scoring import targets as tg

V05_BUDGETS = {  # reference §7: max runtime (s), step hint in v0.5
    "criteo1tb": (7_703, 10_666),
    "fastmri": (8_859, 36_189),
    "imagenet_resnet": (63_008, 186_666),
    "imagenet_vit": (77_520, 186_666),
    "librispeech_conformer": (61_068, 80_000),
    "librispeech_deepspeech": (55_506, 48_000),
    "ogbg": (18_477, 80_000),
    "wmt": (48_151, 133_333),
}


@pytest.mark.parametrize("version", ["current", "dev", "mini"])
def test_unfrozen_files_equal_what_the_specs_generate(version):
    path = tg.TARGETS_DIR / tg.VERSION_FILES[version]
    assert path.read_text() == tg.render(version), (
        f"{path} is stale: run `python -m scoring.targets --write`"
    )


def test_frozen_versions_still_agree_with_the_specs_targets():
    # Targets did not change between v0.5 and v0.6; budgets and step hints did.
    specs = all_configs()
    for version in ("0.5", "0.6"):
        t = tg.load_targets(version)
        assert "fashion_mnist" not in t.workloads  # ours, not upstream's
        for name, w in t.workloads.items():
            if name in tg.UPSTREAM_DEV_WORKLOADS:
                continue  # development targets may move; they are never scored in a version
            assert w.validation_target_value == specs[name].validation_target_value, name
            assert w.target_metric_name == specs[name].target_metric_name, name


def test_v05_set():
    t = tg.load_targets("0.5")
    assert t.base_workloads == tg.BASE_WORKLOADS
    assert set(t.held_out_workloads) == {
        "librispeech_conformer_layernorm",
        "imagenet_resnet_large_bn_init",
        "ogbg_model_size",
        "wmt_glu_tanh",
        "fastmri_tanh",
        "criteo1tb_embed_init",
    }
    assert (t.num_studies, t.num_trials, t.self_tuning_budget_factor) == (5, 5, 3.0)
    for base, (budget, hint) in V05_BUDGETS.items():
        assert (t.workloads[base].max_allowed_runtime_sec, t.workloads[base].step_hint) == (
            budget,
            hint,
        )
    assert t.workloads["wmt_glu_tanh"].max_allowed_runtime_sec == 48_151
    assert t.base_workload_name("imagenet_resnet_large_bn_init") == "imagenet_resnet"
    assert t.budget_sec("wmt", self_tuning=True) == 3 * 48_151


def test_v06_and_current_sets():
    v06 = tg.load_targets("0.6")
    assert v06.base_workloads == tg.BASE_WORKLOADS and v06.held_out_workloads == ()
    assert (v06.num_studies, v06.self_tuning_budget_factor) == (3, 1.5)
    assert v06.workloads["fastmri"].max_allowed_runtime_sec == 4_430
    assert "finewebedu_lm" not in v06.workloads
    current = tg.load_targets("current")
    assert current.base_workloads == (*tg.BASE_WORKLOADS, "finewebedu_lm")
    lm = current.workloads["finewebedu_lm"]
    assert (lm.target_metric_name, lm.validation_target_value, lm.maximize) == (
        "ppl",
        22.2995,
        False,
    )


def test_direction_follows_upstream_registry_and_agrees_with_specs():
    assert tg.metric_is_minimized("validation/ctc_loss")
    assert tg.metric_is_minimized("validation/wer")
    assert tg.metric_is_minimized("validation/ppl")
    assert not tg.metric_is_minimized("validation/mean_average_precision")
    assert not tg.metric_is_minimized("validation/bleu")
    with pytest.raises(tg.TargetsError, match="perplexity_score"):
        tg.metric_is_minimized("validation/perplexity_score")
    for c in all_configs().values():
        assert c.maximize == (not tg.metric_is_minimized(f"validation/{c.target_metric_name}"))


def test_unknown_version_and_workloads():
    with pytest.raises(tg.TargetsError, match=r"unknown benchmark version .0\.4."):
        tg.load_targets("0.4")
    assert tg.load_targets("v0.5") == tg.load_targets("0.5")
    with pytest.raises(tg.TargetsError, match="nope"):
        tg.load_targets("0.6").with_base_workloads(("wmt", "nope"))


def test_upstream_targets_json_is_accepted(tmp_path):
    """Upstream's workload_targets*.json lacks budgets and protocol numbers: ours fill them."""
    raw = {
        "benchmark_version": "0.5",
        "base_workloads": ["wmt", "ogbg"],
        "held_out_workloads": ["wmt_glu_tanh"],
        "workloads": {
            "wmt": {
                "target_metric_name": "bleu",
                "validation_target_value": 30.8491,
                "step_hint": 120000,
            },
            "ogbg": {
                "target_metric_name": "mean_average_precision",
                "validation_target_value": 0.28098,
                "step_hint": 52000,
            },
            "wmt_glu_tanh": {
                "target_metric_name": "bleu",
                "validation_target_value": 29.5779,
                "step_hint": 120000,
            },
        },
    }
    path = tmp_path / "workload_targets_v05.json"
    path.write_text(json.dumps(raw))
    t = tg.load_targets(str(path))
    assert t.num_studies == 5 and t.workloads["wmt"].max_allowed_runtime_sec == 48_151
    assert t.workloads["wmt_glu_tanh"].base_workload == "wmt"
    assert t.workloads["ogbg"].maximize


def test_generator_cli_refuses_to_rewrite_a_changed_frozen_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tg, "TARGETS_DIR", tmp_path)
    assert tg.main(["--write"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"current.json", "dev.json", "mini.json"}
    (tmp_path / "v0.6.json").write_text("{}")
    assert tg.main(["--write", "--version", "0.6"]) == 1
    assert "frozen" in capsys.readouterr().err
    assert tg.main(["--write", "--version", "0.6", "--force"]) == 0
    assert (tmp_path / "v0.6.json").read_text() == tg.render("0.6")
    capsys.readouterr()
    assert tg.main(["--version", "0.5"]) == 0  # prints instead of writing
    assert json.loads(capsys.readouterr().out)["held_out_workloads"][0] == "criteo1tb_embed_init"
