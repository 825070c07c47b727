"""The `mirnet-hf` command line: `convert` (official checkpoints), `restore` (images), `evaluate` (PSNR/SSIM
on a data set) and `export` (ONNX, or the authors' checkpoint layout)."""

from __future__ import annotations

import argparse
import glob
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .configuration_mirnet import TASKS
from .hub import DEFAULT_MAX_MODEL_MB
from .image_io import format_for_suffix
from .inference import (
    BACKENDS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_TILE_OVERLAP,
    PRECISIONS,
    check_tile_settings,
)
from .tasks import rescales

logger = logging.getLogger(__name__)
SELF_ENSEMBLE_HELP = "average the restorations of the 8 mirrored/rotated versions: 8x the time, slightly better"


def _convert(args: argparse.Namespace) -> int:
    from .convert_mirnet_checkpoint import CheckpointMismatchError, convert_checkpoint

    try:
        model = convert_checkpoint(args.checkpoint, args.output_dir, task=args.task, upscale=args.scale)
    except (CheckpointMismatchError, FileNotFoundError, ValueError) as error:
        print(f"mirnet-hf convert: error: {error}", file=sys.stderr)
        return 2
    config = model.config
    num_parameters = sum(p.numel() for p in model.parameters())
    print(
        f"Converted MIRNet {config.version} ({config.task}{f' x{config.upscale}' if config.upscale > 1 else ''}; "
        f"{config.num_features} features, {config.num_rrg} RRGs x {config.num_mrb} MRBs, "
        f"{num_parameters:,} parameters) to {args.output_dir}"
    )
    return 0


_GLOB_CHARACTERS = set("*?[")


def collect_inputs(specs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Expands files, folders (their images, not recursive) and glob patterns; returns the files
    found and a message for each spec that matched nothing."""
    found: list[Path] = []
    problems: list[str] = []
    for spec in specs:
        if _GLOB_CHARACTERS & set(spec):
            matches = [Path(m) for m in sorted(glob.glob(spec, recursive=True)) if Path(m).is_file()]
        elif Path(spec).is_dir():
            matches = sorted(p for p in Path(spec).iterdir() if p.is_file() and format_for_suffix(p))
        elif Path(spec).is_file():
            matches = [Path(spec)]
        else:
            problems.append(f"{spec}: no such file or folder")
            continue
        if not matches:
            problems.append(f"{spec}: no images found")
        found.extend(m for m in matches if m not in found)
    return found, problems


def plan_outputs(inputs: list[Path], output: Path) -> list[Path]:
    """Where each restored image goes: `output` itself for one input named like an image file,
    otherwise `output/<input name>` (made unique when two inputs share a name)."""
    if len(inputs) == 1 and format_for_suffix(output) and not output.is_dir():
        return [output]
    targets, taken = [], set()
    for path in inputs:
        target = output / path.name
        counter = 1
        while target in taken:
            target = output / f"{path.stem}-{counter}{path.suffix}"
            counter += 1
        taken.add(target)
        targets.append(target)
    return targets


def _restore(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .image_io import read_image, write_image
    from .inference import MIRNetRestorer

    inputs, problems = collect_inputs(args.inputs)
    for problem in problems:
        print(f"mirnet-hf restore: error: {problem}", file=sys.stderr)
    if not inputs:
        return 1
    try:
        check_tile_settings(args.tile or None, args.tile_overlap, args.tile_batch_size)
        tile_size = "auto" if args.tile is None else args.tile
    except ValueError as error:
        print(f"mirnet-hf restore: error: invalid tile settings: {error}", file=sys.stderr)
        return 2
    if _refuse_hub_model(args, "restore"):
        return 2
    try:
        restorer = MIRNetRestorer(
            args.model,
            device=args.device,
            precision=args.precision,
            tile_size=tile_size,
            tile_overlap=args.tile_overlap,
            tile_batch_size=args.tile_batch_size,
            compile=args.compile,
            max_pixels=args.max_pixels or None,
            backend=args.backend,
            self_ensemble=args.self_ensemble,
            strength=args.strength,
        )
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"mirnet-hf restore: error: cannot load the model {args.model!r}: {error}", file=sys.stderr)
        return 2
    if args.scale is not None and not rescales(restorer.config.task):
        print(
            f"mirnet-hf restore: error: --scale {args.scale} is for super-resolution models; {args.model!r} is a "
            f"{restorer.config.task} model (leave --scale out).",
            file=sys.stderr,
        )
        return 2
    if args.scale is not None and args.scale < 1:
        print(f"mirnet-hf restore: error: --scale {args.scale} is not valid; use 2, 3 or 4.", file=sys.stderr)
        return 2
    failures = len(problems)
    for source, target in zip(inputs, plan_outputs(inputs, Path(args.output))):
        if target.resolve() == source.resolve():
            print(f"mirnet-hf restore: error: {source}: the output would overwrite the input", file=sys.stderr)
            failures += 1
            continue
        try:
            restorer.check_size(source, args.scale)  # from the header: nothing is decoded past the limit
            loaded = read_image(source, max_pixels=restorer.max_pixels)
            if loaded.frames > 1:
                print(f"mirnet-hf restore: note: {source} has {loaded.frames} frames; restoring the first")
            with tqdm(total=1, desc=source.name, unit="tile", leave=False, disable=args.quiet) as bar:

                def progress(done: int, total: int, bar=bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                restored = restorer(loaded.image, progress=progress, upscale=args.scale)
            write_image(target, restored, like=loaded)
        except (OSError, ValueError, TypeError) as error:
            print(f"mirnet-hf restore: error: {source}: {error}", file=sys.stderr)
            failures += 1
            continue
        stats = restorer.stats
        compile_note = f", compilation {stats.compile_seconds:.1f} s" if stats.compile_seconds else ""
        if not args.quiet:
            print(f"{source} -> {target} ({stats.tiles} tile(s), {stats.seconds:.1f} s{compile_note})")
    if failures:
        print(f"mirnet-hf restore: {failures} input(s) failed", file=sys.stderr)
    return 1 if failures else 0


def _evaluate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .inference import MIRNetRestorer

    try:
        import datasets  # noqa: F401
        import skimage  # noqa: F401
    except ImportError as error:
        print(
            f"mirnet-hf evaluate: error: it needs {error.name}; install the extras: pip install 'mirnet-hf[train]'",
            file=sys.stderr,
        )
        return 2
    from .data import load_image_dataset, resolve_columns
    from .evaluation import default_levels, evaluate_dataset, format_table

    if _refuse_hub_model(args, "evaluate"):
        return 2
    try:
        restorer = MIRNetRestorer(
            args.model,
            device=args.device,
            precision=args.precision,
            tile_size="auto" if args.tile is None else args.tile,
            max_pixels=None,
            self_ensemble=args.self_ensemble,
        )
        dataset = load_image_dataset(args.dataset_name, args.split, dataset_config_name=args.dataset_config_name)
        columns = resolve_columns(dataset.column_names, args.input_column, args.target_column, args.data_kind)
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        print(f"mirnet-hf evaluate: error: {error}", file=sys.stderr)
        return 2
    task = args.task or restorer.config.task
    count = min(len(dataset), args.max_images or len(dataset))
    levels = None if columns.paired else args.level
    grain = args.real_grain and not columns.paired
    if grain and task != "denoising":
        print(f"mirnet-hf evaluate: error: --real-grain is a denoising setting, not {task}", file=sys.stderr)
        return 2
    total = count * (1 if columns.paired else len(levels or default_levels(task, restorer.config.upscale)) + grain)
    name = Path(str(args.dataset_name)).name or str(args.dataset_name)
    try:
        with tqdm(total=total, desc="evaluating", unit="image", disable=args.quiet) as bar:
            results = evaluate_dataset(
                restorer,
                dataset,
                columns,
                task=task,
                levels=levels,
                seed=args.seed,
                max_images=args.max_images,
                name=name,
                progress=lambda done: bar.update(1),
                real_grain=grain,
            )
    except (OSError, ValueError) as error:
        print(f"mirnet-hf evaluate: error: {error}", file=sys.stderr)
        return 1
    print(f"{args.model} on {args.dataset_name} ({args.split}), {task}:")
    print(format_table(results, label="data (setting)"))
    return 0


def _refuse_hub_model(args: argparse.Namespace, command: str) -> bool:
    """For a Hub id, checks the repository's config and file sizes before anything is downloaded (prints why and
    returns True when it is refused); local folders are not checked here."""
    from .hub import HubModelRefused, check_hub_model, looks_like_hub_id

    if not looks_like_hub_id(args.model):
        return False
    try:
        check_hub_model(args.model, max_model_mb=args.max_model_mb)
    except HubModelRefused as error:
        print(f"mirnet-hf {command}: error: refused {args.model!r}: {error}", file=sys.stderr)
        return True
    except Exception as error:  # offline, no such repository: loading will say it in full
        logger.debug("could not check %s before loading it: %s", args.model, error)
    return False


def _export(args: argparse.Namespace) -> int:
    from .export import export_model

    if _refuse_hub_model(args, "export"):
        return 2
    try:
        written = export_model(args.model, args.output, args.format)
    except ImportError as error:
        print(f"mirnet-hf export: error: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError) as error:
        print(f"mirnet-hf export: error: cannot export {args.model!r}: {error}", file=sys.stderr)
        return 2
    print(f"Exported {args.model} ({args.format}) to {written}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirnet-hf", description="MIRNet image restoration for transformers.")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert",
        help="convert an official MIRNet / MIRNet-v2 .pth checkpoint to a from_pretrained folder",
        description="Convert the authors' released checkpoint (v1 or v2, any official wrapper) into a folder "
        "that MIRNetForImageRestoration.from_pretrained and pipeline('image-restoration') load.",
    )
    convert.add_argument("checkpoint", help="the official .pth file")
    convert.add_argument("output_dir", help="folder to write (created if missing)")
    convert.add_argument("--task", choices=TASKS, help="what the weights restore (default: from the file name)")
    convert.add_argument("--scale", type=int, help="super-resolution scale (default: the x2/x3/x4 in the file name)")
    convert.set_defaults(handler=_convert)

    restore = commands.add_parser(
        "restore",
        help="restore image files with a model folder or Hub id",
        description="Restore images (files, folders, globs). Each output keeps its input's format, bit depth, "
        "ICC profile and EXIF, and is written atomically; unreadable inputs are reported and skipped.",
    )
    restore.add_argument("--model", required=True, help="a from_pretrained folder or Hub id")
    restore.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    restore.add_argument("--output", required=True, help="output file (one input) or folder")
    restore.add_argument(
        "--tile",
        type=int,
        default=None,
        help="tile size, a multiple of 4; 0 = no tiling (default: the model's task's, 256; 512 for low light)",
    )
    restore.add_argument("--tile-overlap", type=int, default=DEFAULT_TILE_OVERLAP, help="pixels tiles share")
    restore.add_argument("--tile-batch-size", type=int, help="tiles per forward pass (default 1 on CPU, 4 on GPU)")
    restore.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bfloat16 on CUDA and on CPUs that compute it natively, else float32 (exact)",
    )
    restore.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    restore.add_argument("--compile", action="store_true", help="torch.compile the blocks (pays off on many tiles)")
    restore.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger outputs (0 = no limit)"
    )
    restore.add_argument(
        "--backend", choices=BACKENDS, default="pytorch", help="onnxruntime: float32 ONNX graph (the onnx extra)"
    )
    restore.add_argument("--quiet", action="store_true", help="no progress bars or per-file lines")
    restore.add_argument("--scale", type=int, help="super-resolution scale (default: the model's)")
    restore.add_argument("--self-ensemble", action="store_true", help=SELF_ENSEMBLE_HELP)
    restore.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="denoising strength, 0 to 2: 1 the model's own (blind); below 1 gentler (keeps some grain), above 1 "
        "stronger, towards the grain pass at 2 (the model over the image's half-resolution sub-images, then over the "
        "whole: removes real grain one pass keeps; about twice the time)",
    )
    restore.set_defaults(handler=_restore)

    evaluate = commands.add_parser(
        "evaluate",
        help="PSNR and SSIM of a model on a data set, beside the input's own",
        description="Evaluate a model on paired data, or on clean images degraded with fixed seeds (sigma for "
        "denoising, scale for super-resolution, exposure for low light). Super-resolution is measured on the Y "
        "channel with the border cropped.",
    )
    evaluate.add_argument("--model", required=True, help="a from_pretrained folder or Hub id")
    evaluate.add_argument("--dataset_name", required=True, help="Hub id, local image folder or save_to_disk folder")
    evaluate.add_argument("--dataset_config_name", default=None)
    evaluate.add_argument("--split", default="train")
    evaluate.add_argument("--task", choices=TASKS, help="default: the model's")
    evaluate.add_argument("--level", type=float, nargs="+", help="degradation levels for clean data")
    evaluate.add_argument(
        "--real-grain",
        action="store_true",
        help="denoising: one more row on real-like grain (the training data's synthetic camera grain, fixed seeds)",
    )
    evaluate.add_argument("--data_kind", choices=("auto", "paired", "clean"), default="auto")
    evaluate.add_argument("--input_column", default=None)
    evaluate.add_argument("--target_column", default=None)
    evaluate.add_argument("--max_images", type=int, default=None)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--tile", type=int, default=None, help="tile size; 0 = no tiling (default: the task's)")
    evaluate.add_argument("--precision", choices=PRECISIONS, default="auto")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--self-ensemble", action="store_true", help=SELF_ENSEMBLE_HELP)
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(handler=_evaluate)

    export = commands.add_parser(
        "export",
        help="export a model to ONNX, or to the authors' checkpoint layout",
        description="onnx: one float32 graph for any batch, height and width (OUTPUT is a .onnx file, or a model "
        "folder, which gets onnx/model.onnx). official: the authors' state dict ({'state_dict'} for v1, "
        "{'params'} for v2; OUTPUT ends in .pth, .pt or .safetensors), which the authors' code, spandrel, "
        "chaiNNer and ComfyUI read.",
    )
    export.add_argument("model", help="a from_pretrained folder or Hub id")
    export.add_argument("output", help="the file (or, for onnx, model folder) to write")
    export.add_argument("--format", choices=("onnx", "official"), required=True)
    export.set_defaults(handler=_export)
    for command in (restore, evaluate, export):
        command.add_argument(
            "--max-model-mb",
            type=float,
            default=DEFAULT_MAX_MODEL_MB,
            help="refuse a Hub model whose download exceeds this, checked before downloading (default "
            f"{DEFAULT_MAX_MODEL_MB}: the largest MIRNet with its ONNX graph is 254 MB)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        # Writes are atomic, so an interrupted run leaves no partial file behind.
        print(f"\nmirnet-hf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
