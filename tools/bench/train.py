#!/usr/bin/env python3
"""Training step speed: cadenza (build/bench_train) next to the same model in PyTorch, on
the same batch, input and thread count, for each config, in one table.

    /usr/bin/python3 tools/bench/train.py --threads 2
    /usr/bin/python3 tools/bench/train.py --cuda      # on a GPU machine: adds cadenza's CUDA
                                                      # backend (and torch's, if it has CUDA)

A step on both sides is the config's front-end on a batch of audio held on the device,
forward, loss (BCE with logits for tags, cross-entropy for classes), backward and the
optimizer's update (train.optimizer, lr, betas, eps, weight decay, momentum). The peer's
model is built from the resolved config bench_train writes (tools/bench/torch_peer.py)
and must have cadenza's parameter count. Both time --steps steps after --warmup, each to
the device's completion, and report the median as samples/s; the two sides alternate for
--rounds rounds (a shared machine's slow spell then falls on both), and the table gives the
medians of the rounds and the median and range of the rounds' ratios. On the GPU both run at
--precision (fp32: no TF32 anywhere; tf32: cadenza's train.precision tf32, torch's
allow_tf32 for cuDNN and matmul; bf16: cadenza's train.precision bf16, torch's allow_tf32
and the model under torch.autocast(dtype=torch.bfloat16)), torch with cudnn.benchmark. The ceiling column is
bench_train's: its measured GEMM rate over 3 x the forward FLOPs per example. Memory:
on the CPU each side's process peak resident set (the peer's from a process of its own); on
the GPU cadenza's arena and torch's peak device allocation. Nothing here is a test;
--json FILE writes the table.
"""
import argparse
import contextlib
import json
import multiprocessing
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

import torch_peer  # noqa: E402

DEFAULT_CONFIGS = ["configs/mtat_top10_crnn.yaml", "configs/gtzan_cnn2d.yaml"]


def cadenza(args, config, device):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [args.bench_train, "--config", config, "--device", device, "--warmup", str(args.warmup),
                   "--steps", str(args.steps), "--json", out.name]
        if device == "cpu":
            command += ["--threads", str(args.threads)]
        else:
            command += ["--set", f"train.precision={args.precision}"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))


def optimizer_for(train, parameters):
    kind, lr = train.get("optimizer", "adam"), float(train.get("lr", 0.001))
    decay = float(train.get("weight_decay", 0))
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(parameters, lr=lr, betas=tuple(float(b) for b in train.get("betas", [0.9, 0.999])),
                   eps=float(train.get("eps", 1e-8)), weight_decay=decay)
    if kind == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=float(train.get("momentum", 0)), weight_decay=decay,
                               nesterov=bool(train.get("nesterov", False)))
    raise ValueError(f"train.optimizer {kind} is not covered by the torch peer")


def peer(args, figures, device):
    """PyTorch samples/s for the model bench_train described in `figures`, and the memory it
    took: the process's peak resident set (CPU) or torch's peak device allocation (GPU)."""
    torch.set_num_threads(args.threads)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = args.precision != "fp32"
        torch.backends.cudnn.benchmark = True
    config = yaml.safe_load(figures["resolved_config"])
    data, train = config["data"], config["train"]
    sample_rate = data["sample_rate"]
    batch = figures["batch"]
    samples = int(round(float(data["clip_seconds"]) * sample_rate))
    frontend = torch_peer.front_end(config["features"], sample_rate).to(device)
    audio = (torch.randn(batch, samples) * 0.1).to(device)
    with torch.no_grad():
        input_shape = frontend(audio[:1]).unsqueeze(1).shape[1:]
    model = torch_peer.ConfigModel(config["model"]["layers"], input_shape, figures["labels"]).to(device)
    count = sum(p.numel() for p in model.parameters())
    if count != figures["parameters"]:
        sys.exit(f"train.py: the torch model of {figures['config']} has {count} parameters, cadenza's "
                 f"{figures['parameters']}; the peer is not the same model")
    optimizer = optimizer_for(train, model.parameters())
    if figures["loss"] == "sigmoid_bce":
        loss_fn = torch.nn.BCEWithLogitsLoss()
        targets = torch.randint(0, 2, (batch, figures["labels"])).float().to(device)
    else:
        loss_fn = torch.nn.CrossEntropyLoss()
        targets = torch.randint(0, figures["labels"], (batch,)).to(device)
    clip = float(train.get("grad_clip_norm", 0))

    def autocast():
        if device == "cuda" and args.precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        features = frontend(audio).unsqueeze(1)
        with autocast():
            logits = model(features)
        loss = loss_fn(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    model.train()
    timings = []
    for s in range(args.warmup + args.steps):
        start = time.perf_counter()
        step()
        if s >= args.warmup:
            timings.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated() if device == "cuda" else peak_resident_bytes()
    return batch / statistics.median(timings), memory


def peak_resident_bytes():
    """This process's peak resident set (VmHWM; ru_maxrss keeps the parent's across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def peer_memory(args, figures, device):
    """The memory of one warm-up and one timed peer() step in a fresh process, so that the
    peak resident set is this model's alone (a process's peak never goes down). The speed
    comes from peer() in this process: a spawned process ran the same steps up to 15 %
    slower, which would flatter cadenza."""
    short = argparse.Namespace(**{**vars(args), "warmup": 1, "steps": 1})
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(peer, (short, figures, device))[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3,
                        help="cadenza and PyTorch alternate this many times per row (default 3)")
    parser.add_argument("--cuda", action="store_true", help="also time both on the GPU")
    parser.add_argument("--no-cpu", action="store_true", help="with --cuda: the GPU rows only")
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                        help="GPU rows: train.precision for cadenza, allow_tf32 (and bf16 autocast) for "
                             "torch (default fp32)")
    parser.add_argument("--bench-train", default="build/bench_train")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args()

    devices = ([] if args.no_cpu else ["cpu"]) + (["cuda"] if args.cuda else [])
    rows = []
    for config in args.configs:
        for device in devices:
            torch_device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
            has_peer = not (device == "cuda" and torch_device == "cpu")
            if not has_peer:
                print(f"note: torch {torch.__version__} has no CUDA; the GPU rows show no PyTorch figure",
                      file=sys.stderr)
            # The two sides alternate, so that a slow spell of a shared machine falls on both;
            # each round's ratio compares runs minutes apart at most.
            rounds = []
            for _ in range(args.rounds):
                figures = cadenza(args, config, device)
                peer_rate = peer(args, figures, torch_device)[0] if has_peer else None
                rounds.append((figures, peer_rate))
            figures = rounds[0][0]
            peer_rate = statistics.median([r[1] for r in rounds]) if has_peer else None
            peer_bytes = peer_memory(args, figures, torch_device) if has_peer else None
            cadenza_rates = [r[0]["samples_per_s"] for r in rounds]
            ratios = [r[0]["samples_per_s"] / r[1] for r in rounds] if has_peer else []
            rows.append({"config": config, "model": figures["model"], "device": figures["device"],
                         "threads": args.threads if device == "cpu" else None, "batch": figures["batch"],
                         "rounds": args.rounds,
                         "cadenza_samples_per_s": statistics.median(cadenza_rates),
                         "cadenza_samples_per_s_range": [min(cadenza_rates), max(cadenza_rates)],
                         "pytorch_samples_per_s": peer_rate,
                         "pytorch_samples_per_s_range": [min(r[1] for r in rounds), max(r[1] for r in rounds)]
                         if has_peer else None,
                         "ratio": statistics.median(ratios) if ratios else None,
                         "ratio_range": [min(ratios), max(ratios)] if ratios else None,
                         "ceiling_samples_per_s": statistics.median([r[0]["ceiling_samples_per_s"] for r in rounds]),
                         "gemm_gflops": statistics.median([r[0]["gemm_flops_per_s"] for r in rounds]) / 1e9,
                         "cadenza_memory_bytes": figures["peak_rss_bytes"] if device == "cpu" else figures["arena_bytes"],
                         "pytorch_memory_bytes": peer_bytes,
                         "forward_gflop_per_sample": figures["forward_flops_per_sample"] / 1e9})

    print(f"training step, median of {args.steps} after {args.warmup} warm-up, then the median of {args.rounds} "
          f"alternating rounds (ratio: the median of the rounds' ratios); PyTorch {torch.__version__}, "
          f"torchaudio {torchaudio.__version__}; CPU rows on {args.threads} threads"
          + (f"; GPU rows in {args.precision}" if args.cuda else ""))
    header = f"{'model':18} {'device':7} {'batch':>5} {'cadenza/s':>10} {'PyTorch/s':>10} {'ratio':>6} " \
             f"{'ratio range':>13} {'ceiling/s':>10} {'GEMM GFLOP/s':>12} {'cadenza MiB':>11} {'PyTorch MiB':>11}"
    print(header)
    for r in rows:
        peer_text = f"{r['pytorch_samples_per_s']:10.2f}" if r["pytorch_samples_per_s"] else f"{'-':>10}"
        ratio_text = f"{r['ratio']:5.2f}x" if r["ratio"] else f"{'-':>6}"
        range_text = (f"{r['ratio_range'][0]:5.2f}-{r['ratio_range'][1]:.2f}x" if r["ratio_range"]
                      else f"{'-':>13}")
        peer_memory_text = (f"{r['pytorch_memory_bytes'] / 2**20:11.0f}" if r["pytorch_memory_bytes"]
                            else f"{'-':>11}")
        print(f"{r['model']:18} {r['device']:7} {r['batch']:>5} {r['cadenza_samples_per_s']:10.2f} {peer_text} "
              f"{ratio_text} {range_text:>13} {r['ceiling_samples_per_s']:10.2f} {r['gemm_gflops']:12.0f} "
              f"{r['cadenza_memory_bytes'] / 2**20:11.0f} {peer_memory_text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "precision": args.precision, "warmup": args.warmup,
                       "steps": args.steps, "rounds": args.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
