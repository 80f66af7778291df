"""The ``kwscore`` command line.

    kwscore data synth    [--root DIR] [--speakers N] [--words all|commands] [--seed S] [--force]
    kwscore data download [--root DIR] [--url URL] [--sha256 HEX]
    kwscore data info     [--root DIR]

Mistakes (a missing dataset, a bad parameter) are printed as one friendly line and exit code 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable

from kwscore import paths
from kwscore.errors import KwsError

Command = Callable[[argparse.Namespace], int]


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="clip", file=sys.stderr, dynamic_ncols=True)


# ---------------------------------------------------------------- data
def cmd_data_synth(args: argparse.Namespace) -> int:
    from kwscore.data.synth import SynthParams, generate, is_complete

    params = SynthParams(speakers=args.speakers, words=args.words, utterances=args.utterances, seed=args.seed)
    params.validate()
    root = args.root or paths.synth_root()
    if is_complete(root, params) and not args.force:
        print(f"A complete synthetic dataset with these settings is already at {root} (use --force to redo).")
        return 0
    bar = None

    def progress(done: int, total: int, message: str) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress_bar(total, "synthesising")
        bar.update(done - bar.n)
        bar.set_postfix_str(message)

    started = time.perf_counter()
    generate(root, params, force=args.force, progress=progress)
    if bar is not None:
        bar.close()
    print(f"Generated in {time.perf_counter() - started:.1f} s: {root}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from kwscore.data.download import REAL_URL, download

    root = args.root or paths.real_root()
    download(root, url=args.url or REAL_URL, sha256=args.sha256, progress=True)
    print(f"Speech Commands is ready at {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from kwscore.data.info import dataset_info

    info = dataset_info(args.root or paths.synth_root())
    print(info.format())
    return 1 if info.overlapping_speakers() else 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kwscore", description="KWS Studio: keyword spotting, from data to model.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="create, download and inspect datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="generate the embedded synthetic Speech Commands (espeak-ng)")
    p.add_argument("--root", help=f"dataset root (default {paths.synth_root()})")
    p.add_argument("--speakers", type=int, default=40, help="number of synthetic speakers (default 40)")
    p.add_argument("--words", choices=["all", "commands"], default="all", help="all 35 words or the 8 commands")
    p.add_argument("--utterances", type=int, default=3, help="takes per speaker and word (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="regenerate even if a complete dataset exists")
    p.set_defaults(func=cmd_data_synth)

    p = data.add_parser("download", help="download the real Speech Commands v0.02 (2.3 GB)")
    p.add_argument("--root", help=f"dataset root (default {paths.real_root()})")
    p.add_argument("--url", help="archive URL (default: the official one); file:// works")
    p.add_argument("--sha256", help="expected SHA-256 of the archive (default: the official one)")
    p.set_defaults(func=cmd_data_download)

    p = data.add_parser("info", help="words, clips and speakers per split, durations")
    p.add_argument("--root", help=f"dataset root (default {paths.synth_root()})")
    p.set_defaults(func=cmd_data_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.func(args)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m kwscore.cli
    sys.exit(main())
