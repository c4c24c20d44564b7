import pytest
import torch

from rawdrift.raw.cfa import PATTERNS, cfa_masks, crop_to_rggb, mosaic, site_channels, site_map, split_planes


@pytest.mark.parametrize("pattern", PATTERNS)
def test_masks_partition_and_counts(pattern):
    m = cfa_masks(4, 6, pattern)
    assert torch.equal(m.sum(0), torch.ones(4, 6))
    assert m[0].sum() == 6 and m[1].sum() == 12 and m[2].sum() == 6
    # the top-left pixel has the pattern's first colour
    assert m[:, 0, 0].argmax() == "RGB".index(pattern[0])


@pytest.mark.parametrize("pattern", PATTERNS)
def test_mosaic_split_roundtrip(pattern):
    rgb = torch.rand(2, 3, 8, 10)
    raw = mosaic(rgb, pattern)
    planes = split_planes(raw, pattern)
    assert raw.shape == (2, 1, 8, 10)
    assert torch.equal(planes.sum(1, keepdim=True), raw)
    assert torch.equal(planes, rgb * cfa_masks(8, 10, pattern))


def test_rggb_layout_matches_paper_notation():
    # paper (1-indexed): r at (2h+1, 2w+1), g at (2h+1, 2w) and (2h, 2w+1), b at (2h, 2w)
    rgb = torch.stack([torch.full((4, 4), v) for v in (1.0, 2.0, 3.0)])[None]
    raw = mosaic(rgb)[0, 0]
    assert raw[0, 0] == 1 and raw[0, 1] == 2 and raw[1, 0] == 2 and raw[1, 1] == 3


@pytest.mark.parametrize("pattern", PATTERNS)
def test_crop_to_rggb(pattern):
    rgb = torch.rand(1, 3, 8, 8)
    cropped = crop_to_rggb(mosaic(rgb, pattern), pattern)
    dy, dx = [(0, 0), (0, 1), (1, 0), (1, 1)][site_channels(pattern).index(0)]
    expected = mosaic(rgb[..., dy : 8 - dy, dx : 8 - dx], "RGGB")
    assert torch.equal(cropped, expected)


def test_site_map():
    m = site_map(torch.tensor([1.0, 2.0, 3.0, 4.0]), 4, 4)
    assert m.shape == (1, 1, 4, 4) and m[0, 0, 2, 3] == 2 and m[0, 0, 3, 2] == 3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mosaic(torch.rand(1, 3, 5, 4)), "rgb: expected even height and width"),
        (lambda: mosaic(torch.rand(1, 1, 4, 4)), "rgb: expected 3 channel"),
        (lambda: mosaic(torch.rand(3, 4, 4)), r"rgb: expected a \(B, C, H, W\)"),
        (lambda: mosaic(torch.ones(1, 3, 4, 4, dtype=torch.int32)), "rgb: expected a floating-point"),
        (lambda: mosaic(torch.rand(1, 3, 4, 4), "RGBG"), "pattern: expected one of"),
        (lambda: split_planes(torch.rand(1, 3, 4, 4)), "raw: expected 1 channel"),
        (lambda: cfa_masks(3, 4), "height: expected an even integer"),
        (lambda: crop_to_rggb(torch.rand(1, 1, 2, 2), "BGGR"), "too small"),
        (lambda: site_map(torch.ones(3), 4, 4), r"values: expected shape \(4,\)"),
        (lambda: mosaic(torch.rand(1, 3, 4, 4).numpy()), "rgb: expected a torch.Tensor"),
    ],
)
def test_errors_name_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
