#!/usr/bin/env python3
"""The peer of `gpu_predict` on a folder of long songs, for peak memory: the usual PyTorch
inference loop, one song at a time (torchaudio.load, mixed to mono, cut into 2 s windows
stacked as one batch). The model is left out, so its figure is a lower bound.

    /usr/bin/time -v python3 tools/bench/predict_memory_peer.py FOLDER   # "Maximum resident"

docs/PERFORMANCE.md ("Whole-song prediction memory") has the folder and the figures.
"""
import glob
import sys

import torchaudio

WINDOW = 32000  # 2 s at 16 kHz, the demo's window


def main() -> None:
    for path in sorted(glob.glob(sys.argv[1] + "/*.wav")):
        audio, _ = torchaudio.load(path)
        mono = audio.mean(0)
        windows = mono[: mono.numel() // WINDOW * WINDOW].reshape(-1, WINDOW)
        del audio, mono, windows


if __name__ == "__main__":
    main()
