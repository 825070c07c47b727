"""Evaluates the shipped default checkpoints against classical methods, one table per task.

    .venv/bin/python benchmarks/evaluate_defaults.py                 # all tasks, full sets, Markdown tables
    .venv/bin/python benchmarks/evaluate_defaults.py --task denoising --max-images 8   # a quick subsample
    .venv/bin/python benchmarks/evaluate_defaults.py --task denoising --model outputs/candidate  # another model
    .venv/bin/python benchmarks/evaluate_defaults.py --json outputs/evaluation.json
    .venv/bin/python benchmarks/evaluate_defaults.py --task denoising --unclipped  # and the papers' protocol

Every method in a table sees the same fixed-seed degraded images (`mirnet_hf.evaluation`), and every row has
its seconds per megapixel on this machine (MIRNet with its default inference settings). Classical methods:
CBM3D (`bm3d` package) for denoising, with the true sigma for synthetic noise and sigma estimated by
scikit-image for real noise (PolyU); bicubic for super-resolution; gamma correction, histogram equalisation and
CLAHE (scikit-image) for low light. Every set is used whole unless `--max-images` takes the first N.

CBM3D is slow (about 46 s per megapixel on 2 cores: an hour for the full denoising sets), and its results never
change for the same inputs, so they are cached in `benchmarks/baselines/cbm3d.json`, keyed by a hash of the
degraded inputs, with the command that computed them; `--recompute-baselines` runs it again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mirnet_hf.degradations import upsample_bicubic
from mirnet_hf.evaluation import EvaluationPair, degrade_for_evaluation, image_metrics, noise_estimate
from mirnet_hf.inference import MIRNetRestorer
from mirnet_hf.tasks import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
CHECKPOINTS = {name: ROOT / task.default_checkpoint for name, task in REGISTRY.items() if task.default_checkpoint}
PUBLISHED = {
    # Y-PSNR, bicubic degradation (datasets README and the SRCNN paper)
    ("Set5", 2): {"bicubic": 33.66, "SRCNN": 36.66},
    ("Set5", 3): {"bicubic": 30.39, "SRCNN": 32.75},
    ("Set5", 4): {"bicubic": 28.42, "SRCNN": 30.48, "EDSR": 32.46},
    ("Set14", 2): {"bicubic": 30.24, "SRCNN": 32.42},
    ("Set14", 3): {"bicubic": 27.55, "SRCNN": 29.28},
    ("Set14", 4): {"bicubic": 26.00, "SRCNN": 27.50, "EDSR": 28.80},
}
PUBLISHED_CBSD68 = {15: (33.52, 33.90, 34.30), 25: (30.71, 31.24, 31.69), 50: (27.38, 27.95, 28.51)}
LOW_LIGHT_EXPOSURES = (0.05, 0.1, 0.2)
BASELINE_CACHE = ROOT / "benchmarks" / "baselines" / "cbm3d.json"


@dataclass
class Row:
    method: str
    psnr: float
    ssim: float
    seconds_per_mp: float
    images: int


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def run_method(
    method: Callable[[EvaluationPair], np.ndarray], pairs: list[EvaluationPair], y_channel: bool, name: str
) -> Row:
    psnrs, ssims, seconds, megapixels = [], [], 0.0, 0.0
    for pair in pairs:
        started = time.perf_counter()
        output = method(pair)
        seconds += time.perf_counter() - started
        output = output[: pair.target.shape[0], : pair.target.shape[1]]
        psnr, ssim = image_metrics(
            output, pair.target, y_channel=y_channel, crop_border=pair.scale if y_channel else 0
        )
        psnrs.append(psnr)
        ssims.append(ssim)
        megapixels += pair.target.shape[0] * pair.target.shape[1] / 1e6
    return Row(name, float(np.mean(psnrs)), float(np.mean(ssims)), seconds / megapixels, len(pairs))


def inputs_fingerprint(pairs: list[EvaluationPair]) -> str:
    """A hash of the degraded inputs (and their targets): the same hash means the same evaluation."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(np.ascontiguousarray(pair.input, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(pair.target, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


class BaselineCache:
    """Results of slow methods that never change for the same inputs (CBM3D), kept in a JSON file."""

    def __init__(self, path: Path, recompute: bool = False):
        self.path, self.recompute = path, recompute
        self.entries = json.loads(path.read_text()) if path.is_file() else {}

    def row(self, label: str, method: Callable, pairs: list[EvaluationPair], name: str) -> Row:
        """`run_method(method, pairs, False, name)`, from the cache when these inputs were evaluated before."""
        key = f"{label} | {name} | {len(pairs)} images | {inputs_fingerprint(pairs)}"
        if key in self.entries and not self.recompute:
            return Row(**self.entries[key]["row"])
        row = run_method(method, pairs, False, name)
        command = "python benchmarks/evaluate_defaults.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        self.entries[key] = {"row": row.__dict__, "command": command.strip(), "date": time.strftime("%Y-%m-%d")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        return row


def identity(pair: EvaluationPair) -> np.ndarray:
    return pair.baseline


def mirnet_method(restorer: MIRNetRestorer, task: str):
    def restore(pair: EvaluationPair) -> np.ndarray:
        return restorer(pair.input, upscale=pair.scale if task == "super-resolution" else None)

    return restore


def cbm3d(sigma: float | None):
    import bm3d

    def run(pair: EvaluationPair) -> np.ndarray:
        level = sigma
        if level is None:  # real noise: estimate it, as a user of CBM3D would have to
            level = noise_estimate(pair.input)
        return np.clip(bm3d.bm3d_rgb(pair.input, level / 255), 0, 1)

    return run


def gamma_correction(pair: EvaluationPair) -> np.ndarray:
    """Gamma chosen per image to bring the mean level to 0.45 (a fixed gamma cannot fit every exposure)."""
    mean = float(np.clip(pair.input.mean(), 1e-3, 0.99))
    return np.clip(pair.input, 0, 1) ** (np.log(0.45) / np.log(mean))


def _on_value_channel(function):
    def run(pair: EvaluationPair) -> np.ndarray:
        from skimage.color import hsv2rgb, rgb2hsv

        hsv = rgb2hsv(np.clip(pair.input, 0, 1))
        hsv[..., 2] = function(hsv[..., 2])
        return hsv2rgb(hsv)

    return run


def histogram_equalisation(pair: EvaluationPair) -> np.ndarray:
    from skimage.exposure import equalize_hist

    return _on_value_channel(equalize_hist)(pair)


def clahe(pair: EvaluationPair) -> np.ndarray:
    from skimage.exposure import equalize_adapthist

    return _on_value_channel(lambda v: equalize_adapthist(v, clip_limit=0.01))(pair)


def clean_pairs(
    folder: str, task: str, level: float, max_images: int | None, clipped: bool = True
) -> list[EvaluationPair]:
    files = sorted((DATASETS / folder).glob("*.png"))[:max_images]
    return [
        degrade_for_evaluation(load_rgb(path), task, level, seed, path.name, clipped=clipped)
        for seed, path in enumerate(files)
    ]


def set_pairs(folder: str, scale: int) -> list[EvaluationPair]:
    pairs = []
    for low_path in sorted((DATASETS / folder / f"image_SRF_{scale}").glob("*_LR.png")):
        low, high = load_rgb(low_path), load_rgb(Path(str(low_path).replace("_LR", "_HR")))
        upsampled = upsample_bicubic(torch.from_numpy(low).permute(2, 0, 1), scale).permute(1, 2, 0).numpy()
        pairs.append(EvaluationPair(low_path.name, low, high, upsampled, scale=scale))
    return pairs


def polyu_pairs(max_images: int | None) -> list[EvaluationPair]:
    pairs = []
    for noisy_path in sorted((DATASETS / "PolyU").glob("*_real.JPG"))[:max_images]:
        noisy = load_rgb(noisy_path)
        clean = load_rgb(Path(str(noisy_path).replace("_real", "_mean")))
        pairs.append(EvaluationPair(noisy_path.name, noisy, clean, noisy))
    return pairs


def table(title: str, rows: list[tuple[str, Row]], note: str = "") -> str:
    lines = [
        f"### {title}",
        "",
        "| data | method | images | PSNR (dB) | SSIM | s/MP |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for data, row in rows:
        lines.append(
            f"| {data} | {row.method} | {row.images} | {row.psnr:.2f} | {row.ssim:.4f} | {row.seconds_per_mp:.2f} |"
        )
    return "\n".join(lines + ([f"\n{note}"] if note else []))


def our_methods(restorer_for: Callable[..., MIRNetRestorer], task: str, self_ensemble: bool, *scale: int):
    """(name, method) of our model, and with `self_ensemble` also of its self-ensemble (8x the compute)."""
    methods = [("MIRNet (ours)", mirnet_method(restorer_for(task, *scale), task))]
    if self_ensemble:
        restorer = restorer_for(task, *scale, self_ensemble=True)
        methods.append(("MIRNet, self-ensemble x8 (ours)", mirnet_method(restorer, task)))
    return methods


def evaluate_denoising(
    ours: list[tuple[str, Callable]],
    max_images: int | None,
    baselines: BaselineCache | None,
    unclipped: bool = False,
) -> list[tuple[str, Row]]:
    """`ours`: `our_methods`; `baselines` None skips CBM3D. `unclipped` adds the Gaussian sets as papers publish
    them (the same noise, not clipped or rounded to 8 bits; no CBM3D rows: its cache holds the 8-bit inputs)."""
    rows = []
    sets = [(f"{folder} sigma {sigma}{'' if clipped else ' unclipped'}", sigma, clipped,
             clean_pairs(folder, "denoising", sigma, max_images, clipped))
            for clipped in ((True, False) if unclipped else (True,))
            for folder in ("CBSD68", "Kodak24") for sigma in (15, 25, 50)]  # fmt: skip
    sets.append(("PolyU real noise", None, True, polyu_pairs(max_images)))
    for label, sigma, clipped, pairs in sets:
        rows.append((label, run_method(identity, pairs, False, "noisy input")))
        if baselines is not None and clipped:
            name = "CBM3D (true sigma)" if sigma is not None else "CBM3D (estimated sigma)"
            rows.append((label, baselines.row(label, cbm3d(sigma), pairs, name)))
        for name, method in ours:
            rows.append((label, run_method(method, pairs, False, name)))
        print(f"  {label} done", file=sys.stderr)
    return rows


def evaluate_super_resolution(
    ours_for: Callable[[int], list[tuple[str, Callable]]], max_images: int | None, scales: list[int]
) -> list[tuple[str, Row]]:
    """Every set at every scale, each scale with `ours_for(scale)` (the shipped specialist where one is)."""
    rows = []
    for scale in scales:
        ours = ours_for(scale)
        for folder in ("Set5", "Set14", "CBSD68", "Kodak24"):
            if folder.startswith("Set"):
                pairs = set_pairs(folder, scale)
            else:
                pairs = clean_pairs(folder, "super-resolution", scale, max_images)
            label = f"{folder} x{scale}"
            rows.append((label, run_method(identity, pairs, True, "bicubic")))
            for name, method in ours:
                rows.append((label, run_method(method, pairs, True, name)))
    return rows


def evaluate_low_light(ours: list[tuple[str, Callable]], max_images: int | None) -> list[tuple[str, Row]]:
    rows = []
    methods = [
        ("dark input", identity),
        ("gamma correction", gamma_correction),
        ("histogram equalisation", histogram_equalisation),
        ("CLAHE", clahe),
        *ours,
    ]
    for folder in ("CBSD68", "Kodak24"):
        for exposure in LOW_LIGHT_EXPOSURES:
            pairs = clean_pairs(folder, "low-light-enhancement", exposure, max_images)
            for name, method in methods:
                rows.append((f"{folder} exposure {exposure:g}", run_method(method, pairs, False, name)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["all", *CHECKPOINTS], default="all")
    parser.add_argument("--max-images", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--model", type=Path, help="evaluate this folder instead of the shipped one (one --task)")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4], help="super-resolution scales")
    parser.add_argument("--no-cbm3d", action="store_true", help="skip CBM3D (for a quick look)")
    parser.add_argument("--recompute-baselines", action="store_true", help="run CBM3D again instead of its cache")
    parser.add_argument(
        "--unclipped",
        action="store_true",
        help="denoising: also the Gaussian sets as papers publish them (noise neither clipped nor rounded to 8 bits)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument(
        "--self-ensemble", action="store_true", help="also our model's self-ensemble (8 symmetries: 8x the time)"
    )
    args = parser.parse_args(argv)
    if args.model is not None and args.task == "all":
        parser.error("--model needs --task (which task the model restores).")
    results: dict[str, list] = {}
    tasks = list(CHECKPOINTS) if args.task == "all" else [args.task]
    baselines = None if args.no_cbm3d else BaselineCache(BASELINE_CACHE, args.recompute_baselines)
    restorers: dict[tuple[Path, bool], MIRNetRestorer] = {}

    def restorer_for(task: str, scale: int | None = None, self_ensemble: bool = False) -> MIRNetRestorer:
        model = args.model or ROOT / REGISTRY[task].checkpoint_for(scale)
        if (model, self_ensemble) not in restorers:
            print(f"evaluating {task} ({model}{', self-ensemble' if self_ensemble else ''}) ...", file=sys.stderr)
            # The default inference settings, in float32 (exact, and the same on every CPU: "auto" is bfloat16 on
            # CPUs that have it natively, within 0.01-0.06 dB).
            restorers[model, self_ensemble] = MIRNetRestorer(
                model, device="cpu", precision="float32", self_ensemble=self_ensemble
            )
        return restorers[model, self_ensemble]

    def ours(task: str, *scale: int) -> list[tuple[str, Callable]]:
        return our_methods(restorer_for, task, args.self_ensemble, *scale)

    for task in tasks:
        if task == "denoising":
            rows = evaluate_denoising(ours(task), args.max_images, baselines, args.unclipped)
            published = ", ".join(
                f"sigma {s}: CBM3D {a} / DnCNN {b} / DRUNet {c}" for s, (a, b, c) in PUBLISHED_CBSD68.items()
            )
            note = f"Published CBSD68 figures (all 68 images): {published} dB."
            print(table("Denoising (RGB PSNR/SSIM; PolyU: noisy shot against the mean of many shots)", rows, note))
        elif task == "super-resolution":
            rows = evaluate_super_resolution(partial(ours, task), args.max_images, args.scales)
            published = "; ".join(
                f"{name} x{scale}: " + ", ".join(f"{k} {v}" for k, v in values.items())
                for (name, scale), values in PUBLISHED.items()
            )
            note = f"Published (Y-PSNR, MATLAB bicubic): {published} dB."
            print(
                table(
                    "Super-resolution (Y-channel PSNR/SSIM, border cropped; the shipped model of each scale)",
                    rows,
                    note,
                )
            )
        else:
            rows = evaluate_low_light(ours(task), args.max_images)
            note = "Protocol: exposure x image^2.0, 1000 photons shot noise, read noise 1/255, 8-bit (fixed seeds)."
            print(table("Low-light enhancement (RGB PSNR/SSIM)", rows, note))
        print()
        results[task] = [{"data": data, **row.__dict__} for data, row in rows]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
