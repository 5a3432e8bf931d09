"""Reference models; each ends in an ``nn.Linear`` named ``head``."""

from amal.models.resnet import RESNET_DEPTHS, ResNet, WideResNet, cifar_resnet
from amal.models.zoo import MLP, MODEL_NAMES, LogisticRegression, SmallCNN, build_model

__all__ = ["LogisticRegression", "MLP", "MODEL_NAMES", "RESNET_DEPTHS", "ResNet", "SmallCNN", "WideResNet",
           "build_model", "cifar_resnet"]
