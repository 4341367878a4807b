"""The methods the protocol itself names, spelled once.

The dense parent (trained once per seed, its own work group), the control every
method is compared with, and the baseline search (whose other scored candidates
may be trained as probes). Everything that treats one of them apart imports it
from here; this module imports nothing, so any stage may.
"""

DENSE = "dense"
RANDOM = "random"
RANDOM_SEARCH = "random-search"
#: What every other method is compared with, paired by seed.
BASELINE = RANDOM
#: How candidates are ranked at initialization (lower loss, or higher accuracy, is better).
SCORES = ("loss", "accuracy")
