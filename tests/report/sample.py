"""The synthetic experiment every report test uses."""

# A user-chosen method name that would break out of HTML/Markdown if it were not escaped.
HOSTILE_METHOD = '<script src="https://evil.example/x.js"></script>|*x*'
SPARSITIES = (0.5, 0.9, 0.98)
CONFIG = {
    "dataset": "synthetic", "hidden": [64, 64], "seeds": list(range(12)), "sparsities": list(SPARSITIES),
    "methods": ["dense", "random", "random-search", HOSTILE_METHOD], "candidates": 8, "probe": 3,
    "epochs": 8, "optimizer": "adam", "lr": 0.001, "batch_size": 128,
    "note": '<a href="http://evil.example/">click</a>',
}
