"""contrastkit's conformance kit on every component this plugin registers.

``conformance_tests("tabular")`` collects one test per registered component
(``test_conformance[augmentation:tabular:feature_corruption]``, ...), each
built from the modality's default data set; the fixture
``contrastkit_conformance`` (a pytest plugin that ships with contrastkit)
checks a reader on a file written here.
"""

import numpy as np
import polars as pl

from contrastkit.core.testkit import conformance_tests
from contrastkit_tabular.readers import TableReader

test_conformance = conformance_tests("tabular")


def test_table_reader_conforms_on_a_real_file(tmp_path, contrastkit_conformance):
    rng = np.random.default_rng(0)
    path = tmp_path / "table.parquet"
    pl.DataFrame({"id": [f"r{i}" for i in range(20)], "a": rng.normal(size=20), "b": rng.integers(0, 5, 20),
                  "label": ["x", "y"] * 10}).write_parquet(path)
    report = contrastkit_conformance.check_reader(TableReader(), sources=[str(path)])
    assert not report.failures and len(report.passed) >= 4
