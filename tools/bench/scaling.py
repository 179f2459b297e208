#!/usr/bin/env python3
"""Data-parallel scaling of gpu_train: training samples/s at 1, 2, ..., N ranks.

Weak scaling, as data-parallel training is used: every rank keeps train.batch_size, so N
ranks take steps of N times the examples. Each row is one gpu_train run launched by
mpirun; its figure is the last epoch's samples_per_s from metrics.jsonl (the first epoch
includes warm-up), i.e. examples of the global batch per second of training steps.
Efficiency is samples/s at N ranks over N times samples/s at 1 rank.

With --device cuda every row runs with train.capture_graph=false: the trainer replays the
step as one CUDA graph only at world size 1, so a captured 1-rank baseline would be
compared with op-by-op N-rank rows. The output says so.

On a multi-GPU machine (one rank per GPU):
    python3 tools/bench/scaling.py --config configs/mtat_top10_crnn.yaml --device cuda --ranks 1 2 4 8

Across nodes, host options go to mpirun as they are (each row's -np is the rank count):
    python3 tools/bench/scaling.py --device cuda --ranks 8 16 --mpirun-args "--hostfile hosts --map-by ppr:8:node"

On a CPU machine (the CPU backend over MPI; the cores are shared among the ranks, so
--threads-per-rank times the largest rank count should not exceed the cores):
    python3 tools/bench/scaling.py --config configs/demo.yaml --device cpu --ranks 1 2 --threads-per-rank 1

--json FILE also writes the table as JSON. Nothing here is a test: it prints figures.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def run_one(args, ranks, run_dir):
    command = []
    if ranks > 1 or args.mpirun_always:
        command += ["mpirun", "-np", str(ranks), "--oversubscribe"]
        if os.geteuid() == 0:
            command.append("--allow-run-as-root")
        command += ["--bind-to", "none"]
        command += shlex.split(args.mpirun_args)
    command += [args.gpu_train, args.config, "--quiet", "--run-dir", run_dir, "--device", args.device,
                "--set", f"train.epochs={args.epochs}", "--set", f"train.threads={args.threads_per_rank}"]
    for override in graph_overrides(args) + args.set:
        command += ["--set", override]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"scaling: {ranks} ranks failed ({result.returncode}):\n{result.stdout}")
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        epochs = [json.loads(line) for line in f if line.strip()]
    return epochs[-1]["samples_per_s"]


def graph_overrides(args):
    """Overrides every row gets so that the rows compare the same step: on a GPU, the
    trainer captures the step as a CUDA graph only at world size 1."""
    return ["train.capture_graph=false"] if args.device.startswith("cuda") else []


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (each rank takes its local GPU)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=2, help="the last epoch is timed")
    parser.add_argument("--threads-per-rank", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="more config overrides, KEY=VALUE")
    parser.add_argument("--gpu-train", default="build/gpu_train")
    parser.add_argument("--mpirun-always", action="store_true", help="launch 1 rank through mpirun too")
    parser.add_argument("--mpirun-args", default="",
                        help="more mpirun options, one shell-quoted string (hosts, mapping, -x VAR), for "
                             "every row launched through mpirun (N > 1 ranks, or all with --mpirun-always)")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args()

    rows = []
    scratch = tempfile.mkdtemp(prefix="cadenza_scaling_")
    try:
        for ranks in args.ranks:
            rate = run_one(args, ranks, os.path.join(scratch, f"ranks{ranks}"))
            rows.append({"ranks": ranks, "samples_per_s": rate})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = next((r["samples_per_s"] for r in rows if r["ranks"] == 1), None)
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base if base else None
        r["efficiency"] = r["speedup"] / r["ranks"] if base else None

    print(f"config {args.config}, device {args.device}, {args.threads_per_rank} thread(s) per rank, "
          f"last of {args.epochs} epochs")
    for override in graph_overrides(args):
        print(f"every row runs with --set {override}: the trainer replays the step as a CUDA graph only "
              f"at world size 1, and the rows must time the same op-by-op step")
    if args.mpirun_args:
        print(f"mpirun options: {args.mpirun_args}")
    print(f"{'ranks':>5}  {'samples/s':>10}  {'speedup':>7}  {'efficiency':>10}")
    for r in rows:
        speedup = f"{r['speedup']:.2f}" if r["speedup"] is not None else "-"
        efficiency = f"{100 * r['efficiency']:.0f}%" if r["efficiency"] is not None else "-"
        print(f"{r['ranks']:>5}  {r['samples_per_s']:>10.1f}  {speedup:>7}  {efficiency:>10}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, "device": args.device, "threads_per_rank": args.threads_per_rank,
                       "overrides": graph_overrides(args) + args.set, "mpirun_args": args.mpirun_args,
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
