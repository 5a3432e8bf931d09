"""Every shipped config file loads (no unknown keys, valid values)."""

import glob
import os

import pytest

from amal.train.config import METHODS, load_config
from amal.weak.config import RULE_METHODS, load_rules_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")))


@pytest.mark.parametrize("path", [p for p in CONFIGS if not p.endswith("_rules.yaml")])
def test_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.method in METHODS


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.endswith("_rules.yaml")])
def test_shipped_rules_config_loads(path):
    cfg = load_rules_config(path)
    assert cfg.method in RULE_METHODS and cfg.data.name in ("sms", "youtube")
