"""README's Spark recipe, run for real: `mapInArrow` over `score_table` on a local Spark (2 cores).

Spark needs Java (Debian's openjdk-17-jre-headless, which .ci/run installs) and pyspark
(requirements-dev.txt). The recipe's output must equal score.py's, every column.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.batch.files import score_file

from .conftest import IN_CI
from .test_dask_engine import assert_same_output, messy_applicants, write_csv

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (requirements-dev.txt installs it)")


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        if IN_CI:
            pytest.fail("java is not installed, but CI must run the Spark recipe "
                        "(.ci/run installs openjdk-17-jre-headless)")
        pytest.skip("java is not installed: Spark cannot start (apt-get install openjdk-17-jre-headless)")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("loandesk-tests")
               .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()


def test_the_spark_recipe_equals_score_py(model, spark, tmp_path):
    from model.batch.spark import arrow_scorer, output_ddl

    source = write_csv(tmp_path / "book.csv", messy_applicants(4_000, seed=4))
    score_file(model, source, tmp_path / "single.parquet")
    book = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(str(source))
    scored = book.mapInArrow(arrow_scorer(model), output_ddl(book.schema))  # no shuffle: input order kept
    scored.write.parquet(str(tmp_path / "spark"))
    files = sorted((tmp_path / "spark").glob("part-*.parquet"))
    got = pa.concat_tables([pq.read_table(f) for f in files])
    single = pq.read_table(tmp_path / "single.parquet")
    assert_same_output(single, got.cast(single.schema), ids=False)  # the recipe scores; it records nothing
    assert int(np.sum(got["error"].is_valid())) > 0
