"""The `mirnet-hf` command line: `convert` (official checkpoints) and `restore` (images)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .configuration_mirnet import TASKS


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


def _restore(args: argparse.Namespace) -> int:
    import torch

    from .image_processing_mirnet import MIRNetImageProcessor
    from .modeling_mirnet import MIRNetForImageRestoration

    try:
        model = MIRNetForImageRestoration.from_pretrained(args.model).eval()
        processor = MIRNetImageProcessor.from_pretrained(args.model)
    except (OSError, ValueError) as error:
        print(f"mirnet-hf restore: error: cannot load model {args.model!r}: {error}", file=sys.stderr)
        return 2
    try:
        inputs = processor(images=args.input, return_tensors="pt")
        with torch.inference_mode():
            reconstruction = model(**inputs).reconstruction
        restored = processor.post_process(reconstruction, original_images=args.input)[0]
        restored.save(args.output)
    except (OSError, ValueError, TypeError) as error:
        print(f"mirnet-hf restore: error: {args.input}: {error}", file=sys.stderr)
        return 1
    print(f"{args.input} -> {args.output}")
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

    restore = commands.add_parser("restore", help="restore one image with a model folder or Hub id")
    restore.add_argument("--model", required=True, help="a from_pretrained folder or Hub id")
    restore.add_argument("input", help="image file")
    restore.add_argument("--output", required=True, help="where to write the restored image")
    restore.set_defaults(handler=_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
