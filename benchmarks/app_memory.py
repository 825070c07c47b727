"""Resident memory of the app under the heaviest default requests: one whole-image (tile size 0) photo to each of
the three endpoints at once, through the app's own process, as a user's browser sends them. Prints the idle
level, the peak, and the level some seconds after the requests end. Memory, not time: it can run beside training.

    .venv/bin/python benchmarks/app_memory.py                         # the default settings (MIRNET_BACKEND=auto)
    MIRNET_BACKEND=pytorch .venv/bin/python benchmarks/app_memory.py  # any app setting, from the environment
    .venv/bin/python benchmarks/app_memory.py --rounds 3 --size 1000

`tests/test_app_limits.py` runs `measure` as a test with the defaults.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENDPOINTS = ("/denoise", "/enhance_low_light", "/super_resolve")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (bytes)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) * 1024
        pending += [int(child) for child in children]
    return total


def start_app(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"import app; app.launch(app.demo, server_name='127.0.0.1', server_port={port}, quiet=True)"
    server = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the app did not start within 180 s")


def measure(photo: Path, rounds: int = 1, settle_seconds: float = 15.0, env: dict[str, str] | None = None) -> dict:
    """Starts the app, sends one whole-image request per endpoint at once (`rounds` times), and returns the idle,
    peak and after levels (bytes) with the messages the app answered."""
    from gradio_client import Client, handle_file

    server, port = start_app({**os.environ, **(env or {})})
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(server.pid))
            time.sleep(0.05)

    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        time.sleep(2)
        idle = tree_rss_bytes(server.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def send(api_name: str) -> str:
            own = Client(f"http://127.0.0.1:{port}/", verbose=False)
            return own.predict(handle_file(str(photo)), 2, 0, "auto", None, api_name=api_name)[2]

        messages = []
        for _ in range(rounds):
            with ThreadPoolExecutor(len(ENDPOINTS)) as pool:
                messages += list(pool.map(send, ENDPOINTS))
        time.sleep(settle_seconds)
        stop.set()
        sampler.join()
        after = tree_rss_bytes(server.pid)
        del client
        return {"idle": idle, "peak": peak[0], "after": after, "messages": messages}
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="side of the square photo sent (default 1000)")
    parser.add_argument("--rounds", type=int, default=1, help="times the three requests are sent (default 1)")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait after the requests (default 15)")
    args = parser.parse_args()
    import tempfile

    from PIL import Image

    kodak = sorted((REPO.parent / "shared" / "datasets" / "Kodak24").glob("*.png"))[0]
    photo = Path(tempfile.mkdtemp()) / "photo.png"
    Image.open(kodak).resize((args.size, args.size)).save(photo)
    result = measure(photo, args.rounds, args.settle)
    backend = os.environ.get("MIRNET_BACKEND", "auto")
    print(f"MIRNET_BACKEND={backend}, {args.rounds} round(s) of {len(ENDPOINTS)} whole-image {args.size}x{args.size}")
    for message in result["messages"]:
        print("  " + message.splitlines()[0][:160])
    gib = 1024**3
    print(f"idle {result['idle'] / gib:.2f} GiB | peak {result['peak'] / gib:.2f} GiB | "
          f"{args.settle:g} s after {result['after'] / gib:.2f} GiB")  # fmt: skip


if __name__ == "__main__":
    main()
