"""Stacked scoring: many candidate masks evaluated at initialization at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.mlp import gather_indexed
from ..models.mask import NodeMask, stacked_indices
from ..models.mlp import Layer
from .backprop import PARALLEL_GRAIN, bias_and_activation

# One chunk's activations, a few MB: see score_masks.
SCORING_CHUNK_BYTES = 4 << 20
# A candidate's losses are summed this many rows at a time (see _row_means).
SUM_ROWS = PARALLEL_GRAIN // 2


@torch.no_grad()
def score_masks(
    parent: list[Layer],
    masks: list[NodeMask],
    x: torch.Tensor,
    y: torch.Tensor,
    score: str = "loss",
    activation: str = "relu",
) -> torch.Tensor:
    """Each untrained sub-network's mean loss (or accuracy) on ``(x, y)``, shape ``(K,)``.

    Candidates are compacted and evaluated in chunks so that memory stays
    bounded for any K. A candidate's score does not depend on K, on the
    chunks or on the other candidates (with MKL's strict mode: see
    ``backprop``).

    >>> from sparsebench.models import MLPSpec, init_parent, random_masks
    >>> parent = init_parent(MLPSpec(4, (8, 8), 3), seed=0)
    >>> masks = random_masks((8, 8), 0.5, 5, torch.Generator().manual_seed(0))
    >>> score_masks(parent, masks, torch.randn(10, 4), torch.randint(0, 3, (10,))).shape
    torch.Size([5])
    """
    if not masks:
        return torch.empty(0)
    # Every candidate's first hidden layer is a subset of the parent's, whose
    # input is shared: compute the parent's once and gather rows, instead
    # of K thin matrix products.
    # Activations are kept node-major, (k, width, n): every product is then
    # W (k, out, in) @ H (k, in, n) on contiguous operands, and a candidate's
    # first layer is a gather of whole rows of the parent's.
    first = bias_and_activation(parent[0].weight @ x.t(), parent[0].bias[:, None], activation)  # (w1, n)
    widest = max(max(m.kept_per_layer) for m in masks)
    # Chunks sized to the cache, not to memory: a batched product whose
    # operands stay in cache runs near the large-GEMM peak, a large one at half of it.
    chunk = max(1, SCORING_CHUNK_BYTES // (4 * len(y) * widest))
    kept = stacked_indices(masks, x.device)
    scores = []
    for start in range(0, len(masks), chunk):
        part = [k[start : start + chunk] for k in kept]
        rest = gather_indexed(parent, part)[1:]
        h = first.index_select(0, part[0].flatten()).view(*part[0].shape, first.shape[1])  # (k, w1, n)
        for w, b in rest[:-1]:
            h = bias_and_activation(torch.bmm(w, h), b.unsqueeze(2), activation)
        h = torch.bmm(rest[-1].weight, h).add_(rest[-1].bias.unsqueeze(2))
        if score == "loss":  # h: (k, C, n)
            scores.append(_row_means(F.cross_entropy(h, y.expand(len(h), -1), reduction="none")))
        else:
            # ``max`` gives the first maximal index, as ``argmax`` does, and is far
            # faster along a strided class dimension.
            scores.append((h.max(dim=1).indices == y).float().mean(dim=1))
    return torch.cat(scores).cpu()


def _row_means(t: torch.Tensor) -> torch.Tensor:
    """The mean of each row of ``t`` ``(k, n)``, each row's sum the same whatever k.

    With several threads PyTorch sums a single long row (k = 1) in two passes split
    between the threads, and rows of a larger ``t`` one by one (measured: rows of
    70,000 differ in the last bit): summed in pieces under the grain, then the pieces.
    """
    k, n = t.shape
    if n <= SUM_ROWS:
        return t.mean(dim=1)
    pad = -n % SUM_ROWS
    pieces = F.pad(t, (0, pad)).view(k, -1, SUM_ROWS).sum(dim=2)
    return pieces.sum(dim=1) / n
