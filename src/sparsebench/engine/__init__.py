"""Training and scoring engines.

``stacked`` trains many compacted networks of one shape together with batched
matrix products (its forward and backward pass written out in ``backprop``,
its optimizer step in ``fused_optimizer``); ``scoring`` evaluates many
candidates at initialization the same way; ``reference`` is the plain masked
full-width loop that the tests hold the stacked engine to and the benchmark
measures it against. ``families`` lists each parent family's engine (``mlp``,
``conv``): what the runner calls, through ``engine_for(family)``.
"""

from .common import TrainResult, TrainSettings, epoch_order
from .base import FamilyEngine
from .conv import ConvEngine
from .families import engine_for
from .mlp import MLPEngine
from .reference import score_reference, train_reference
from .scoring import score_masks
from .stacked import evaluate_stacked, train_stacked

__all__ = [
    "ConvEngine",
    "FamilyEngine",
    "MLPEngine",
    "TrainResult",
    "TrainSettings",
    "engine_for",
    "epoch_order",
    "evaluate_stacked",
    "score_masks",
    "score_reference",
    "train_reference",
    "train_stacked",
]
