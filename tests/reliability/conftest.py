from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from .helpers import export_csv, finish, start, stored_numbers


@dataclass
class Reference:
    """The tiny experiment run once, uninterrupted, as a user runs it."""

    db: Path
    stdout: str
    numbers: dict[str, pd.DataFrame]
    export: str  # `sparsebench export --format csv`, volatile columns left out
    export_curves: str


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    tmp = tmp_path_factory.mktemp("reference")
    db = tmp / "ref.db"
    code, out, err = finish(start(db))
    assert code == 0, err
    return Reference(db, out, stored_numbers(db), export_csv(db, tmp / "ref.csv"),
                     export_csv(db, tmp / "ref_curves.csv", "--curves"))
