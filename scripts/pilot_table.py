"""Validation PSNR of pilot runs against their training time, side by side: which shape learns more per hour.

Each run is its output folder (its `logs/history.jsonl` holds the validation records) and the console log its
progress bar was written to (the bar's elapsed time at each step):

    .venv/bin/python scripts/pilot_table.py \
        "x4, pixel-shuffle=outputs/train-super-resolution-x4-ps:outputs/sr-x4-ps.log" \
        "x4, today's shape=outputs/pilot-super-resolution-x4-today:outputs/pilot-sr-x4-today.log" --minutes 10

Prints, for every `--minutes` of training, each run's step and its latest validation PSNR reached by then.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

BAR = re.compile(r"training:[^|]*\|[^|]*\| (\d+)/\d+ \[(?:(\d+):)?(\d+):(\d+)<")


def elapsed_by_step(console_log: Path) -> dict[int, float]:
    """Seconds since the start at which the progress bar first showed each step."""
    seconds = {}
    for match in BAR.finditer(console_log.read_text(errors="replace")):
        step = int(match.group(1))
        hours, minutes, secs = int(match.group(2) or 0), int(match.group(3)), int(match.group(4))
        seconds.setdefault(step, hours * 3600 + minutes * 60 + secs)
    return seconds


def validations(output_dir: Path) -> list[tuple[int, float, float]]:
    """(step, PSNR, input PSNR) of each validation record."""
    records = []
    for line in (output_dir / "logs" / "history.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "validation/psnr" in record:
            records.append((record["step"], record["validation/psnr"], record["validation/input_psnr"]))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="NAME=OUTPUT_DIR:CONSOLE_LOG")
    parser.add_argument("--minutes", type=float, default=10, help="table row spacing (default 10)")
    args = parser.parse_args()
    runs = []
    for spec in args.runs:
        name, paths = spec.split("=", 1)
        output_dir, console = paths.split(":", 1)
        runs.append((name, elapsed_by_step(Path(console)), validations(Path(output_dir))))
    longest = min(max(elapsed.values(), default=0) for _, elapsed, _ in runs)
    baseline = runs[0][2][0][2] if runs[0][2] else float("nan")
    print(
        "Validation PSNR (dB) by training time; doing nothing (the input: bicubic, or the noisy image) "
        f"scores {baseline:.2f}"
    )
    print("| minutes | " + " | ".join(f"{name}: step, PSNR" for name, _, _ in runs) + " |")
    print("| --- " * (1 + len(runs)) + "|")
    minute = args.minutes
    while minute * 60 <= longest + 1:
        cells = []
        for _, elapsed, records in runs:
            step = max((s for s, t in elapsed.items() if t <= minute * 60), default=0)
            reached = [(s, p) for s, p, _ in records if s <= step]
            cells.append(f"{step}, {reached[-1][1]:.2f}" if reached else f"{step}, -")
        print(f"| {minute:g} | " + " | ".join(cells) + " |")
        minute += args.minutes


if __name__ == "__main__":
    main()
