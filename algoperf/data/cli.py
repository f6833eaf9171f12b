"""``algoperf datasets``: prepare (download + verify) datasets, write fixtures, list what is ready.

    algoperf datasets prepare NAME [NAME ...] [--data_dir D] [--no-offline_fallback] [--quiet]
                              [--fixture] [<the datasets' own options>]
    algoperf datasets list [--data_dir D]

The data root is ``--data_dir``, else ``$ALGOPERF_DATA_DIR``, else ``./data``; each dataset lives
in ``<root>/<name>/``. The datasets, their prepare functions, their extra options (e.g.
``--imagenet_train_tar``) and their fixture writers are those the workload families declare
(`algoperf.registry.Dataset`); a dataset's options are refused with any other dataset.

``--fixture`` writes, instead of the real data, a small dataset in the real on-disk format (the
one the tests use) and records its split sizes in ``<root>/<name>/fixture.json``; ``algoperf run
--data_dir <root>`` then runs the workload on it with a config sized for it (marked "fixture data"
in the run record). This is the way to try a workload before downloading its data.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from algoperf import registry
from algoperf.data import DATA_DIR_ENV, DataError, default_data_dir
from algoperf.data.download import manifest_status

_TYPES = {"path": str, "str": str, "int": int}


def _dest(option: registry.PrepareOption) -> str:
    return option.flag[2:].replace("-", "_")


def _add_option(group: Any, option: registry.PrepareOption) -> None:
    dest = _dest(option)
    if option.kind == "bool":
        group.add_argument(
            option.flag,
            dest=dest,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=option.help,
        )
    elif option.kind == "const":
        group.add_argument(option.flag, dest=dest, action="store_true", help=option.help)
    else:
        metavar = "FILE" if option.kind == "path" else option.kind.upper()
        group.add_argument(
            option.flag, dest=dest, type=_TYPES[option.kind], metavar=metavar, help=option.help
        )


def _given(args: argparse.Namespace, dataset: registry.Dataset) -> dict[str, Any]:
    """The prepare keywords of `dataset`'s options that were given on the command line."""
    out: dict[str, Any] = {}
    for option in dataset.options:
        value = getattr(args, _dest(option))
        if option.kind == "const":
            if value:
                out[option.keyword] = option.const
        elif value is not None:
            out[option.keyword] = value
    return out


def _parser(datasets: dict[str, registry.Dataset]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algoperf datasets", description="Prepare and list benchmark datasets."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{prepare,list}")
    data_dir_help = f"data root (default: ${DATA_DIR_ENV}, else ./data)"

    prepare = sub.add_parser("prepare", help="download and verify datasets (idempotent)")
    prepare.add_argument("names", nargs="+", metavar="NAME", help=", ".join(datasets))
    prepare.add_argument("--data_dir", "--data-dir", dest="data_dir", help=data_dir_help)
    prepare.add_argument(
        "--offline_fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="if the download hosts cannot be reached, use an offline source (a Debian package) "
        "where the dataset has one (default: on)",
    )
    prepare.add_argument("--quiet", action="store_true", help="no progress output")
    prepare.add_argument(
        "--fixture",
        action="store_true",
        help="write a small dataset in the real on-disk format instead of the real data "
        "(to try a workload before downloading; `algoperf run --data_dir` sizes its config "
        "for it)",
    )
    for dataset in datasets.values():
        if dataset.options:
            group = prepare.add_argument_group(
                f"{dataset.name} options (only with `prepare {dataset.name}`)"
            )
            for option in dataset.options:
                _add_option(group, option)

    listing = sub.add_parser("list", help="registered datasets and whether they are ready")
    listing.add_argument("--data_dir", "--data-dir", dest="data_dir", help=data_dir_help)
    return parser


def _usage_error(message: str) -> int:
    print(f"algoperf datasets prepare: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``algoperf datasets`` with `argv` (without the program name; a leading ``datasets``
    is accepted). Returns the exit status: 0 success, 1 a data error, 2 bad usage."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["datasets"]:
        args_list = args_list[1:]
    datasets = registry.datasets()
    try:
        args = _parser(datasets).parse_args(args_list)
    except SystemExit as e:  # argparse exits on --help and on usage errors
        return int(e.code or 0)
    root = default_data_dir(args.data_dir)
    if args.command == "list":
        return _list(root, datasets)
    unknown = [n for n in args.names if n not in datasets]
    if unknown:
        print(
            f"algoperf datasets: unknown dataset(s) {', '.join(unknown)}; known: "
            f"{', '.join(datasets)}",
            file=sys.stderr,
        )
        return 2
    options = {name: _given(args, d) for name, d in datasets.items()}
    for name, given in options.items():
        if given and name not in args.names:
            flags = {_dest(o) for o in datasets[name].options}
            typed = sorted(
                a.split("=")[0]
                for a in args_list
                if a.startswith("--") and a.split("=")[0][2:].removeprefix("no-") in flags
            )
            return _usage_error(
                f"{', '.join(typed)} only apply to `algoperf datasets prepare {name}`"
            )
        for group in datasets[name].exclusive:
            both = [
                o.flag for o in datasets[name].options if o.keyword in group and o.keyword in given
            ]
            if len(both) > 1:
                return _usage_error(
                    f"pass {' or '.join(both)}, not both (they give the same information)"
                )
    if args.fixture and any(options[n] for n in args.names):
        return _usage_error("--fixture writes generated data: it takes no dataset options")
    status = 0
    for name in dict.fromkeys(args.names):
        try:
            if args.fixture:
                path = registry.write_fixture(name, root)
                print(f"{name}: fixture ready in {path} (not the real data)")
                continue
            if registry.fixture_overrides(name, root) is not None:
                raise DataError(
                    f"{root / name} holds a fixture (generated data), not the real dataset; "
                    f"delete that folder or pass another --data_dir"
                )
            prepare = registry.load_target(datasets[name].prepare)
            kwargs: dict[str, Any] = {"offline_fallback": args.offline_fallback}
            if "progress" in inspect.signature(prepare).parameters:
                kwargs["progress"] = not args.quiet
            path = prepare(name, root, **kwargs, **options[name])
        except DataError as e:
            print(f"algoperf datasets prepare {name}: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: ready in {path}")
    return status


def _list(root: Path, datasets: dict[str, registry.Dataset]) -> int:
    width = max(len(name) for name in datasets)
    path_width = max(len(str(root / name)) for name in datasets)
    print(f"data root: {root}")
    for name, decl in datasets.items():
        status = manifest_status(root / name)
        if registry.fixture_overrides(name, root / name) is not None:
            status = "fixture"
        line = f"{name:<{width}}  {status:<10}  {root / name!s:<{path_width}}  {decl.description}"
        print(line.rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
