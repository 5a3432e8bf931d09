"""Batch augmentation: random crop after padding, horizontal flips, seeded by a torch.Generator."""

import pytest
import torch
import torch.nn.functional as F

from amal.data import Augment, build_augment
from amal.errors import AmalError


def _images(b=64, c=3, h=8, w=8):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(0))


def test_shape_and_input_untouched():
    x = _images()
    before = x.clone()
    out = Augment(pad=4, flip=True)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and torch.equal(x, before)
    assert Augment()(torch.rand(5, 1, 28, 28)).shape == (5, 1, 28, 28)


def test_flips_happen_and_only_flips_without_padding():
    x = _images()
    out = Augment(pad=0, flip=True)(x, torch.Generator().manual_seed(1))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 10 < int(mirrored.sum()) < 54  # about half of 64
    assert torch.equal(Augment(pad=0, flip=True, flip_p=1.0)(x), x.flip(-1))


def test_crops_are_shifted_windows_of_the_padded_image():
    x, p = _images(), 2
    out = Augment(pad=p, flip=False)(x, torch.Generator().manual_seed(2))
    padded = F.pad(x, (p, p, p, p))
    offsets = []
    for i in range(x.shape[0]):
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8])]
        assert hits, f"sample {i} is not a crop of its padded image"
        offsets.append(hits[0])
    assert len(set(offsets)) > 10  # many different crops, not a fixed shift
    assert sum(o == (p, p) for o in offsets) < 16  # most images really move


def test_crop_and_flip_combined():
    x, p = _images(16), 1
    out = Augment(pad=p, flip=True, flip_p=1.0)(x, torch.Generator().manual_seed(3))
    padded = F.pad(x, (p, p, p, p))
    for i in range(16):
        assert any(torch.equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8].flip(-1))
                   for dy in range(3) for dx in range(3))


def test_seeded_determinism():
    x = _images()
    aug = Augment()
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(7)
    assert not torch.equal(aug(x, g), aug(x, g))  # the generator advances between batches


def test_options_and_errors():
    assert build_augment(False) is None and build_augment(None) is None
    assert isinstance(build_augment(True), Augment)
    assert build_augment({"pad": 2, "flip": False}).pad == 2
    with pytest.raises(AmalError, match="bad augment option"):
        build_augment({"padding": 2})
    with pytest.raises(AmalError, match="pad must be a non-negative integer"):
        Augment(pad=-1)
    with pytest.raises(AmalError, match=r"expects images \[B, C, H, W\]"):
        Augment()(torch.rand(3, 8, 8))
    x = _images(4)
    assert torch.equal(Augment(pad=0, flip=False)(x), x)
