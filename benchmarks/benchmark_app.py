"""Time per task for a 1-megapixel photo through the running app's API (what a Space user waits for).

    .venv/bin/python benchmarks/benchmark_app.py

Starts the app (default settings, shipped checkpoints) on 127.0.0.1, then calls each task through
`gradio_client` with a 1000x1000 photo (a mosaic of four Kodak images; for super-resolution a 500x500 input
at x2 and a 250x250 input at x4, both 1 MP of output). Prints wall time per request (upload, queue, restore,
PNG encoding, download) and the restoration time the app reports, best of `--repeats`. `--precisions auto float32`
times each task in both of the app's precision settings, side by side ("auto" is bfloat16 on a CPU with native
bfloat16, float32 elsewhere).
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KODAK = ROOT.parent / "shared" / "datasets" / "Kodak24"


def mosaic(path: Path) -> None:
    canvas = Image.new("RGB", (1000, 1000))
    for index, name in enumerate(("kodim01", "kodim05", "kodim14", "kodim23")):
        canvas.paste(Image.open(KODAK / f"{name}.png").convert("RGB"), ((index % 2) * 500, (index // 2) * 500))
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["auto"], choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.launch(app.demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    folder = Path(tempfile.mkdtemp())
    photo = folder / "photo-1mp.png"
    mosaic(photo)
    Image.open(photo).resize((500, 500), Image.Resampling.BICUBIC).save(folder / "photo-500.png")
    Image.open(photo).resize((250, 250), Image.Resampling.BICUBIC).save(folder / "photo-250.png")
    cases = [
        ("denoising", "/denoise", photo, 2),
        ("super-resolution x2", "/super_resolve", folder / "photo-500.png", 2),
        ("super-resolution x4", "/super_resolve", folder / "photo-250.png", 4),
        ("low-light enhancement", "/enhance_low_light", photo, 2),
    ]
    client = Client(app.demo.local_url, verbose=False)
    print("| task | input | output | precision | request s (best) | restoration s (app) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, api_name, path, scale in cases:
        for precision in args.precisions:
            best, reported, size, ran = float("inf"), float("nan"), None, ""
            for _ in range(args.repeats + 1):  # the first call loads the model (and picks its backend)
                started = time.perf_counter()
                _, download, info = client.predict(
                    handle_file(str(path)), scale, 256, precision, None, api_name=api_name
                )
                elapsed = time.perf_counter() - started
                seconds = float(re.search(r"in \*\*([0-9.]+) s\*\*", info).group(1))
                if elapsed < best:
                    best, reported, size = elapsed, seconds, Image.open(download).size
                    ran = re.search(r", (\w+), cpu, (\w+);", info)  # the precision and backend that ran
            width, height = Image.open(path).size
            mode = f"{precision} ({ran.group(1)}, {ran.group(2)})" if ran else precision
            print(
                f"| {name} | {width}x{height} | {size[0]}x{size[1]} | {mode} | {best:.2f} | {reported:.2f} |",
                flush=True,
            )
    app.demo.close()


if __name__ == "__main__":
    main()
