"""Full Speech Commands on a laptop: memory and time of data preparation at 10k / 50k / 105,829 clips.

    nice -n 10 .venv/bin/python benchmarks/bench_cache.py [--sizes 10000,50000,105829]
                                                          [--epoch-models cnn,m5,embed] [--no-save]

Writes a dataset as large as the full Speech Commands v0.02 (105,829 one-second 16-kHz 16-bit clips,
35 words, speaker-disjoint validation/testing lists, about 3.4 GB) into a temporary folder, derived
from the shared real recordings (gain, time shift and noise; 35 tones with noise when they are
absent), and deletes it afterwards. Then, each in a fresh child process (peak RSS = its VmHWM):

- **cache**: ``SpeechCommands(root, None, "35", cache=True).preload()`` — every clip in the dataset
  cache (16-bit samples);
- **prepare CNN**: ``training_data.prepare_data`` of the CNN recipe on all 35 words — the training and
  validation splits a run holds in memory;
- **epoch CNN / M5 / EMBED** (on the largest size up to 50k training clips): ``prepare_data`` plus one
  training epoch of the recipe (its batch size, augmentation and threads) on the CPU.

Target (issue 12): 105,829 clips in at most 4 GB of peak RAM. Before the 16-bit cache a run held
about 135 KB per clip (float32, twice), i.e. ~14 GB for the full set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_results, machine  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"
FULL_SIZE = 105_829  # clips in Speech Commands v0.02
SR = 16000


# ---------------------------------------------------------------------------------- the dataset


def _sources(words: list[str], rng) -> dict[str, list]:
    """A few 1-s float32 clips per word: real recordings when present, else a tone in noise."""
    import numpy as np

    from kwscore.data.dataset import SpeechCommands

    if (SHARED_REAL / "SpeechCommands").is_dir():
        ds = SpeechCommands(SHARED_REAL, None, commands="35")
        by_word: dict[str, list[int]] = {}
        for i in range(len(ds)):
            by_word.setdefault(ds.get_metadata(i)[2], []).append(i)
        out = {}
        for k, w in enumerate(words):
            if w not in by_word:
                out[w] = [_tone(k)]
                continue
            picks = rng.choice(by_word[w], size=min(20, len(by_word[w])), replace=False)
            clips = [ds.waveform(int(i)) for i in picks]
            out[w] = [
                np.pad(c[0].numpy(), (0, max(0, SR - c.shape[-1])))[:SR] for c in clips if c is not None
            ]
        return out
    return {w: [_tone(k)] for k, w in enumerate(words)}


def _tone(k: int):
    import numpy as np

    return (0.3 * np.sin(2 * np.pi * (200 + 60 * k) * np.arange(SR) / SR)).astype(np.float32)


def write_dataset(root: Path, n_clips: int, seed: int = 0) -> Path:
    """``n_clips`` WAVs in the SpeechCommands layout: clip i is word i % 35 said by speaker i // 35."""
    import numpy as np
    import soundfile as sf

    from kwscore.data.words import ALL_WORDS

    rng = np.random.default_rng(seed)
    words = sorted(ALL_WORDS)
    sources = _sources(words, rng)
    folder = root / "SpeechCommands" / "speech_commands_v0.02"
    for w in words:
        (folder / w).mkdir(parents=True, exist_ok=True)
    noises = SHARED_REAL / "SpeechCommands" / "speech_commands_v0.02" / "_background_noise_"
    if noises.is_dir():  # the real background noises, for the recipes' noise augmentation
        shutil.copytree(noises, folder / "_background_noise_")
    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    t0 = time.perf_counter()
    for i in range(n_clips):
        word, speaker = words[i % len(words)], f"{i // len(words):08x}"
        pool = sources[word]
        x = np.roll(pool[int(rng.integers(len(pool)))], int(rng.integers(-1600, 1601)))
        x = x * 10 ** (rng.uniform(-12, 3) / 20) + rng.normal(0, 10 ** (rng.uniform(-70, -40) / 20), SR)
        peak = np.abs(x).max()
        name = f"{word}/{speaker}_nohash_0.wav"
        sf.write(folder / name, (x / max(1.0, peak / 0.99)).astype(np.float32), SR, subtype="PCM_16")
        bucket = int(speaker, 16) % 10  # speaker-disjoint splits: 10 % validation, 10 % testing
        if bucket < 2:
            lists[("validation", "testing")[bucket]].append(name)
        if (i + 1) % 10_000 == 0 or i + 1 == n_clips:
            print(
                f"\r  wrote {i + 1:,}/{n_clips:,} clips ({time.perf_counter() - t0:.0f} s)",
                end="",
                flush=True,
            )
    print()
    for subset, names in lists.items():
        (folder / f"{subset}_list.txt").write_text("\n".join(names) + "\n")
    return root


def subset_root(full: Path, root: Path, n_clips: int) -> Path:
    """The first ``n_clips`` clips of ``full`` (hard links, no copies), with their split lists."""
    src, dst = (p / "SpeechCommands" / "speech_commands_v0.02" for p in (full, root))
    words = sorted(d.name for d in src.iterdir() if d.is_dir() and not d.name.startswith("_"))
    for w in words:
        (dst / w).mkdir(parents=True, exist_ok=True)
    if (src / "_background_noise_").is_dir():
        shutil.copytree(src / "_background_noise_", dst / "_background_noise_", copy_function=os.link)
    kept = set()
    for i in range(n_clips):
        name = f"{words[i % len(words)]}/{i // len(words):08x}_nohash_0.wav"
        os.link(src / name, dst / name)
        kept.add(name)
    for lst in ("validation_list.txt", "testing_list.txt"):
        lines = [n for n in (src / lst).read_text().split() if n in kept]
        (dst / lst).write_text("\n".join(lines) + "\n")
    return root


# ---------------------------------------------------------------------------------- one child


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB (10**6 bytes, as in "4 GB")."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6  # the kernel's "kB" are KiB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def child(kind: str, root: str, train_clips: int) -> dict:
    """Run one measurement in this (fresh) process; returns its figures."""
    import torch

    from kwscore.data.dataset import SpeechCommands
    from kwscore.recipes import default_config
    from kwscore.runner import _build
    from kwscore.training import pick_device, train
    from kwscore.training_data import prepare_data

    base_mb = peak_rss_mb()
    t0 = time.perf_counter()
    if kind == "cache":
        ds = SpeechCommands(root, None, commands="35", cache=True)
        ds.preload()
        return {"clips": len(ds), "prep_s": time.perf_counter() - t0, "cache_mb": ds.cache_bytes() / 1e6,
                "peak_mb": peak_rss_mb(), "base_mb": base_mb}  # fmt: skip
    model = kind.split()[-1]
    config = default_config(model, data=root, commands="35")
    torch.set_num_threads(config.threads or 1)
    if train_clips:  # a fraction of the training split: train_clips clips
        n_train = len(SpeechCommands(root, "training", commands="35"))
        config = default_config(model, data=root, commands="35", fraction=min(1.0, train_clips / n_train))
    data = prepare_data(config)
    out = {"clips": len(data["train"].targets) + len(data["val"].targets), "n_train": len(data["train"].targets),
           "prep_s": time.perf_counter() - t0, "peak_mb": peak_rss_mb(), "base_mb": base_mb}  # fmt: skip
    if kind.startswith("epoch"):
        device = pick_device("cpu")
        net, optimizer, scheduler = _build(config, data, device)
        t1 = time.perf_counter()
        criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        train(net, data["train"], data["train_transform"], criterion, optimizer, device, scheduler=scheduler)
        out.update(epoch_s=time.perf_counter() - t1, peak_mb=peak_rss_mb())
    return out


def run_child(kind: str, root: Path, train_clips: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--root", str(root), "--train-clips", str(train_clips)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {kind} on {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--sizes", default=f"10000,50000,{FULL_SIZE}", help="dataset sizes (clips), comma-separated"
    )
    ap.add_argument(
        "--epoch-clips", type=int, default=50_000, help="training clips for the one-epoch rows (0: none)"
    )
    ap.add_argument(
        "--tmp", default=tempfile.gettempdir(), help="where the generated dataset goes (deleted after)"
    )
    ap.add_argument("--keep", help="write the dataset to (or reuse it from) this folder and keep it")
    ap.add_argument("--epoch-models", default="cnn,m5,embed", help="recipes for the one-epoch rows (comma-separated)")
    ap.add_argument("--no-memory", action="store_true", help="only the one-epoch rows")
    ap.add_argument("--kinds", default="cache,prepare cnn", help="memory rows to measure (comma-separated)")
    ap.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--train-clips", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.root, args.train_clips)))
        return 0

    sizes = sorted(int(s) for s in args.sizes.split(","))
    need_gb = max(sizes) * 32_100 / 1e9
    free_gb = shutil.disk_usage(args.tmp).free / 1e9
    if free_gb < need_gb + 1:
        raise SystemExit(f"{args.tmp} has {free_gb:.1f} GB free; the dataset needs about {need_gb:.1f} GB.")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kws-bench-cache-", dir=args.tmp))
    rows, epoch_rows, gen_s = [], [], None
    try:
        full = work / f"n{max(sizes)}"
        if not (full / "SpeechCommands" / "speech_commands_v0.02" / "testing_list.txt").is_file():
            t0 = time.perf_counter()
            write_dataset(full, max(sizes))
            gen_s = time.perf_counter() - t0
            print(f"generated {max(sizes):,} clips in {gen_s:.0f} s", flush=True)
        roots = {
            n: full if n == max(sizes) or args.no_memory
            else (work / f"n{n}" if (work / f"n{n}").is_dir() else subset_root(full, work / f"n{n}", n))
            for n in sizes
        }  # fmt: skip
        for n in [] if args.no_memory else sizes:
            for kind in args.kinds.split(","):
                r = run_child(kind, roots[n])
                rows.append(
                    f"| {n:,} | {kind} | {r['clips']:,} | {r['prep_s']:.1f} | {r['clips'] / r['prep_s']:,.0f} | "
                    f"{r['peak_mb']:,.0f} | {(r['peak_mb'] - r['base_mb']) * 1e3 / r['clips']:.1f} |"
                )
                print(rows[-1], flush=True)
        if args.epoch_clips:
            n = max(sizes)
            for kind in (f"epoch {m}" for m in args.epoch_models.split(",")):
                r = run_child(kind, roots[n], args.epoch_clips)
                epoch_rows.append(
                    f"| {kind.split()[-1].upper()} | {r['n_train']:,} | {r['prep_s']:.1f} | {r['epoch_s']:.1f} | "
                    f"{r['n_train'] / r['epoch_s']:,.0f} | {r['peak_mb']:,.0f} |"
                )
                print(epoch_rows[-1], flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    body = (
        f"{machine()}; run under `nice -n 10` on a shared machine.\n\n"
        f"Generated dataset like the full Speech Commands v0.02: {max(sizes):,} one-second 16-kHz 16-bit clips, "
        "35 words, 10 % validation / 10 % testing speakers"
        + (f" ({gen_s:.0f} s to write)" if gen_s is not None else "")
        + (", deleted afterwards.\n" if not args.keep else ".\n")
    )
    if rows:
        body += (
            "\nEach row is a fresh process; peak RSS is its VmHWM (with ~0.5 GB of Python + PyTorch + kwscore). "
            "*cache*: every clip preloaded into `SpeechCommands(cache=True)`; *prepare cnn*: `training_data.prepare_data` "
            "of the CNN recipe (all 35 words: the training + validation splits a run holds). Target: the full set "
            "in ≤ 4,000 MB (MB = 10**6 bytes, KB = 10**3).\n\n"
            "| dataset clips | what | clips held | time s | clips/s | peak RSS MB | KB per clip above start |\n"
            "|---:|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
        )
    if epoch_rows:
        body += (
            f"\nOne training epoch of each recipe (CPU, the recipe's batch size, augmentation and threads) on "
            f"about {args.epoch_clips:,} training clips (a fraction of the {max(sizes):,}-clip set):\n\n"
            "| recipe | training clips | data preparation s | one epoch s | clips/s | peak RSS MB |\n"
            "|---|---:|---:|---:|---:|---:|\n" + "\n".join(epoch_rows) + "\n"
        )
    append_results("bench_cache: full Speech Commands in memory", body, save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
