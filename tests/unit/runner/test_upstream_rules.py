"""Runner settings that follow upstream's `submission_runner.py` (at 2c90454f): each test fails
if its rule drifts. Flags, environment, torch.compile policy, memory reset, log writers."""

from __future__ import annotations

import json
import math
import subprocess
import types
from pathlib import Path

import pandas as pd
import pytest

from algoperf import logs, registry
from algoperf.runner import cli, run_env
from algoperf.runner.config import RunConfig

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
V06 = FIXTURES / "algoperf_v06_leaderboard_logs"

BASE_ARGV = [
    "--framework=pytorch",
    "--workload=mnist",
    "--submission_path=s.py",
    "--experiment_dir=/tmp/x",
    "--experiment_name=e",
    "--tuning_search_space=space.json",
]


def _config(**changes):
    values = dict(
        framework="pytorch",
        workload="mnist",
        submission_path="s.py",
        experiment_dir="/tmp/x",
        experiment_name="e",
        tuning_search_space="space.json",
    )
    values.update(changes)
    return RunConfig(**values)


def _other_value(flag):
    """A value different from the flag's default, as a command-line argument."""
    default = flag.default
    if flag.flag_type() == "bool":
        return f"--{flag.name}={'false' if default else 'true'}"
    enum = getattr(flag.parser, "enum_values", None)
    if enum:
        return f"--{flag.name}={next(v for v in enum if v != default)}"
    if flag.flag_type() == "int":
        return f"--{flag.name}={(default or 0) + 3}"
    if flag.flag_type() == "float":
        return f"--{flag.name}={(default or 1.0) * 2 + 1}"
    if flag.name in ("torch_compile", "progress"):
        return f"--{flag.name}=false"
    return f"--{flag.name}=other_value"


def test_every_flag_in_help_reaches_the_run_or_is_refused():
    """No flag is accepted and ignored: a non-default value changes the RunConfig or raises."""
    base = cli.config_from_argv(BASE_ARGV)
    fields = {k: v for k, v in vars(base).items() if k != "flags"}
    names = sorted(cli.define_flags())
    assert len(names) > 30
    ignored = []
    for name in names:
        flag = cli.define_flags()[name]
        argv = [a for a in BASE_ARGV if not a.startswith(f"--{name}=")] + [_other_value(flag)]
        try:
            config = cli.config_from_argv(argv)
        except ValueError:
            continue  # refused with a message
        changed = {k: v for k, v in vars(config).items() if k != "flags"}
        if changed == fields:
            ignored.append(name)
    assert ignored == []


def test_flags_that_do_nothing_here_are_refused_with_a_message():
    with pytest.raises(ValueError, match="--use_wandb is not supported"):
        cli.config_from_argv([*BASE_ARGV, "--use_wandb"])
    with pytest.raises(ValueError, match="--capture_jax_trace traces JAX only"):
        cli.config_from_argv([*BASE_ARGV, "--capture_jax_trace"])
    with pytest.raises(ValueError, match="max_global_steps must be >= 0"):
        cli.config_from_argv([*BASE_ARGV, "--max_global_steps=-1"])
    assert cli.config_from_argv([*BASE_ARGV, "--max_global_steps=0"]).max_global_steps == 0


@pytest.fixture(scope="module")
def speech_root(tmp_path_factory) -> Path:
    """``algoperf datasets prepare librispeech --fixture`` (OpenSLR tarballs, prepared for real)."""
    pytest.importorskip("soundfile", reason="LibriSpeech decoding needs soundfile")
    pytest.importorskip("sentencepiece", reason="the tokenizer needs sentencepiece")
    root = tmp_path_factory.mktemp("librispeech")
    registry.write_fixture("librispeech", root)
    return root


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_tokenizer_flag_reaches_the_real_speech_workloads(
    framework, speech_root, tmp_path, monkeypatch
):
    """``--librispeech_tokenizer_vocab_path`` from the command line to the eval's tokenizer of
    the registered LibriSpeech classes (both architectures): the given file is read, the
    dataset's is not; a model of another size, or not the one the ids were prepared with, is
    refused naming the flag's file."""
    from algoperf.data import DatasetError
    from algoperf.runner import trial
    from workloads.common.tokenizer import Tokenizer, train_sentencepiece
    from workloads.librispeech import data, testing

    given = tmp_path / "elsewhere" / "spm_model.vocab"
    given.parent.mkdir()
    given.write_bytes((data.dataset_dir(speech_root) / data.TOKENIZER_FILE).read_bytes())
    argv = [
        f"--framework={framework}",
        "--workload=librispeech_conformer",
        "--submission_path=s.py",
        "--experiment_dir=/tmp/x",
        "--experiment_name=e",
        "--tuning_search_space=space.json",
        f"--data_dir={speech_root}",
        f"--librispeech_tokenizer_vocab_path={given}",
    ]
    kwargs = trial._workload_kwargs(cli.config_from_argv(argv))
    assert kwargs == {"tokenizer_vocab_path": str(given)}

    def dataset_tokenizer_read(*args):
        raise AssertionError("the dataset's spm_model.vocab was read despite the flag")

    monkeypatch.setattr(data, "load_tokenizer", dataset_tokenizer_read)
    for name in ("librispeech_conformer", "librispeech_deepspeech"):
        workload = registry.get_workload(name, framework, data_dir=speech_root, **kwargs)
        assert workload.tokenizer_vocab_path == str(given)
        workload.check_data(str(speech_root))  # the data check loads the given model
        tokenizer = workload._dataset_tokenizer(str(speech_root))  # what each split eval loads
        assert tokenizer.sha256 == Tokenizer.load(given).sha256
    # Without the flag the dataset's model is the eval's (the patched reader is reached).
    plain = registry.get_workload("librispeech_conformer", framework, data_dir=speech_root)
    assert plain.tokenizer_vocab_path is None
    with pytest.raises(AssertionError, match=r"dataset's spm_model\.vocab was read"):
        plain.check_data(str(speech_root))

    texts = [t for _, _, t in testing.fixture_utterances("train-clean-100", 120)]
    small = train_sentencepiece(texts, vocab_size=200).save(tmp_path / "small.model")
    workload = registry.get_workload(
        "librispeech_conformer", framework, data_dir=speech_root, tokenizer_vocab_path=str(small)
    )
    with pytest.raises(DatasetError, match=r"small.model: 200 pieces, the model predicts 1024"):
        workload.check_data(str(speech_root))
    # Another 1,024-piece model (the unigram trainer's pieces depend on the thread count).
    other = train_sentencepiece(texts[::-1], num_threads=1).save(tmp_path / "other.model")
    workload = registry.get_workload(
        "librispeech_conformer", framework, data_dir=speech_root, tokenizer_vocab_path=str(other)
    )
    with pytest.raises(DatasetError, match=r"not the tokenizer the token ids in .* were prepared"):
        workload.check_data(str(speech_root))


def test_timing_sync_defaults_to_upstream_per_framework():
    assert _config().sync_every_step  # PyTorch: every step end, upstream's get_time()
    assert not _config(framework="jax").sync_every_step  # JAX: ours, at eval points
    assert not _config(timing_sync="eval_points").sync_every_step
    assert _config(framework="jax", timing_sync="every_step").sync_every_step
    assert not _config().stop_on_divergence


def test_environment_per_workload_as_upstream(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    conformer = registry.get_config("librispeech_conformer")
    env = run_env.apply_environment(run_env.environment_for(_config(), conformer))
    assert env == {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4 --xla_gpu_enable_triton_gemm=false",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.80",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    }
    assert run_env.apply_environment(run_env.environment_for(_config(), conformer)) == env
    split = run_env.environment_for(_config(set_pytorch_max_split_size=True), conformer)
    assert split["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:256"  # the flag wins
    fractions = {
        name
        for name in registry.workload_names()
        if "XLA_PYTHON_CLIENT_MEM_FRACTION" in registry.get_config(name).environment
    }
    bases = {registry.get_base_workload_name(n) for n in fractions}
    assert bases == {"librispeech_conformer", "librispeech_deepspeech", "imagenet_vit", "criteo1tb"}
    alloc = {
        registry.get_base_workload_name(n)
        for n in registry.workload_names()
        if "PYTORCH_CUDA_ALLOC_CONF" in registry.get_config(n).environment
    }
    assert alloc == {"librispeech_conformer"}
    for name in registry.workload_names():
        assert (
            "--xla_gpu_enable_triton_gemm=false"
            in registry.get_config(name).environment["XLA_FLAGS"]
        )


def test_torch_compile_policy_as_upstream(monkeypatch):
    not_compiled = {
        "librispeech_conformer",
        "ogbg",
        "criteo1tb",
        "imagenet_vit",
        "librispeech_deepspeech",
    }
    loss_compiled = {"fastmri", "librispeech_deepspeech", "ogbg", "wmt"}
    # Development workloads of our own that set their policy (not upstream's workloads).
    own_policy = {"lm_bible": {"model": False, "loss_fn": False}}  # CPU-sized: compile costs budget
    on = _config(torch_compile=True)
    for name in registry.workload_names():
        base = registry.get_base_workload_name(name)
        if name in own_policy:
            assert registry.get_config(name).dev_only, name
            assert run_env.compile_policy(on, registry.get_config(name)) == own_policy[name]
            continue
        policy = run_env.compile_policy(on, registry.get_config(name))
        assert policy == {"model": base not in not_compiled, "loss_fn": base in loss_compiled}, name
    fastmri = registry.get_config("fastmri")
    assert run_env.compile_policy(_config(torch_compile=False), fastmri) == {
        "model": False,
        "loss_fn": False,
    }
    assert run_env.compile_policy(_config(framework="jax", torch_compile=True), fastmri) == {
        "model": False,
        "loss_fn": False,
    }

    import torch

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn: compiled.append(fn) or ("compiled", fn))
    loss = object()
    workload = types.SimpleNamespace(config=registry.get_config("ogbg"), loss_fn=loss)
    prepare = run_env.model_preparer(on, workload)
    params, _ = prepare("model", None)
    assert params == "model" and workload.loss_fn == ("compiled", loss) and compiled == [loss]
    workload = types.SimpleNamespace(config=registry.get_config("mnist"), loss_fn=loss)
    params, _ = run_env.model_preparer(on, workload)("model", None)
    assert params == ("compiled", "model") and workload.loss_fn is loss


def test_memory_reset_is_upstreams_reset_cuda_mem(monkeypatch):
    import gc

    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch._C, "_cuda_clearCublasWorkspaces", lambda: calls.append("cublas"), raising=False
    )
    monkeypatch.setattr(gc, "collect", lambda: calls.append("gc"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: calls.append("peak"))
    run_env.memory_reset("pytorch")()
    assert calls == ["cublas", "gc", "empty_cache", "peak"]
    assert run_env.memory_reset("jax") is None  # upstream resets only for PyTorch


def test_profile_writes_into_the_trial_directory(tmp_path):
    with run_env.profiling(_config(profile=True), tmp_path):
        sum(math.sqrt(i) for i in range(1000))
    assert (tmp_path / run_env.PROFILE_PSTATS).stat().st_size > 0
    assert "cumulative" in (tmp_path / run_env.PROFILE_TXT).read_text()
    other = tmp_path / "rank1"
    other.mkdir()
    with run_env.profiling(_config(profile=True), other, write=False):
        pass
    assert list(other.iterdir()) == []


# Logs ------------------------------------------------------------------------------------------


def _upstream_write_to_csv(metrics, csv_path):
    """What upstream's `logger_utils.write_to_csv` does on every call (read, concat, write)."""
    try:
        with open(csv_path) as f:
            measurements = pd.read_csv(f)
            measurements = pd.concat([measurements, pd.DataFrame([metrics])])
    except (pd.errors.EmptyDataError, FileNotFoundError):
        measurements = pd.DataFrame([metrics], columns=sorted(metrics.keys()))
    with open(csv_path, "w") as f:
        measurements.to_csv(f, index=False)


def test_csv_logs_match_upstreams_pandas_writer_byte_for_byte(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    eval_row = {
        "validation/loss": 0.5,
        "validation/accuracy": 0.1 + 0.2,
        "train/loss": math.nan,
        "score": 12.25,
        "total_duration": 20.0,
    }
    calls = [
        ({"loss": 2.5, "grad_norm": 1.0}, 1, None, False),  # a submission's scalars
        (dict(eval_row), 1, 0, True),
        ({"loss": 1.5, "lr": 1e-05}, 2, None, False),  # a new column
        ({**eval_row, "test/accuracy": 0.25, "zz_extra": 3}, 3, 0, True),
        ({"score": 30.5}, 3, 0, False),  # upstream's final score row
    ]
    logger = logs.MetricLogger(ours)
    for metrics, step, preemption, is_eval in calls:
        logger.append_scalar_metrics(dict(metrics), step, preemption, is_eval)
        upstream = dict(metrics, global_step=step)
        if preemption is not None:
            upstream["preemption_count"] = preemption
        _upstream_write_to_csv(upstream, theirs / logs.MEASUREMENTS_CSV)
        if is_eval:
            _upstream_write_to_csv(upstream, theirs / logs.EVAL_CSV)
    logger.flush()
    # While a run is going, the columns are already in upstream's order.
    for name in (logs.MEASUREMENTS_CSV, logs.EVAL_CSV):
        ours_header = (ours / name).read_text().splitlines()[0]
        assert ours_header == (theirs / name).read_text().splitlines()[0], name
    logger.finish()  # then the number formats too, byte for byte
    for name in (logs.MEASUREMENTS_CSV, logs.EVAL_CSV):
        assert (ours / name).read_text() == (theirs / name).read_text(), name


def test_upstream_flags_file_has_upstreams_names_and_types():
    values = cli.config_from_argv(BASE_ARGV).flags
    flags = logs.upstream_flags(values, torch_compile=False)
    assert tuple(flags) == logs.UPSTREAM_FLAGS
    assert flags["torch_compile"] is False and flags["rng_seed"] is None  # drawn: None, upstream
    assert set(logs.UPSTREAM_FLAGS) <= set(cli.define_flags())
    if not V06.exists():
        pytest.skip(f"published v0.6 logs not found at {V06}")
    published = json.loads(next(V06.rglob("flags_0.json")).read_text())
    newer = {"capture_jax_trace", "skip_evals"}  # added to upstream's runner after v0.6
    assert set(logs.UPSTREAM_FLAGS) - newer <= set(published)
    runner_flags = [k for k in published if k in logs.UPSTREAM_FLAGS]
    assert runner_flags == [k for k in logs.UPSTREAM_FLAGS if k not in newer]


NVIDIA_SMI = "\n".join(
    f"{i}, NVIDIA A100-SXM4-40GB, 535.104.05, {10 * i}, 40960, {1000 + i}, {39960 - i}, {40 + i}"
    for i in range(8)
)


def test_meta_data_has_upstreams_keys_gpu_keys_only_with_gpus(monkeypatch):
    util, hardware = logs.parse_gpu_query(NVIDIA_SMI)
    assert util["gpu.count"] == 8 and util["gpu.3.compute.util"] == pytest.approx(0.3)
    assert util["gpu.0.mem.util"] == pytest.approx(1000 / 40960)
    assert hardware == {
        "gpu_model_name": "NVIDIA A100-SXM4-40GB",
        "gpu_count": 8,
        "gpu_driver": "535.104.05",
    }

    def no_nvidia_smi(*a, **k):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(subprocess, "run", no_nvidia_smi)
    env = {
        "os_platform": "Linux",
        "python_version": "3.11",
        "python_compiler": "GCC",
        "git_branch": "main",
        "git_commit_hash": "abc",
        "cpu_model_name": "cpu",
        "cpu_count": 2,
    }
    workload = types.SimpleNamespace(eval_period_time_sec=10, target_metric_name="accuracy")
    meta = logs.meta_data(workload, env, rng_seed=7)
    assert not any(k.startswith("gpu") for k in meta)
    assert meta["rng_seed"] == 7 and list(meta)[-1] == "rng_seed"
    if not V06.exists():
        pytest.skip(f"published v0.6 logs not found at {V06}")
    published = json.loads(next(V06.rglob("meta_data_0.json")).read_text())
    assert "gpu_driver" in published
    published_gpu = {k for k in published if k.startswith("gpu")}
    assert published_gpu == set(util) | set(hardware)
    published_rest = {k for k in published if not k.startswith(("gpu", "workload."))}
    ours_rest = {k for k in meta if not k.startswith("workload.")}
    assert ours_rest == published_rest


def _write_records(root, framework, records):
    for k, record in enumerate(records):
        tdir = root / "sub" / "study_0" / f"mnist_{framework}" / f"trial_{k + 1}"
        tdir.mkdir(parents=True)
        logs.write_json_atomic(tdir / logs.RUN_RECORD_JSON, record)


def test_score_notes_name_non_upstream_settings(tmp_path, capsys):
    # Records without a framework field: the `<workload>_<framework>` directory names it.
    _write_records(
        tmp_path, "pytorch", [{"timing_sync": s} for s in ("every_step",) + 2 * ("eval_points",)]
    )
    notes = logs.run_setting_notes(tmp_path)
    assert len(notes) == 1 and notes[0].startswith(
        "2 of 3 trials ran with --timing_sync=eval_points"
    )
    logs.report_run_settings(["--submission_directory", str(tmp_path)])
    assert "note: 2 of 3 trials" in capsys.readouterr().err
    assert logs.run_setting_notes(tmp_path / "sub" / "study_0" / "mnist_pytorch" / "trial_1") == []


def test_score_notes_eval_point_sync_only_for_pytorch(tmp_path):
    """JAX's eval-point synchronisation is its default and comparable: no note for JAX runs."""
    jax_default = {"framework": "jax", "timing_sync": "eval_points", "stop_on_divergence": False}
    # The second has no framework field (its directory, mnist_jax, names it).
    _write_records(tmp_path / "jax", "jax", [jax_default, {"timing_sync": "eval_points"}])
    assert logs.run_setting_notes(tmp_path / "jax") == []
    torch_opt_in = {"framework": "pytorch", "timing_sync": "eval_points"}
    _write_records(tmp_path / "both", "jax", [jax_default])
    _write_records(tmp_path / "both", "pytorch", [torch_opt_in, {"framework": "pytorch"}])
    notes = logs.run_setting_notes(tmp_path / "both")
    assert notes == [
        "1 of 3 trials ran with --timing_sync=eval_points (PyTorch steps overlap): not comparable "
        "with upstream-measured scores (run_record.json)"
    ]
    # Settings that differ in either framework are still named for JAX runs.
    _write_records(tmp_path / "stops", "jax", [{**jax_default, "stop_on_divergence": True}])
    assert logs.run_setting_notes(tmp_path / "stops") == [
        "1 of 1 trials ran with --stop_on_divergence: not comparable with upstream-measured "
        "scores (run_record.json)"
    ]
