"""``algoperf datasets``: prepare (download + verify) datasets and list what is ready.

    algoperf datasets prepare NAME [NAME ...] [--data_dir D] [--no-offline_fallback] [--quiet]
    algoperf datasets list [--data_dir D]

The data root is ``--data_dir``, else ``$ALGOPERF_DATA_DIR``, else ``./data``; each dataset lives
in ``<root>/<name>/``. Datasets are those registered in `algoperf.data.DATASETS`.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from algoperf.data import DATA_DIR_ENV, DATASETS, DataError, default_data_dir, get_prepare_fn
from algoperf.data.download import manifest_status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algoperf datasets", description="Prepare and list benchmark datasets."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{prepare,list}")
    data_dir_help = f"data root (default: ${DATA_DIR_ENV}, else ./data)"

    prepare = sub.add_parser("prepare", help="download and verify datasets (idempotent)")
    prepare.add_argument("names", nargs="+", metavar="NAME", help=", ".join(DATASETS))
    prepare.add_argument("--data_dir", "--data-dir", dest="data_dir", help=data_dir_help)
    prepare.add_argument(
        "--offline_fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="if the download hosts cannot be reached, use an offline source (a Debian package) "
        "where the dataset has one (default: on)",
    )
    prepare.add_argument("--quiet", action="store_true", help="no progress output")

    listing = sub.add_parser("list", help="registered datasets and whether they are ready")
    listing.add_argument("--data_dir", "--data-dir", dest="data_dir", help=data_dir_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``algoperf datasets`` with `argv` (without the program name; a leading ``datasets``
    is accepted). Returns the exit status: 0 success, 1 a data error, 2 bad usage."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["datasets"]:
        args_list = args_list[1:]
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as e:  # argparse exits on --help and on usage errors
        return int(e.code or 0)
    root = default_data_dir(args.data_dir)
    if args.command == "list":
        return _list(root)
    unknown = [n for n in args.names if n not in DATASETS]
    if unknown:
        print(
            f"algoperf datasets: unknown dataset(s) {', '.join(unknown)}; known: "
            f"{', '.join(DATASETS)}",
            file=sys.stderr,
        )
        return 2
    status = 0
    for name in dict.fromkeys(args.names):
        try:
            prepare = get_prepare_fn(name)
            kwargs = {"offline_fallback": args.offline_fallback}
            if "progress" in inspect.signature(prepare).parameters:
                kwargs["progress"] = not args.quiet
            path = prepare(name, root, **kwargs)
        except DataError as e:
            print(f"algoperf datasets prepare {name}: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: ready in {path}")
    return status


def _list(root: Path) -> int:
    width = max(len(name) for name in DATASETS)
    print(f"data root: {root}")
    for name in DATASETS:
        print(f"{name:<{width}}  {manifest_status(root / name):<10}  {root / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
