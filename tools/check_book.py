"""Check the built book the way a reader would see it.

For every page listed in ``_toc.yml`` this script

1. reads the built HTML and fails on error outputs (tracebacks, stderr blocks) and on
   figures that are blank (a PNG output whose pixels are all (nearly) one colour);
2. takes a screenshot with headless Chromium, when it is installed, into
   ``_build/screenshots/`` and fails on a blank screenshot.

Usage: ``python tools/check_book.py [_build/html]`` (``make book-check``). Exit code 1 on problems.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ERROR_CLASSES = ("output traceback", "output error", "output stderr")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--hide-scrollbars", "--window-size=1280,2000"]


def toc_pages(toc_path: Path) -> list[str]:
    """Document paths (without suffix) in a Jupyter Book ``_toc.yml``, in order."""
    pages = []
    for line in toc_path.read_text().splitlines():
        m = re.match(r"\s*(?:-\s*)?(?:root|file):\s*(\S+)", line)
        if m:
            pages.append(m.group(1))
    return pages


def is_blank(image: np.ndarray, tol: float = 2.0) -> bool:
    """True when an image (H, W[, C]) is one flat colour up to ``tol`` grey levels."""
    a = image.astype(np.float64)
    return float(a.std(axis=(0, 1)).max() if a.ndim == 3 else a.std()) < tol


def check_html(page: Path) -> list[str]:
    """Problems found in one built page: error outputs and blank figures."""
    problems = []
    html = page.read_text(encoding="utf-8", errors="replace")
    for cls in ERROR_CLASSES:
        if f'class="{cls}' in html:
            problems.append(f"{page.name}: contains an error output ({cls})")
    for src in re.findall(r'<img[^>]+src="([^"]+\.png)"', html):
        img_path = (page.parent / src).resolve()
        if not img_path.exists():
            problems.append(f"{page.name}: figure {src} is missing")
            continue
        with Image.open(img_path) as im:
            if is_blank(np.asarray(im.convert("RGB"))):
                problems.append(f"{page.name}: figure {src} is blank")
    return problems


def screenshot(page: Path, out: Path, chromium: str) -> list[str]:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [chromium, *CHROMIUM_FLAGS, f"--screenshot={out}", page.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not out.exists():
        return [f"{page.name}: chromium failed ({res.returncode}): {res.stderr[-300:]}"]
    with Image.open(out) as im:
        if is_blank(np.asarray(im.convert("RGB"))):
            return [f"{page.name}: screenshot is blank"]
    return []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", nargs="?", default="_build/html", type=Path)
    ap.add_argument("--toc", default="_toc.yml", type=Path)
    ap.add_argument("--no-screenshots", action="store_true")
    args = ap.parse_args(argv)
    chromium = None if args.no_screenshots else (shutil.which("chromium") or shutil.which("chromium-browser"))
    problems = []
    for doc in toc_pages(args.toc):
        page = args.html / f"{doc}.html"
        if not page.exists():
            problems.append(f"{doc}: no built page at {page}")
            continue
        problems += check_html(page)
        if chromium:
            problems += screenshot(page, args.html.parent / "screenshots" / f"{doc.replace('/', '_')}.png", chromium)
    if not chromium and not args.no_screenshots:
        print("chromium not found: skipped screenshots (apt-get install chromium)")
    for p in problems:
        print("PROBLEM:", p)
    print(f"checked {len(toc_pages(args.toc))} pages: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
