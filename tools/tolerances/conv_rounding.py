#!/usr/bin/env python3
"""The error that train.precision tf32 and bf16 put into the op-parity convolution cases,
emulated: the source of kTf32 and kBf16Convolution in host/selfcheck/op_parity.cpp.

    python3 tools/tolerances/conv_rounding.py [TRIALS]

For each convolution geometry of op_parity.cpp's conv2d_cases, TRIALS draws of inputs as
the harness makes them (x and dy uniform in [-1, 1), w in [-0.3, 0.3), dw starting random:
the weight gradient accumulates) give the forward output y, the input gradient dx and the
weight gradient dw in float64 from the exact float32 inputs (the CPU's result, up to its
own float32 rounding) and from the inputs rounded as the GPU rounds them: tf32 keeps 10
stored mantissa bits, bf16 7 (round to nearest even); sums stay exact, which is what fp32
accumulation of a few thousand terms comes close to; under bf16 the results are rounded
to bf16 too, as cuDNN writes them before they are widened back. The error is
max |GPU - CPU| / max(1, max |CPU|) over the tensor (ErrorScale::tensor), and the script
prints the worst over all trials per precision: the tolerances are set a few times above
it. Nothing here is a test.
"""
import sys

import numpy as np


def rounded(values, dropped_bits):
    """float32 values with their lowest `dropped_bits` mantissa bits rounded off (to nearest even)."""
    bits = np.asarray(values, np.float32).copy().view(np.uint32)
    half = np.uint32(1 << (dropped_bits - 1))
    lsb = (bits >> np.uint32(dropped_bits)) & np.uint32(1)
    bits += half - np.uint32(1) + lsb
    bits &= np.uint32((0xFFFFFFFF << dropped_bits) & 0xFFFFFFFF)
    return bits.view(np.float32).astype(np.float64)


def tf32(values):
    return rounded(values, 13)


def bf16(values):
    return rounded(values, 16)


def geometry(batch, channels, height, width, filters, kh, kw, sh, sw, dh, dw, same):
    """Conv2dGeometry::make: 'same' pads the extra row and column at the bottom and right."""
    g = dict(N=batch, C=channels, H=height, W=width, K=filters, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw)
    if same:
        out_h, out_w = -(-height // sh), -(-width // sw)
        total_h = max(0, (out_h - 1) * sh + (kh - 1) * dh + 1 - height)
        total_w = max(0, (out_w - 1) * sw + (kw - 1) * dw + 1 - width)
        g.update(pt=total_h // 2, pb=total_h - total_h // 2, pl=total_w // 2, pr=total_w - total_w // 2)
    else:
        g.update(pt=0, pb=0, pl=0, pr=0)
    g["oh"] = (height + g["pt"] + g["pb"] - (kh - 1) * dh - 1) // sh + 1
    g["ow"] = (width + g["pl"] + g["pr"] - (kw - 1) * dw - 1) // sw + 1
    return g


def columns(x, g):
    padded = np.pad(x, ((0, 0), (0, 0), (g["pt"], g["pb"]), (g["pl"], g["pr"])))
    out = np.empty((g["N"], g["C"], g["kh"], g["kw"], g["oh"], g["ow"]))
    for i in range(g["kh"]):
        for j in range(g["kw"]):
            top, left = i * g["dh"], j * g["dw"]
            out[:, :, i, j] = padded[:, :, top:top + g["sh"] * (g["oh"] - 1) + 1:g["sh"],
                                     left:left + g["sw"] * (g["ow"] - 1) + 1:g["sw"]]
    return out


def forward(x, w, g):
    return np.einsum("nckluv,dckl->nduv", columns(x, g), w)


def weight_gradient(x, dy, g):
    return np.einsum("nckluv,nduv->dckl", columns(x, g), dy)


def input_gradient(w, dy, g):
    padded = np.zeros((g["N"], g["C"], g["H"] + g["pt"] + g["pb"], g["W"] + g["pl"] + g["pr"]))
    per_tap = np.einsum("nduv,dckl->nckluv", dy, w)
    for i in range(g["kh"]):
        for j in range(g["kw"]):
            top, left = i * g["dh"], j * g["dw"]
            padded[:, :, top:top + g["sh"] * (g["oh"] - 1) + 1:g["sh"],
                   left:left + g["sw"] * (g["ow"] - 1) + 1:g["sw"]] += per_tap[:, :, i, j]
    return padded[:, :, g["pt"]:g["pt"] + g["H"], g["pl"]:g["pl"] + g["W"]]


def tensor_error(candidate, reference):
    return np.max(np.abs(candidate - reference)) / max(1.0, np.max(np.abs(reference)))


# op_parity.cpp's conv2d_cases (batch, channels, h, w, filters, kh, kw, sh, sw, dh, dw, same)
CASES = [(2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, True), (1, 1, 96, 31, 8, 3, 3, 1, 1, 1, 1, True),
         (3, 5, 9, 11, 6, 3, 5, 2, 1, 1, 1, False), (2, 4, 13, 13, 3, 3, 3, 1, 1, 2, 2, True),
         (2, 16, 17, 9, 32, 1, 1, 1, 1, 1, 1, False), (2, 2, 10, 9, 3, 4, 4, 1, 1, 1, 1, True),
         (1, 3, 11, 8, 2, 2, 4, 2, 3, 1, 1, True), (2, 3, 8, 8, 4, 2, 2, 1, 1, 1, 1, True),
         (2, 3, 8, 8, 4, 3, 3, 2, 2, 1, 1, True), (2, 1, 12, 10, 4, 3, 3, 1, 1, 1, 1, True)]


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rng = np.random.default_rng(1)
    worst = {"tf32": 0.0, "bf16": 0.0}
    for case in CASES:
        g = geometry(*case)

        def uniform(shape, scale=1.0):
            return (rng.uniform(-1, 1, shape) * scale).astype(np.float32).astype(np.float64)

        for _ in range(trials):
            x, dy = uniform((g["N"], g["C"], g["H"], g["W"])), uniform((g["N"], g["K"], g["oh"], g["ow"]))
            w, dw0 = uniform((g["K"], g["C"], g["kh"], g["kw"]), 0.3), uniform((g["K"], g["C"], g["kh"], g["kw"]))
            exact = (forward(x, w, g), input_gradient(w, dy, g), dw0 + weight_gradient(x, dy, g))
            for name, rounding in (("tf32", tf32), ("bf16", bf16)):
                outputs = [forward(rounding(x), rounding(w), g), input_gradient(rounding(w), rounding(dy), g),
                           weight_gradient(rounding(x), rounding(dy), g)]
                if name == "bf16":
                    outputs = [bf16(o) for o in outputs]
                outputs[2] = dw0 + outputs[2]
                error = max(tensor_error(c, e) for c, e in zip(outputs, exact))
                worst[name] = max(worst[name], error)
    print(f"worst error relative to the tensor's largest value over {trials} trials of {len(CASES)} cases: "
          f"tf32 {worst['tf32']:.2e}, bf16 {worst['bf16']:.2e}")


if __name__ == "__main__":
    main()
