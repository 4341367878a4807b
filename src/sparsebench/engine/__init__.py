"""Training and scoring engines.

``stacked`` trains many compacted networks of one shape together with batched
matrix products (its forward and backward pass written out in ``backprop``,
its optimizer step in ``fused_optimizer``); ``scoring`` evaluates many
candidates at initialization the same way; ``reference`` is the plain masked
full-width loop that the tests hold the stacked engine to and the benchmark
measures it against. ``families`` is the engine's per-family code: what the
runner calls, through ``engine_for(family)``; only the MLP has one today.
"""

from .common import TrainResult, TrainSettings, epoch_order
from .families import FamilyEngine, MLPEngine, engine_for
from .reference import score_reference, train_reference
from .scoring import score_masks
from .stacked import evaluate_stacked, train_stacked

__all__ = [
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
