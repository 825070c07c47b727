"""Draws a training run's validation curve (PSNR against steps) from its logs, for model cards and notes.

    .venv/bin/python scripts/plot_validation_curve.py outputs/train-denoising --title "CBSD68 (sigma 25)" \
        --output docs/curves/denoising.svg

Reads RUN/logs/history.jsonl, writes an SVG and prints the curve as a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirnet_hf.model_card import read_validation_history, validation_curve_svg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training run's output folder")
    parser.add_argument("--title", default="validation set", help="what the validation measured")
    parser.add_argument("--output", type=Path, help="SVG file to write (default: RUN/validation_curve.svg)")
    args = parser.parse_args()
    history = read_validation_history(args.run / "logs" / "history.jsonl")
    output = args.output or args.run / "validation_curve.svg"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(validation_curve_svg(history, args.title), encoding="utf-8")
    print("| step | PSNR (dB) | input PSNR (dB) |\n| --- | --- | --- |")
    for record in history:
        print(f"| {record['step']} | {record['validation/psnr']:.2f} | {record.get('validation/input_psnr', 0):.2f} |")
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
