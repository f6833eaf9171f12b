"""benchmarks/text_pipeline.py prepares both fixtures with the real `prepare` functions and
reports tokens per second against upstream's per-step consumption."""

import pytest

from tests.benchmarks.loader import load_benchmark

text_pipeline = load_benchmark("text_pipeline")


def test_reports_both_pipelines_against_upstream_consumption(capsys):
    args = ["--wmt-pairs", "300", "--wmt-batch", "8", "--lm-docs", "30", "--lm-batch", "4"]
    assert text_pipeline.main([*args, "--batches", "3"]) == 0
    out = capsys.readouterr().out
    assert "wmt train batches:" in out and "a step takes 32,768 tokens" in out
    assert "lm window batches:" in out and "a step takes 65,536 tokens" in out
    # 128 x 256 tokens at 36,146.7 s / 105,242 steps; 64 x 1,024 at 31,967 s / 72,000 steps.
    assert "95,405 tokens/s" in out and "147,608 tokens/s" in out


def test_a_batch_larger_than_the_fixture_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="raise --lm-docs"):
        text_pipeline.lm_rate(tmp_path, docs=2, batch=10_000, batches=1)
