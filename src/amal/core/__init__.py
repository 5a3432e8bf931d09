"""The AMAL core: Λ, hypergradient engines, schedules. Knows nothing of teachers or rules."""

from amal.core.batch import Batch
from amal.core.engines import ENGINES, Chunk, Engine, EngineContext, ValSample, make_engine, register_engine
from amal.core.head import FeatureCapture, find_head
from amal.core.mixer import AMAL, MetaConfig, SweepRecord, ValSet
from amal.core.schedules import Schedule, make_schedule
from amal.core.updates import UPDATES, make_update
from amal.core.weights import LambdaTable

__all__ = [
    "AMAL", "Batch", "Chunk", "ENGINES", "Engine", "EngineContext", "FeatureCapture", "LambdaTable",
    "MetaConfig", "Schedule", "SweepRecord", "UPDATES", "ValSample", "ValSet", "find_head", "make_engine",
    "make_schedule", "make_update", "register_engine",
]
