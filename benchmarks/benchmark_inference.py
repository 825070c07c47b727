"""Inference speed, accuracy and memory of MIRNet on this machine, printed as one table.

For each network (the paper-size v1 and v2, random weights: speed does not depend on the values)
and each size, the plain eager float32 forward pass over the whole image (the straightforward
transcription of the paper) is compared with each mode of `MIRNetRestorer`: seconds per image,
megapixels per second, speed-up, the output difference against the plain float32 result (max abs,
PSNR), and the first-call warm-up that compilation adds. A last row per network restores a
12-megapixel photo tiled in the fastest mode, in a child process, and reports its peak resident
memory while restoring (and, apart, while compiling for the tile shape).

    python benchmarks/benchmark_inference.py                # paper-size v1 and v2 (about 25 minutes)
    python benchmarks/benchmark_inference.py --small        # a small model, for a quick check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A fresh compilation cache, so the warm-up column shows what a new machine pays (--warm-cache keeps it).
if "--warm-cache" not in sys.argv and "--child-large" not in sys.argv:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="mirnet-inductor-")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetRestorer
from mirnet_hf.inference import plan_tiles

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "datasets" / "Kodak24" / "kodim23.png"
MODES = [
    ("float32, channels-last", {"precision": "float32"}),
    ("float32, channels-last, compiled", {"precision": "float32", "compile": True}),
    ("bfloat16 autocast, channels-last", {"precision": "bfloat16"}),
    ("bfloat16 autocast, channels-last, compiled", {"precision": "bfloat16", "compile": True}),
]
FASTEST = MODES[-1]


def build_model(version: str, small: bool) -> MIRNetForImageRestoration:
    torch.manual_seed(0)
    if small:
        config = MIRNetConfig(
            version=version, num_features=16, num_rrg=1, num_mrb=1, rrg_groups=None if version == "v1" else [1]
        )
    else:
        config = MIRNetConfig(version=version)
    return MIRNetForImageRestoration(config).eval()


def photo(height: int, width: int) -> np.ndarray:
    """A natural photo at the asked size (Kodak, resized), float32 HWC in [0, 1]."""
    if PHOTO.exists():
        image = Image.open(PHOTO).convert("RGB").resize((width, height), Image.BICUBIC)
        return np.asarray(image, dtype=np.float32) / 255
    return np.random.default_rng(0).random((height, width, 3), dtype=np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def timed(call, runs: int) -> tuple[float, float, np.ndarray]:
    """First-call seconds, mean seconds of `runs` further calls (the first call's if 0), output."""
    start = time.perf_counter()
    output = call()
    first = time.perf_counter() - start
    if runs == 0:
        return first, first, output
    start = time.perf_counter()
    for _ in range(runs):
        output = call()
    return first, (time.perf_counter() - start) / runs, output


def measure(version: str, small: bool, size: int, runs: int) -> list[dict]:
    model = build_model(version, small)
    image = photo(size, size)
    megapixels = size * size / 1e6
    plain = MIRNetRestorer(model, device="cpu", precision="float32", tile_size=None, channels_last=False)
    _, seconds, reference = timed(lambda: plain(image), runs)
    rows = [
        {
            "network": version,
            "size": f"{size}x{size}",
            "mode": "plain eager float32, whole image",
            "seconds": seconds,
            "mp_per_s": megapixels / seconds,
            "speedup": 1.0,
            "max_abs": 0.0,
            "psnr": float("inf"),
            "warmup": 0.0,
            "tiles": 1,
        }
    ]
    baseline = seconds
    for label, settings in MODES:
        restorer = MIRNetRestorer(build_model(version, small), device="cpu", **settings)
        extra_runs = runs if settings.get("compile") or runs else 0
        first, seconds, output = timed(
            lambda r=restorer: r(image), max(extra_runs, 1 if settings.get("compile") else 0)
        )
        rows.append(
            {
                "network": version,
                "size": f"{size}x{size}",
                "mode": label,
                "seconds": seconds,
                "mp_per_s": megapixels / seconds,
                "speedup": baseline / seconds,
                "max_abs": float(np.abs(output - reference).max()),
                "psnr": psnr(output, reference),
                "warmup": max(first - seconds, 0.0) if settings.get("compile") else 0.0,
                "tiles": restorer.stats.tiles,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_large(version: str, small: bool, megapixels: float) -> None:
    """Runs in a child process: restores a photo of `megapixels` in the fastest mode, prints JSON.

    The compilation for the tile shape runs first and its memory peak is reported apart: it is paid
    once per process and shape, and the restoration's own peak is what grows with the photo.
    """
    width = int(round(math.sqrt(megapixels * 1e6 * 4 / 3) / 4) * 4)
    height = int(round(width * 3 / 4 / 4) * 4)
    image = photo(height, width)
    restorer = MIRNetRestorer(build_model(version, small), device="cpu", **FASTEST[1])
    _, tile_h = plan_tiles(height, restorer.tile_size, restorer.tile_overlap)
    _, tile_w = plan_tiles(width, restorer.tile_size, restorer.tile_overlap)
    restorer(image[:tile_h, :tile_w])  # compile for the tile shape outside the timing
    compile_peak_mb = _peak_rss_mb()
    Path("/proc/self/clear_refs").write_text("5")  # Linux: restart the peak-RSS count from here
    warmup_shapes = set(restorer.stats.compiled_shapes)
    start = time.perf_counter()
    restorer(image)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "network": version,
                "size": f"{width}x{height}",
                "mode": FASTEST[0] + ", tiled",
                "seconds": seconds,
                "mp_per_s": width * height / 1e6 / seconds,
                "tiles": restorer.stats.tiles,
                "compile_shapes": len(restorer.stats.compiled_shapes - warmup_shapes),
                "peak_mb": _peak_rss_mb(),
                "compile_peak_mb": compile_peak_mb,
            }
        )
    )


def _cell(row: dict, key: str, template: str) -> str:
    value = row.get(key)
    return "" if value is None else template.format(value)


def format_table(rows: list[dict]) -> str:
    header = (
        "| network | size | mode | tiles | s/image | MP/s | speed-up | max abs vs fp32 | PSNR vs fp32 | "
        "warm-up s | peak RSS (compiling) |"
    )
    lines = [header, "|" + " --- |" * 11]
    for row in rows:
        psnr_text = "exact" if row.get("psnr") == float("inf") else _cell(row, "psnr", "{:.1f} dB")
        cells = [
            row["network"],
            row["size"],
            row["mode"],
            _cell(row, "tiles", "{}"),
            _cell(row, "seconds", "{:.2f}"),
            _cell(row, "mp_per_s", "{:.3f}"),
            _cell(row, "speedup", "{:.2f}x"),
            _cell(row, "max_abs", "{:.1e}"),
            psnr_text,
            _cell(row, "warmup", "{:.1f}") if row.get("warmup") else "",
            _cell(row, "peak_mb", "{:.0f} MB") + _cell(row, "compile_peak_mb", " ({:.0f} MB)"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default="v1,v2", help="comma-separated: v1, v2")
    parser.add_argument("--sizes", default="256,1024", help="comma-separated square sizes")
    parser.add_argument("--runs", type=int, default=2, help="timed calls per mode at the smallest size (1 above)")
    parser.add_argument("--megapixels", type=float, default=12.0, help="the large tiled photo (0 to skip)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (our machines have 2 cores)")
    parser.add_argument("--small", action="store_true", help="a small model instead of the paper's")
    parser.add_argument("--warm-cache", action="store_true", help="reuse torch.compile's on-disk cache")
    parser.add_argument("--child-large", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_large:
        child_large(args.child_large, args.small, args.megapixels)
        return
    rows = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for version in args.networks.split(","):
        for size in sizes:
            rows += measure(version, args.small, size, args.runs if size == min(sizes) else 0)
        if args.megapixels:
            command = [
                sys.executable,
                __file__,
                "--child-large",
                version,
                "--megapixels",
                str(args.megapixels),
                "--threads",
                str(args.threads),
            ] + (["--small"] if args.small else [])
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, {args.threads} threads, {'small' if args.small else 'paper-size'} models")
    print(format_table(rows))


if __name__ == "__main__":
    main()
