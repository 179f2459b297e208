#!/usr/bin/env python3
"""The peer of tools/bench/scaling.py: the demo model (configs/demo.yaml) in PyTorch with
DistributedDataParallel on the CPU (gloo), timed at 1, 2, ... processes.

Same model (batchnorm, 3x3 convolutions 16-32-64-64 with max pooling, global average
pooling, dropout 0.3, dense 8), same front-end (torchaudio MelSpectrogram n_fft 512, hop
256, 64 mels up to 8 kHz, power to dB), same per-rank batch (16), Adam at lr 0.002, one
thread per process. The input is random audio held in memory (no decoding or cropping:
the peer's best case); a step is front-end, forward, loss, backward (with DDP's bucketed
all-reduce) and the optimizer step. Figures are examples of the global batch per second,
the median of --repeats timings of --steps steps after --warmup steps.

    /usr/bin/python3 tools/bench/scaling_peer.py --ranks 1 2

(Debian's python3-torch and python3-torchaudio; --json FILE writes the table.)
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_blas  # noqa: E402,F401  (before torch: the peer's BLAS kernels)
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torchaudio  # noqa: E402


def demo_model():
    layers = [torch.nn.BatchNorm2d(1)]
    channels = 1
    for i, filters in enumerate([16, 32, 64, 64]):
        layers += [torch.nn.Conv2d(channels, filters, 3), torch.nn.BatchNorm2d(filters), torch.nn.ReLU()]
        if i < 3:
            layers.append(torch.nn.MaxPool2d(2))
        channels = filters
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(64, 8)]
    return torch.nn.Sequential(*layers)


def worker(rank, world, args, port, results):
    torch.set_num_threads(args.threads_per_rank)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank)
    frontend = torch.nn.Sequential(
        torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256, n_mels=64, f_max=8000),
        torchaudio.transforms.AmplitudeToDB(stype="power"))
    model = torch.nn.parallel.DistributedDataParallel(demo_model())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    loss_fn = torch.nn.CrossEntropyLoss()
    audio = torch.randn(args.batch, 32000) * 0.1
    labels = torch.randint(0, 8, (args.batch,))

    def step():
        features = frontend(audio).unsqueeze(1)
        loss = loss_fn(model(features), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    timings = []
    for _ in range(args.repeats):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        dist.barrier()
        timings.append(time.perf_counter() - start)
    if rank == 0:
        results.put(statistics.median(args.steps * args.batch * world / t for t in timings))
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=16, help="per rank")
    parser.add_argument("--threads-per-rank", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args()

    rows = []
    context = mp.get_context("spawn")
    for index, world in enumerate(args.ranks):
        results = context.Queue()
        port = 29600 + index
        processes = [context.Process(target=worker, args=(r, world, args, port, results)) for r in range(world)]
        for p in processes:
            p.start()
        rate = results.get()
        for p in processes:
            p.join()
            if p.exitcode != 0:
                sys.exit(f"scaling_peer: a rank of {world} exited with {p.exitcode}")
        rows.append({"ranks": world, "samples_per_s": rate})
    base = next((r["samples_per_s"] for r in rows if r["ranks"] == 1), None)
    print(f"PyTorch {torch.__version__} DDP (gloo), demo model, batch {args.batch} per rank, "
          f"{args.threads_per_rank} thread(s) per rank")
    print(f"{'ranks':>5}  {'samples/s':>10}  {'speedup':>7}  {'efficiency':>10}")
    for r in rows:
        speedup = r["samples_per_s"] / base if base else None
        r["speedup"], r["efficiency"] = speedup, (speedup / r["ranks"] if speedup else None)
        print(f"{r['ranks']:>5}  {r['samples_per_s']:>10.1f}  {speedup or 0:>7.2f}  "
              f"{100 * (r['efficiency'] or 0):>9.0f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peer": f"torch {torch.__version__} DDP gloo", "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
