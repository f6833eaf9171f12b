"""``algoperf datasets``: prepare (download + verify) datasets and list what is ready.

    algoperf datasets prepare NAME [NAME ...] [--data_dir D] [--no-offline_fallback] [--quiet]
                              [--imagenet_train_tar F] [--imagenet_val_tar F]
                              [--imagenet_devkit_tar F | --imagenet_val_labels F]
                              [--imagenet_v2_tar F] [--no-imagenet_download_v2]
                              [--imagenet_skip_checksums]
    algoperf datasets list [--data_dir D]

The data root is ``--data_dir``, else ``$ALGOPERF_DATA_DIR``, else ``./data``; each dataset lives
in ``<root>/<name>/``. Datasets are those registered in `algoperf.data.DATASETS`.

ImageNet cannot be downloaded without registration: the ``--imagenet_*`` options name the
archives the user downloaded (each defaults to the official file name under
``<root>/imagenet/downloads/``, ``<root>`` or ``<root>/imagenet/``) and are forwarded to
`workloads.imagenet.data.prepare`; they are refused with any other dataset.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from algoperf.data import DATA_DIR_ENV, DATASETS, DataError, default_data_dir, get_prepare_fn
from algoperf.data.download import manifest_status

# `workloads.imagenet.data.prepare` keyword -> (flag, help).
_IMAGENET_PATHS = {
    "train_tar": ("--imagenet_train_tar", "ILSVRC2012_img_train.tar"),
    "val_tar": ("--imagenet_val_tar", "ILSVRC2012_img_val.tar"),
    "devkit_tar": (
        "--imagenet_devkit_tar",
        "ILSVRC2012_devkit_t12.tar.gz (validation labels)",
    ),
    "val_labels": (
        "--imagenet_val_labels",
        "instead of the devkit: a file pairing validation images with WordNet ids "
        "(valprep.sh, LOC_val_solution.csv or '<file> <wnid>' lines)",
    ),
    "v2_tar": ("--imagenet_v2_tar", "imagenetv2-matched-frequency.tar.gz (the test split)"),
}


def _imagenet_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `prepare` keywords named by the ``--imagenet_*`` flags given (none: empty)."""
    options: dict[str, Any] = {
        key: getattr(args, flag[2:])
        for key, (flag, _) in _IMAGENET_PATHS.items()
        if getattr(args, flag[2:]) is not None
    }
    if args.imagenet_download_v2 is not None:
        options["download_v2"] = args.imagenet_download_v2
    if args.imagenet_skip_checksums:
        options["checksums"] = {role: None for role in ("train", "val", "devkit", "v2")}
    return options


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
    imagenet = prepare.add_argument_group("ImageNet archives (only with `prepare imagenet`)")
    for flag, help_text in _IMAGENET_PATHS.values():
        imagenet.add_argument(flag, metavar="FILE", help=help_text)
    imagenet.add_argument(
        "--imagenet_download_v2",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="download ImageNet-v2 (the test split) when --imagenet_v2_tar is not found "
        "(default: on)",
    )
    imagenet.add_argument(
        "--imagenet_skip_checksums",
        action="store_true",
        help="do not verify the archives against the official checksums (not recommended: a "
        "corrupt archive then shows up only when an image fails to decode)",
    )

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
    imagenet_options = _imagenet_options(args)
    if imagenet_options and "imagenet" not in args.names:
        flags = sorted(
            a.split("=")[0] for a in args_list if a.startswith(("--imagenet_", "--no-imagenet_"))
        )
        print(
            f"algoperf datasets prepare: {', '.join(flags)} only apply to "
            "`algoperf datasets prepare imagenet`",
            file=sys.stderr,
        )
        return 2
    if "devkit_tar" in imagenet_options and "val_labels" in imagenet_options:
        print(
            "algoperf datasets prepare: pass --imagenet_devkit_tar or --imagenet_val_labels, "
            "not both (both give the validation labels)",
            file=sys.stderr,
        )
        return 2
    status = 0
    for name in dict.fromkeys(args.names):
        try:
            prepare = get_prepare_fn(name)
            kwargs: dict[str, Any] = {"offline_fallback": args.offline_fallback}
            if "progress" in inspect.signature(prepare).parameters:
                kwargs["progress"] = not args.quiet
            if name == "imagenet":
                kwargs.update(imagenet_options)
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
