#!/usr/bin/env python3
"""The peer of tools/loader_benchmark.cpp: the usual PyTorch/librosa data path, timed on
the same files.

Run loader_benchmark with --keep, then give its folder here (the audio is in DIR/audio):

    ./build/loader_benchmark --clips 100 --seconds 30 --dir /tmp/lb --keep
    python3 tools/bench/loader_peer.py --dir /tmp/lb --batch 16

Rows, named like loader_benchmark's so the two tables can be put side by side:
  librosa.load per item, 1 process   a Dataset whose __getitem__ calls
                                     librosa.load(path, sr=16000, mono=True,
                                     res_type='soxr_hq') and returns a random crop, read by a
                                     DataLoader with num_workers=0 (crops stacked here).
  librosa.load per item, Pool(N)     the same in N worker processes (fork, as DataLoader's
                                     num_workers=N on Linux): each worker decodes and crops,
                                     the crop comes back pickled and is stacked into batches.
  preloaded numpy, random crops      every clip decoded once and kept in memory as a numpy
                                     array; batches of random crops stacked in one process:
                                     the best case of a peer that preloads everything.
  GPU consumption (ESTIMATED)        the same FLOP estimate as loader_benchmark's, unless
                                     --gpu-clips-per-second gives a measured figure.
For per-item rows, clips/s is the decode rate (compare with cadenza's cache build) and
batches/s is clips/s / batch (compare with cadenza's served batches/s); audio s/s counts
the files' seconds decoded. For the preloaded row, audio s/s counts the crops' seconds.

Everything is timed after an untimed warm-up run of the same work (the first pass over the
files is markedly slower, in librosa as in cadenza: allocator and page-table warm-up), in a
pool started before timing, as DataLoader's persistent workers are. Per-item rows are the
median of 3 passes over all files in a shuffled order (the seconds column is one pass), the
preloaded row the median of 5 runs of at least 0.4 s (the seconds column is all runs).
The files were just written by loader_benchmark, so they are read from the page cache.
Needs numpy, soundfile and librosa (0.11 tested). --json FILE writes the rows as
loader_benchmark's --json does.
"""

import argparse
import glob
import json
import multiprocessing
import os
import platform
import statistics
import time

import librosa
import numpy as np
import soundfile

# The GPU estimate of tools/loader_benchmark.cpp (keep the two in step): the CRNN of Choi et
# al. 2017 takes ~6.5 GFLOP forward per 29.1 s clip, a training step ~3x that, and an
# H100-class GPU is assumed to sustain 25 TFLOP/s FP32.
CRNN_FORWARD_FLOP_PER_CLIP = 6.5e9
CRNN_CLIP_SECONDS = 29.1
TRAIN_FLOP_FACTOR = 3.0
ASSUMED_GPU_FLOPS = 25e12

PER_ITEM_REPEATS = 3
PRELOADED_REPEATS = 5
PRELOADED_RUN_SECONDS = 0.4
AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".opus", ".mp3")

# Set in each worker by the pool's initializer (and in this process for the 1-process row).
_settings = {}


def _init(sample_rate, window):
    _settings["sample_rate"] = sample_rate
    _settings["window"] = window


def _random_crop(samples, window, rng):
    """A window of `window` samples at a uniformly random start; zero-padded when shorter."""
    if len(samples) <= window:
        crop = np.zeros(window, dtype=np.float32)
        crop[: len(samples)] = samples
        return crop
    start = int(rng.integers(0, len(samples) - window + 1))
    return samples[start : start + window]


def _decode(path):
    samples, _ = librosa.load(path, sr=_settings["sample_rate"], mono=True, res_type="soxr_hq")
    return samples


def _get_item(item):
    """Dataset.__getitem__: decode the whole file, return a random crop of it."""
    index, path = item
    rng = np.random.default_rng(index)
    return _random_crop(_decode(path), _settings["window"], rng)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") or line.startswith("Model"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def batches_of(crops, batch):
    """Stacks an iterable of crops into (batch, window) arrays, as DataLoader's collate does;
    returns the number of clips seen."""
    pending, seen = [], 0
    for crop in crops:
        pending.append(crop)
        seen += 1
        if len(pending) == batch:
            np.stack(pending)
            pending = []
    if pending:
        np.stack(pending)
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="a folder loader_benchmark --keep left (audio in DIR/audio)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop-seconds", type=float, default=29.1)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--processes", type=int, default=os.cpu_count(), help="pool size (default: all cores)")
    parser.add_argument("--gpu-clips-per-second", type=float, default=None,
                        help="a measured GPU rate (default: the FLOP estimate)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    audio_root = os.path.join(args.dir, "audio")
    files = sorted(p for p in glob.glob(os.path.join(audio_root, "*", "*")) if p.lower().endswith(AUDIO_EXTENSIONS))
    if not files:
        parser.error(f"no audio files under {audio_root}; run loader_benchmark --keep --dir {args.dir} first")
    window = round(args.crop_seconds * args.sample_rate)
    source_seconds = sum(soundfile.info(p).duration for p in files)
    train_flop = TRAIN_FLOP_FACTOR * CRNN_FORWARD_FLOP_PER_CLIP * args.crop_seconds / CRNN_CLIP_SECONDS
    gpu_estimated = args.gpu_clips_per_second is None
    gpu_clips = ASSUMED_GPU_FLOPS / train_flop if gpu_estimated else args.gpu_clips_per_second
    order = list(enumerate(files))
    np.random.default_rng(7).shuffle(order)

    print(f"loader_peer: {len(files)} files ({source_seconds / len(files):.1f} s each) in {audio_root} "
          f"-> {args.sample_rate} Hz; batches of {args.batch} x {args.crop_seconds} s crops")
    print(f"machine: {cpu_model()}, {os.cpu_count()} hardware threads; librosa {librosa.__version__}, "
          f"soundfile {soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__}), numpy {np.__version__}")
    rows = []

    def row(stage, workers, seconds, clips_per_s, audio_s_per_s, batches_per_s, headroom):
        rows.append(dict(stage=stage, threads=workers, seconds=seconds, clips_per_s=clips_per_s,
                         audio_s_per_s=audio_s_per_s, batches_per_s=batches_per_s, headroom=headroom))

    # 1 process: decode + crop per item; the decoded clips are kept for the preloaded row.
    _init(args.sample_rate, window)
    decoded = [None] * len(files)

    def items_in_process():
        for index, path in order:
            decoded[index] = _decode(path)
            yield _random_crop(decoded[index], window, np.random.default_rng(index))

    times = []
    for run in range(PER_ITEM_REPEATS + 1):  # run 0 is the warm-up
        start = time.perf_counter()
        batches_of(items_in_process(), args.batch)
        times.append(time.perf_counter() - start)
    elapsed = statistics.median(times[1:])
    clips = len(files) / elapsed
    row("librosa.load per item, 1 process", 1, elapsed, clips, source_seconds / elapsed, clips / args.batch,
        clips / gpu_clips)

    # Pool of N processes: the DataLoader(num_workers=N) equivalent.
    context = multiprocessing.get_context("fork")
    with context.Pool(args.processes, initializer=_init, initargs=(args.sample_rate, window)) as pool:
        times = []
        for run in range(PER_ITEM_REPEATS + 1):  # run 0 is the warm-up
            start = time.perf_counter()
            batches_of(pool.imap(_get_item, order, chunksize=1), args.batch)
            times.append(time.perf_counter() - start)
    elapsed = statistics.median(times[1:])
    clips = len(files) / elapsed
    row(f"librosa.load per item, Pool({args.processes})", args.processes, elapsed, clips, source_seconds / elapsed,
        clips / args.batch, clips / gpu_clips)

    # Preloaded: random crops of in-memory arrays, stacked.
    rng = np.random.default_rng(11)
    rates, total = [], 0.0
    for run in range(PRELOADED_REPEATS + 1):  # run 0 is the warm-up
        start, batches = time.perf_counter(), 0
        while True:
            picks = rng.integers(0, len(decoded), args.batch)
            np.stack([_random_crop(decoded[i], window, rng) for i in picks])
            batches += 1
            elapsed = time.perf_counter() - start
            if elapsed >= PRELOADED_RUN_SECONDS:
                break
        if run > 0:
            rates.append(batches / elapsed)
            total += elapsed
    batches_per_s = statistics.median(rates)
    clips = batches_per_s * args.batch
    row("preloaded numpy arrays, random crops", 1, total, clips, clips * args.crop_seconds, batches_per_s,
        clips / gpu_clips)
    row("GPU consumption, CRNN training (" + ("ESTIMATED)" if gpu_estimated else "given)"), None, None, gpu_clips,
        gpu_clips * args.crop_seconds, gpu_clips / args.batch, None)

    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    print()
    print(f"{'stage':<44}{'threads':>8}{'seconds':>10}{'clips/s':>11}{'audio s/s':>12}{'batches/s':>11}{'headroom':>10}")
    for r in rows:
        print(f"{r['stage']:<44}{cell(r['threads'], 'd'):>8}{cell(r['seconds'], '.4f'):>10}"
              f"{cell(r['clips_per_s'], '.1f'):>11}{cell(r['audio_s_per_s'], '.0f'):>12}"
              f"{cell(r['batches_per_s'], '.1f'):>11}{cell(r['headroom'], '.2f') + ('x' if r['headroom'] else ''):>10}")
    print()
    if gpu_estimated:
        print(f"GPU: {gpu_clips:.0f} clips/s = ESTIMATED: {ASSUMED_GPU_FLOPS / 1e12:.0f} TFLOP/s sustained FP32 / "
              f"{train_flop / 1e9:.1f} GFLOP per training clip; not measured")
    else:
        print(f"GPU: {gpu_clips:.0f} clips/s, given with --gpu-clips-per-second")
    for r in rows[:-1]:
        verdict = "keeps up" if r["headroom"] >= 1 else f"does NOT keep up (GPU idle {100 * (1 - r['headroom']):.0f}%)"
        print(f"  {r['stage']}: headroom {r['headroom']:.2f}x, {verdict}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tool": "loader_peer",
                       "machine": {"cpu": cpu_model(), "hardware_threads": os.cpu_count()},
                       "settings": {"files": len(files), "batch": args.batch, "crop_seconds": args.crop_seconds,
                                    "sample_rate": args.sample_rate, "processes": args.processes,
                                    "librosa": librosa.__version__},
                       "gpu_clips_per_s": gpu_clips, "gpu_estimated": gpu_estimated, "rows": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
