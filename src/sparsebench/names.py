"""The methods the protocol itself names, spelled once.

The dense parent (trained once per seed, its own work group), the control every
method is compared with, and the baseline search (whose other scored candidates
may be trained as probes). Everything that treats one of them apart imports it
from here; this module imports nothing, so any stage may.
"""

DENSE = "dense"
RANDOM = "random"
RANDOM_SEARCH = "random-search"
EVOLUTION = "evolution"
TRAINED_SEARCH = "trained-search"
#: The searches whose ``probe`` parameter defaults to the config's flat ``probe`` key: random-search alone, as
#: it always has (any other method that takes a ``probe`` parameter, ``evolution``, ``trained-search`` or a
#: user's, is probed only where its own table sets it, so a config's plan never changes under its hash).
FLAT_PROBE_METHODS = (RANDOM_SEARCH,)
#: What every other method is compared with, paired by seed.
BASELINE = RANDOM
#: How candidates are ranked at initialization, each with its direction and whether it is stored as a log
#: (``higher_is_better``, ``log``): the loss and accuracy of the untrained sub-network on the validation split,
#: and the training-free scores of ``sparsebench.scores`` (NASWOT, Jacobian covariance, gradient norm, SynFlow).
SCORE_FACTS = {
    "loss": (False, False),
    "accuracy": (True, False),
    "naswot": (True, True),  # log |det K|, as the paper scores it
    "jacob-cov": (True, False),
    "grad-norm": (True, False),
    "synflow": (True, True),  # a product over layers: spans hundreds of orders of magnitude
}
SCORES = tuple(SCORE_FACTS)
#: What a search that does not rank by one of ``SCORES`` ranks its candidates by, by method name: its trials'
#: ``ranked_by`` (their ``search_score`` is the candidate's value of it; higher is better).
RANKING_SCORES = {TRAINED_SEARCH: "trained-accuracy"}


def score_higher_is_better(name: str) -> bool:
    """Whether a higher ``name`` score ranks a candidate higher (a score this version does not know: higher).

    >>> score_higher_is_better("loss"), score_higher_is_better("naswot")
    (False, True)
    """
    return SCORE_FACTS.get(name, (True, False))[0]
