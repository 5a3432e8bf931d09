"""Weak supervision (rule denoising) with AMAL: labeling functions, the LF analysis, label models, features,
splits and the recipes that mix rule-derived losses per instance (docs/rules.md)."""

from amal.weak.analysis import LFAnalysis, lf_analysis
from amal.weak.config import RULE_METHODS, RulesConfig, load_rules_config
from amal.weak.data import RuleData, rule_data_from_arrays, rule_data_from_texts, split_indices
from amal.weak.features import SentenceEmbeddings, TfidfFeatures, make_features
from amal.weak.label_models import CAGE, LABEL_MODELS, LabelModel, MajorityVote, SnorkelLabelModel, make_label_model
from amal.weak.lf import ABSTAIN, KeywordLF, LabelingFunction, LFOutput, RegexLF, apply_lfs, labeling_function
from amal.weak.matrix import check_lf_matrix
from amal.weak.synthetic import synthetic_rules

__all__ = [
    "ABSTAIN", "CAGE", "LABEL_MODELS", "LFAnalysis", "LFOutput", "KeywordLF", "LabelModel", "LabelingFunction",
    "MajorityVote", "RULE_METHODS", "RegexLF", "RuleData", "RulesConfig", "SentenceEmbeddings", "SnorkelLabelModel",
    "TfidfFeatures", "apply_lfs", "check_lf_matrix", "labeling_function", "lf_analysis", "load_rules_config",
    "make_features", "make_label_model", "rule_data_from_arrays", "rule_data_from_texts", "split_indices",
    "synthetic_rules",
]
