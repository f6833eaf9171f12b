"""The `algoperf` command: run | check | score | datasets | workloads.

Each sub-command lives in its own module and is imported only when used, so `algoperf score`
never imports JAX or PyTorch. Errors caused by the input end the process with exit status 2 and
one line on stderr naming the problem and the fix.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

USAGE = """usage: algoperf <command> [flags]

commands:
  run        train a submission on a workload (upstream submission_runner.py flags)
  check      validate a submission without training it: algoperf check PATH [--workloads ...]
  score      score a directory of logs (upstream score_submissions.py flags)
  datasets   prepare or list datasets: algoperf datasets prepare NAME [--fixture] --data_dir DIR
  workloads  list every registered workload and variant (--params adds parameter counts)
  sweep      run a study plan as many runs, locally or on SLURM: algoperf sweep [run|status] PLAN

`algoperf <command> --help` shows a command's flags.
"""


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "bad input": reported in one line, exit status 2."""
    from algoperf import registry, tuning
    from algoperf.runner import checkpoint, submission, trial

    errors: list[type[BaseException]] = [
        ValueError,
        FileNotFoundError,
        registry.UnknownWorkloadError,
        tuning.SearchSpaceError,
        submission.SubmissionError,
        trial.RunError,
        checkpoint.CheckpointError,
    ]
    try:
        from algoperf.data import DataError

        errors.append(DataError)
    except ImportError:
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a sub-command; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "run":
            from algoperf.runner.cli import main as run_main

            if "ALGOPERF_COORDINATOR_ADDRESS" in os.environ:  # multi-process JAX
                from algoperf.frameworks.jax import initialize_for_run

                initialize_for_run(rest)

            return run_main(rest)
        if command == "check":
            from algoperf.check import main as check_main

            return check_main(rest)
        if command == "score":
            from scoring.cli import main as score_main

            code = score_main(rest)
            from algoperf.logs import report_run_settings  # our run records' non-upstream flags

            report_run_settings(rest)
            return code
        if command == "datasets":
            from algoperf.data.cli import main as datasets_main

            return datasets_main(rest)
        if command == "workloads":
            from algoperf.workloads_cli import main as workloads_main

            return workloads_main(rest)
        if command == "sweep":
            from algoperf.sweep.cli import main as sweep_main

            return sweep_main(rest)
    except KeyboardInterrupt:
        print("algoperf: interrupted", file=sys.stderr)
        return 130
    except _input_errors() as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"algoperf {command}: error: {message}", file=sys.stderr)
        return 2
    print(f"algoperf: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
