"""Every shipped config file loads (no unknown keys, valid values)."""

import glob
import os

import pytest

from amal.train.config import METHODS, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))))
def test_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.method in METHODS
