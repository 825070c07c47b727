"""Inference speed, accuracy and memory of MIRNet on this machine, printed as one table.

For each network (the paper-size v1 and v2 with random weights: speed does not depend on the values;
or a model folder such as a shipped default) and each size, the plain eager float32 forward pass over
the whole image (the straightforward transcription of the paper) is compared with each mode of
`MIRNetRestorer`, PyTorch and ONNX Runtime: seconds per image, megapixels per second, speed-up, the
output difference against the plain float32 result (max abs, PSNR), the warm-up the first call adds
(compilation; for ONNX Runtime, opening the session), and the peak resident memory. Every mode runs in
a fresh process, so its memory peak is its own. The ONNX graphs are exported once beforehand (into a
temporary cache; the export time is printed) as `mirnet-hf export` or a model folder's
`onnx/model.onnx` would provide them. A last row per network restores a 12-megapixel photo tiled in
the fastest PyTorch mode, with its peak memory while restoring (and, apart, while compiling).

    python benchmarks/benchmark_inference.py                # paper-size v1 and v2 (about 40 minutes)
    python benchmarks/benchmark_inference.py --networks checkpoints/mirnet-v2-compact-denoising \
        --megapixels 0                                      # a shipped default: the app's modes
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
    ("float32, channels-last (the app's PyTorch mode)", {"precision": "float32"}),
    ("float32, channels-last, compiled", {"precision": "float32", "compile": True}),
    ("bfloat16 autocast, channels-last", {"precision": "bfloat16"}),
    ("bfloat16 autocast, channels-last, compiled", {"precision": "bfloat16", "compile": True}),
    ("ONNX Runtime float32 (the app's mode with onnxruntime)", {"backend": "onnxruntime"}),
    ("ONNX Runtime float32, whole image", {"backend": "onnxruntime", "tile_size": None}),
]
FASTEST = MODES[3]
PLAIN = ("plain eager float32, whole image", {"precision": "float32", "tile_size": None, "channels_last": False})


def build_model(version: str, small: bool) -> MIRNetForImageRestoration:
    """`v1`/`v2`: the paper's network (or a small one) with random weights; anything else: a model folder."""
    torch.manual_seed(0)
    if version not in ("v1", "v2"):
        return MIRNetForImageRestoration.from_pretrained(version).eval()
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


def network_label(version: str) -> str:
    return version if version in ("v1", "v2") else Path(version).name


def child_mode(version: str, small: bool, size: int, mode: int, runs: int, reference: str) -> None:
    """Runs in a child process: one mode (-1: the plain pass, which saves the reference output), prints JSON."""
    label, settings = PLAIN if mode < 0 else MODES[mode]
    image = photo(size, size)
    start = time.perf_counter()
    restorer = MIRNetRestorer(build_model(version, small), device="cpu", **settings)
    setup = time.perf_counter() - start
    # Compiled modes and ONNX Runtime pay on the first call; others are timed from it on when runs is 0.
    pays_first = settings.get("compile") or settings.get("backend") == "onnxruntime"
    first, seconds, output = timed(lambda: restorer(image), max(runs, 1 if pays_first else 0))
    if mode < 0:
        np.save(reference, output)
    expected = np.load(reference)
    row = {
        "network": network_label(version),
        "size": f"{size}x{size}",
        "mode": label,
        "seconds": seconds,
        "mp_per_s": size * size / 1e6 / seconds,
        "max_abs": float(np.abs(output - expected).max()),
        "psnr": psnr(output, expected),
        "warmup": max(first - seconds, 0.0) + (setup if settings.get("backend") == "onnxruntime" else 0.0),
        "tiles": restorer.stats.tiles,
        "peak_mb": _peak_rss_mb(),
    }
    print(json.dumps(row))


def measure(version: str, small: bool, size: int, runs: int, threads: int, modes: list[int]) -> list[dict]:
    reference = str(Path(tempfile.mkdtemp(prefix="mirnet-bench-")) / "reference.npy")
    rows = []
    for mode in [-1, *modes]:
        command = [sys.executable, __file__, "--child-mode", str(mode), "--networks", version, "--sizes", str(size)]
        command += ["--runs", str(runs), "--threads", str(threads), "--reference", reference]
        command += ["--small"] if small else []
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mode {mode} failed:\n{result.stderr[-3000:]}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        rows[-1]["speedup"] = rows[0]["seconds"] / rows[-1]["seconds"]
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def export_graphs(versions: list[str], small: bool) -> None:
    """Exports each network's ONNX graph once into this run's cache, as a model folder would ship it."""
    from mirnet_hf.onnx_backend import find_or_export_graph

    os.environ.setdefault("MIRNET_HF_CACHE", tempfile.mkdtemp(prefix="mirnet-onnx-"))
    for version in versions:
        start = time.perf_counter()
        path = find_or_export_graph(build_model(version, small))
        print(f"ONNX graph of {network_label(version)}: {path.name}, {time.perf_counter() - start:.1f} s", flush=True)


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
                "network": network_label(version),
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
    parser.add_argument(
        "--modes", type=int, nargs="+", default=list(range(len(MODES))), help="rows to run (indexes into MODES)"
    )
    parser.add_argument("--child-large", help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_large:
        child_large(args.child_large, args.small, args.megapixels)
        return
    if args.child_mode is not None:
        child_mode(args.networks, args.small, int(args.sizes), args.child_mode, args.runs, args.reference)
        return
    rows = []
    sizes = [int(s) for s in args.sizes.split(",")]
    versions = args.networks.split(",")
    if any(MODES[mode][1].get("backend") == "onnxruntime" for mode in args.modes):
        export_graphs(versions, args.small)
    for version in versions:
        for size in sizes:
            rows += measure(
                version, args.small, size, args.runs if size == min(sizes) else 0, args.threads, args.modes
            )
        if args.megapixels and version in ("v1", "v2"):
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
    import onnxruntime

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
        f"{'small' if args.small else 'paper-size'} v1/v2"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
