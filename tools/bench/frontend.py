#!/usr/bin/env python3
"""Mel spectrograms per second: cadenza's front-end (build/bench_frontend) next to
torchaudio's on the CPU, the same clips, shapes and thread count, in one table.

    /usr/bin/python3 tools/bench/frontend.py --config configs/mtat_top10_crnn.yaml --threads 2

The peer is what a PyTorch training script computes for the config's features (torchaudio
MelSpectrogram with the config's n_fft, hop, mels, f_min/f_max, centring, power, HTK
scale, then AmplitudeToDB) on a (batch, samples) tensor in memory, timed like cadenza's:
two untimed calls, then the median of --repeats. --cuda also times cadenza on the GPU
(build/bench_frontend --device cuda), and torchaudio on it when this torch has CUDA, and
prints cadenza's kernels' achieved memory bandwidth next to the device's peak. Nothing
here is a test.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_blas  # noqa: E402,F401  (before torch: the peer's BLAS kernels)
import torch  # noqa: E402
import torchaudio  # noqa: E402
import yaml  # noqa: E402


def cadenza(args, device):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [args.bench_frontend, "--config", args.config, "--seconds", str(args.seconds), "--batch",
                   str(args.batch), "--device", device, "--repeats", str(args.repeats), "--json", out.name]
        if device == "cpu":
            command += ["--threads", str(args.threads)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))


def torchaudio_rate(args, features, sample_rate, device="cpu"):
    if features.get("type", "mel") != "mel" or features.get("log", "db") != "db":
        sys.exit("frontend.py: the peer covers mel features with log db")
    torch.set_num_threads(args.threads)
    n_fft = features.get("n_fft", 512)
    f_max = features.get("f_max", 0) or None
    power = float(features.get("power", 2.0))
    transform = torch.nn.Sequential(
        torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, win_length=features.get("win_length", 0) or None,
            hop_length=features.get("hop_length", 256), f_min=features.get("f_min", 0.0), f_max=f_max,
            n_mels=features.get("n_mels", 96), power=power, center=features.get("center", True),
            pad_mode=features.get("pad_mode", "reflect"), mel_scale=features.get("mel_scale", "htk"),
            norm=None if features.get("mel_norm", "none") == "none" else "slaney"),
        torchaudio.transforms.AmplitudeToDB(stype="power" if power == 2.0 else "magnitude")).to(device)
    samples = int(round(args.seconds * sample_rate))
    t = torch.arange(samples, dtype=torch.float64) / sample_rate
    pcm = torch.stack([0.3 * torch.sin(2 * math.pi * 110.0 * (b + 1) * t + 2.0 * torch.sin(2 * math.pi * 5.0 * t))
                       for b in range(args.batch)]).float().to(device)
    wait = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(2):
            transform(pcm)
        wait()
        timings = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            transform(pcm)
            wait()
            timings.append(time.perf_counter() - start)
    return args.batch / statistics.median(timings)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/mtat_top10_crnn.yaml")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cuda", action="store_true", help="also time cadenza on the GPU")
    parser.add_argument("--bench-frontend", default="build/bench_frontend")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args()

    config = yaml.safe_load(open(args.config))
    features, sample_rate = config.get("features", {}), config.get("data", {}).get("sample_rate", 16000)
    rows = [{"what": f"cadenza CPU, {args.threads} threads", "clips_per_s": cadenza(args, "cpu")["clips_per_s"]},
            {"what": f"torchaudio {torchaudio.__version__} CPU, {args.threads} threads",
             "clips_per_s": torchaudio_rate(args, features, sample_rate)}]
    gpu = cadenza(args, "cuda") if args.cuda else None
    if gpu:
        rows.append({"what": "cadenza GPU", "clips_per_s": gpu["clips_per_s"],
                     "achieved_bytes_per_s": gpu["achieved_bytes_per_s"], "peak_bytes_per_s": gpu["peak_bytes_per_s"]})
        if torch.cuda.is_available():
            rows.append({"what": f"torchaudio {torchaudio.__version__} GPU",
                         "clips_per_s": torchaudio_rate(args, features, sample_rate, "cuda")})
        else:
            print("frontend.py: this torch has no CUDA; the torchaudio GPU row is left out", file=sys.stderr)
    peer = rows[1]["clips_per_s"]
    print(f"{args.config}: {features.get('n_mels', 96)}-mel dB spectrograms of {args.seconds:g} s clips at "
          f"{sample_rate} Hz, batch {args.batch}, median of {args.repeats}")
    print(f"{'':40}  {'clips/s':>9}  {'audio s/s':>10}  {'vs torchaudio':>13}")
    for r in rows:
        r["vs_torchaudio"] = r["clips_per_s"] / peer
        print(f"{r['what']:40}  {r['clips_per_s']:>9.1f}  {r['clips_per_s'] * args.seconds:>10.0f}  "
              f"{r['vs_torchaudio']:>12.2f}x")
    if gpu and len(rows) > 3:
        print(f"cadenza GPU vs torchaudio GPU: {rows[2]['clips_per_s'] / rows[3]['clips_per_s']:.2f}x")
    if gpu and gpu["peak_bytes_per_s"] > 0:
        print(f"GPU kernels' memory traffic: {gpu['achieved_bytes_per_s'] / 1e9:.0f} GB/s of the device's "
              f"{gpu['peak_bytes_per_s'] / 1e9:.0f} GB/s peak "
              f"({100 * gpu['achieved_bytes_per_s'] / gpu['peak_bytes_per_s']:.0f} %)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, "seconds": args.seconds, "batch": args.batch, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
