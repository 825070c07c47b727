"""The documentation works: the Python blocks of README.md and docs/usage.md run as written, every relative link
and image of README.md and docs/ resolves, and the README stays a landing page with valid Space front matter."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

RUNNABLE_PAGES = ["README.md", "docs/usage.md"]
LINKED_PAGES = ["README.md", *sorted(path.relative_to(REPO).as_posix() for path in (REPO / "docs").glob("*.md"))]
SKIP = re.compile(r"<!-- docs-test: skip \((?P<why>[^)]+)\) -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def python_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, reason to skip or None) of each ```python block of a page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match and match.group(1) == "python":
            start = index
            index += 1
            body = []
            while not FENCE.match(lines[index]):
                body.append(lines[index])
                index += 1
            skip = SKIP.match(lines[start - 1]) if start else None
            blocks.append((start + 1, "\n".join(body), skip.group("why") if skip else None))
        elif match:  # another language's block: jump over it
            index += 1
            while not FENCE.match(lines[index]):
                index += 1
        index += 1
    return blocks


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_the_python_blocks_run_in_order_as_a_reader_would(page, tmp_path):
    blocks = python_blocks(REPO / page)
    runnable = [(line, code) for line, code, why in blocks if why is None]
    assert runnable, f"{page} has no runnable Python block"
    # One interpreter per page, the blocks in order (a later block may use an earlier one's names), from the
    # repository root as the pages assume; each block announces itself so a failure names its line.
    script = "\n".join(f"print('--- {page}:{line}', flush=True)\n{code}" for line, code in runnable)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "MIRNET_HF_CACHE": str(tmp_path)},
    )  # fmt: skip
    last = [line for line in done.stdout.splitlines() if line.startswith("--- ")][-1:]
    assert done.returncode == 0, f"failed in the block at {last}: {done.stderr[-3000:]}"


def test_skipped_blocks_say_why():
    for page in RUNNABLE_PAGES:
        for line, _, why in python_blocks(REPO / page):
            assert why is None or why.startswith("needs"), f"{page}:{line}: {why}"


@pytest.mark.parametrize("page", LINKED_PAGES)
def test_every_relative_link_and_image_resolves(page):
    text = (REPO / page).read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code is not a link
    targets = [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]
    assert targets, f"{page} links nowhere"
    for target in targets:
        path, _, anchor = target.partition("#")
        resolved = (REPO / page).parent / path if path else REPO / page
        assert resolved.exists(), f"{page}: {target} does not resolve"
        if anchor and resolved.suffix == ".md":
            assert anchor in headings(resolved), f"{page}: #{anchor} is not a heading of {path or page}"


def headings(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    anchors = set()
    for title in re.findall(r"^#+ (.+)$", text, flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-"))
    return anchors


def test_the_readme_is_a_landing_page_with_valid_space_front_matter():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and (REPO / front["app_file"]).is_file()
    # A picture per task, and a way to every docs page.
    for figure in ("docs/denoising.png", "docs/super-resolution.png", "docs/low-light-enhancement.png"):
        assert f"]({figure})" in text
    for page in (REPO / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in text, f"README.md does not link docs/{page.name}"
