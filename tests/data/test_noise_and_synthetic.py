"""Label noise (symmetric and class-dependent) on the training split only, and the paper's synthetic sets."""

import numpy as np
import pytest
import torch

from amal.data import add_label_noise, load_dataset, make_splits, synthetic_gmm, synthetic_spiral
from amal.errors import AmalError

C = 10


def _data(n=20_000, seed=0):
    """Feature = row id, so every split row can be traced back to its original label."""
    g = torch.Generator().manual_seed(seed)
    return torch.arange(n, dtype=torch.float32)[:, None], torch.randint(0, C, (n,), generator=g)


def _check_untouched(splits, y):
    for part in (splits.val, splits.test):
        assert torch.equal(part.y, y[part.x[:, 0].long()])
    assert torch.equal(splits.clean_train_y, y[splits.train.x[:, 0].long()])


def test_asymmetric_noise_flips_only_to_the_paired_class():
    x, y = _data()
    s = make_splits(x, y, noise=0.3, noise_type="asymmetric", seed=3)
    _check_untouched(s, y)
    clean, noisy, mask = s.clean_train_y, s.train.y, s.noise_mask
    assert torch.equal(mask, noisy != clean)
    assert torch.equal(noisy[mask], (clean[mask] + 1) % C)  # default pair: c -> c + 1 (mod C)
    assert abs(mask.float().mean().item() - 0.3) < 0.02
    for c in range(C):  # the rate holds per class, not just overall
        assert abs(mask[clean == c].float().mean().item() - 0.3) < 0.05


def test_asymmetric_noise_with_a_custom_pairing():
    x, y = _data()
    pair = [9 - c for c in range(C)]  # 0<->9, 1<->8, ...
    s = make_splits(x, y, noise=0.2, noise_type="asymmetric", noise_pair=pair, seed=0)
    _check_untouched(s, y)
    m = s.noise_mask
    assert torch.equal(s.train.y[m], 9 - s.clean_train_y[m])
    assert abs(m.float().mean().item() - 0.2) < 0.02
    # a class paired with itself never changes, and the mask says so
    keep0 = list(range(C))
    keep0[1] = 2
    s = make_splits(x, y, noise=0.4, noise_type="asymmetric", noise_pair=keep0, seed=0)
    assert torch.equal(s.train.y != s.clean_train_y, s.noise_mask)
    assert set(s.clean_train_y[s.noise_mask].tolist()) == {1}


def test_symmetric_noise_spreads_over_all_other_classes():
    x, y = _data()
    s = make_splits(x, y, noise=0.4, seed=1)
    _check_untouched(s, y)
    m = s.noise_mask
    assert abs(m.float().mean().item() - 0.4) < 0.02
    offsets = ((s.train.y[m] - s.clean_train_y[m]) % C).bincount(minlength=C)
    assert offsets[0] == 0 and (offsets[1:].float() / m.sum() - 1 / (C - 1)).abs().max() < 0.02
    # the default is symmetric, and the same seed gives the same labels as before
    assert torch.equal(s.train.y, make_splits(x, y, noise=0.4, seed=1, noise_type="symmetric").train.y)


def test_noise_arguments_are_checked():
    x, y = _data(100)
    with pytest.raises(AmalError, match="noise_type must be one of"):
        make_splits(x, y, noise=0.1, noise_type="pairflip")
    with pytest.raises(AmalError, match="noise_pair must give one target per class"):
        make_splits(x, y, noise=0.1, noise_type="asymmetric", noise_pair=[1, 0])
    with pytest.raises(AmalError, match="noise_pair targets must be classes"):
        make_splits(x, y, noise=0.1, noise_type="asymmetric", noise_pair=[10] * C)
    with pytest.raises(AmalError, match="only applies to noise_type 'asymmetric'"):
        add_label_noise(y, 0.1, C, np.random.default_rng(0), "symmetric", pair=list(range(C)))


def test_synthetic_spiral():
    x, y = synthetic_spiral(seed=0)
    assert x.shape == (6000, 2) and x.dtype == torch.float32 and y.dtype == torch.long
    assert y.bincount().tolist() == [1500] * 4
    x2, y2 = synthetic_spiral(seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(synthetic_spiral(seed=1)[0], x)
    # noiseless arms: every point sits at radius r with angle 2π(c/4 + r)
    x0, y0 = synthetic_spiral(n_per_class=50, noise=0.0)
    r = x0.norm(dim=1)
    want = 2 * torch.pi * (y0 / 4 + r)
    assert torch.allclose(torch.stack([r * want.cos(), r * want.sin()], 1), x0, atol=1e-5)
    # more noise blurs the arms: points leave their arm's angle
    xn, yn = synthetic_spiral(n_per_class=500, noise=0.5)
    rn = xn.norm(dim=1)
    drift = torch.atan2(xn[:, 1], xn[:, 0]) - 2 * torch.pi * (yn / 4 + rn)
    assert torch.remainder(drift + torch.pi, 2 * torch.pi).sub(torch.pi).std() > 0.4
    with pytest.raises(AmalError, match="noise must be >= 0"):
        synthetic_spiral(noise=-1)


def test_named_synthetic_sets():
    s = load_dataset("synthetic-spiral", seed=0, noise=0.2, noise_type="asymmetric")
    assert len(s.test) == 1200 and len(s.train) + len(s.val) == 4800 and s.n_classes == 4
    assert s.input_shape == (2,)
    assert torch.equal(s.train.y[s.noise_mask], (s.clean_train_y[s.noise_mask] + 1) % 4)
    g = load_dataset("synthetic-gmm", seed=0)
    assert g.n_classes == 20 and g.input_shape == (14,) and len(g.test) == 2000
    x, y = synthetic_gmm()
    assert x.shape == (10_000, 14)
