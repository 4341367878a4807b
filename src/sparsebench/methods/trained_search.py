"""``trained-search``: sample K masks, train each briefly, keep the best validation accuracy.

An expensive but informative search: where ``random-search`` ranks untrained sub-networks, this one ranks them
after E epochs of the experiment's own training (``SelectionContext.train``: its optimizer, learning rate,
batch size and this seed's minibatch order; all K stacked, no early stopping; the test split never seen).

The rank is the validation accuracy **after the last of the E epochs**, the same point of training for every
candidate; not the best epoch's, since a maximum over epochs favours the candidates whose validation accuracy
is noisiest. Ties go to the lower validation loss at that epoch, then to the earlier candidate. A candidate
whose training diverged scores 0 and is never kept over one that did not diverge.

Because ``ctx.train`` trains as the experiment trains, a candidate trained for E epochs here is exactly the
trial's first E epochs: with E equal to the experiment's ``epochs`` (and no early stop) the search ranks by the
validation accuracy the trial will reach. What that costs is stored with the trial: ``candidate_evaluations``
= K, ``search_epochs`` = K x E (every candidate trains every epoch in the stack, diverged or not).
"""

from __future__ import annotations

import math

from .base import Method, Selection, SelectionContext, check_count, check_probe

#: Default candidates K: as many as a stack trains at little more than the cost of one network at high
#: sparsity, and enough for a detectable gain over random at s=0.9 (tests/methods/test_trained_search.py).
DEFAULT_CANDIDATES = 8
#: Default epochs E per candidate: brief training already separates good and bad masks (README).
DEFAULT_EPOCHS = 2


class TrainedSearch(Method):
    """Parameters: ``candidates`` K, the masks sampled and trained (default 8); ``epochs`` E, the training epochs
    of each (default 2); ``probe``, how many of the other candidates are also trained in full as probes (default
    0; at most K - 1; not the flat ``probe`` key, which goes with the flat ``candidates`` this search does not
    use). Its search costs K x E training epochs per trial (16 at the defaults). A trial's ``search_score`` is
    its candidate's validation accuracy after the E epochs (``score_name`` "trained-accuracy"), so the probes
    show whether brief training predicts the accuracy of full training.

    >>> TrainedSearch()
    TrainedSearch(candidates=8, epochs=2, probe=0)
    """

    def __init__(self, candidates: int = DEFAULT_CANDIDATES, epochs: int = DEFAULT_EPOCHS, probe: int = 0):
        self.candidates = check_count("candidates", candidates)
        self.epochs = check_count("epochs", epochs)
        self.probe = check_probe(probe, self.candidates)

    def select(self, ctx: SelectionContext) -> Selection:
        masks = ctx.sample(self.candidates)
        results = ctx.train(masks, self.epochs)
        ranks = [rank_key(r.val_acc, r.val_loss, r.diverged) for r in results]
        chosen = max(range(len(masks)), key=lambda i: (ranks[i], -i))  # ties: the earlier candidate
        scores = [key[1] for key in ranks]
        return Selection(mask=masks[chosen], candidates=masks, scores=scores, chosen=chosen,
                         search_epochs=self.candidates * self.epochs)


def rank_key(val_acc: list[float], val_loss: list[float], diverged: bool) -> tuple[bool, float, float]:
    """How a trained candidate ranks, larger first: (did not diverge, last validation accuracy, minus its loss).

    >>> rank_key([0.2, 0.5], [2.0, 1.5], False), rank_key([0.4], [float("nan")], True)
    ((True, 0.5, -1.5), (False, 0.0, -inf))
    """
    if diverged or not val_acc or not math.isfinite(val_loss[-1]):
        return False, 0.0, -math.inf
    return True, float(val_acc[-1]), -float(val_loss[-1])
