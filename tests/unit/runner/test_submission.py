"""Submission loading: required functions, upstream signatures, batch-size fallback."""

import types

import pytest

from algoperf.runner import submission

GOOD = """
def get_batch_size(workload_name):
    if workload_name == "mnist":
        return 8
    raise ValueError(workload_name)
def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {}
def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    return optimizer_state, current_param_container, model_state
def data_selection(workload, input_queue, optimizer_state, current_param_container,
                   model_state, hyperparameters, global_step, rng):
    return next(input_queue)
"""


def _write(tmp_path, text, name="sub.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_submission_loads(tmp_path):
    module = submission.load_submission(_write(tmp_path, GOOD))
    assert submission.check_submission(module) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("def data_selection", "def data_selection_renamed"), "data_selection"),
        (("global_step,\n                  rng, train_state=None", "step, rng"), "global_step"),
        (("def get_batch_size(workload_name)", "def get_batch_size()"), "get_batch_size"),
        (("return {}", "return {"), "importing the submission failed"),
    ],
)
def test_bad_submissions_are_rejected_with_one_line(tmp_path, edit, message):
    path = _write(tmp_path, GOOD.replace(*edit), name=f"bad_{abs(hash(edit))}.py")
    with pytest.raises(submission.SubmissionError) as info:
        submission.load_submission(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(submission.SubmissionError, match="not found"):
        submission.load_submission(tmp_path / "nope.py")


def test_batch_size_falls_back_to_base_name_and_checks_devices():
    module = types.SimpleNamespace(
        get_batch_size=lambda n: (
            {"mnist": 8}[n] if n == "mnist" else (_ for _ in ()).throw(ValueError(n))
        )
    )
    assert submission.global_batch_size(module, "fashion_mnist", "mnist", 2) == 8
    with pytest.raises(submission.SubmissionError, match="multiple of the 3"):
        submission.global_batch_size(module, "fashion_mnist", "mnist", 3)


def test_batch_size_falls_back_on_key_error_too():
    """Upstream's development submissions index a dict: KeyError for fashion_mnist."""
    module = types.SimpleNamespace(get_batch_size=lambda n: {"mnist": 16}[n])
    assert submission.global_batch_size(module, "fashion_mnist", "mnist", 1) == 16
    other = types.SimpleNamespace(get_batch_size=lambda n: [][0])  # IndexError: not retried
    with pytest.raises(IndexError):
        submission.global_batch_size(other, "fashion_mnist", "mnist", 1)
