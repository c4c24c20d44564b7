"""The book checker itself must catch what it claims to catch."""

import numpy as np
from PIL import Image

from tools.check_book import check_html, is_blank, toc_pages


def test_toc_pages(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/running\n  - file: notebooks/01_x\n")
    assert toc_pages(toc) == ["book/intro", "book/running", "notebooks/01_x"]


def test_blank_and_error_detection(tmp_path):
    Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(tmp_path / "blank.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    good = tmp_path / "good.html"
    good.write_text('<div><img alt="" src="ok.png" /></div>')
    bad = tmp_path / "bad.html"
    bad.write_text('<img src="blank.png"><div class="output traceback highlight-ipythontb">x</div><img src="gone.png">')
    assert check_html(good) == []
    found = " | ".join(check_html(bad))
    assert "blank.png is blank" in found and "error output" in found and "gone.png is missing" in found
    assert is_blank(np.zeros((5, 5))) and not is_blank(np.eye(5) * 255)
