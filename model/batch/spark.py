"""Score a Spark DataFrame with the same core: `score_table` inside `mapInArrow`.

    from model.batch.spark import arrow_scorer, output_ddl
    book = spark.read.option("header", True).csv("book/*.csv")   # every column as text, as score.py reads
    scored = book.mapInArrow(arrow_scorer(model), output_ddl(book.schema))

Each executor loads and verifies the model once per Python worker (`workers.worker_model`), from the
same version folder, and refuses another model or scikit-learn version, as a Dask worker does.
pyspark is imported only by `output_ddl`, so nothing else here needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from model.scoring.table import OUTPUT_COLUMNS, OUTPUT_TYPES, plain_output, score_table

from .workers import ModelSpec, worker_model

SPARK_TYPES = {name: {"double": "double", "int8": "tinyint"}.get(str(kind), "string")
               for name, kind in OUTPUT_TYPES.items()}


def arrow_scorer(model) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function for `DataFrame.mapInArrow`: each batch of rows in, the same rows with their decisions out."""
    spec = ModelSpec.of(model)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        loaded = worker_model(spec)
        for batch in batches:
            yield from plain_output(score_table(loaded, batch).table).to_batches()

    return score


def output_ddl(input_schema) -> str:
    """The output's schema for `mapInArrow`, as DDL: the input's columns, then the decision columns."""
    from pyspark.sql.types import StructType

    if not isinstance(input_schema, StructType):
        raise TypeError("output_ddl takes the input DataFrame's schema (df.schema)")
    columns = [f"`{f.name.replace('`', '``')}` {f.dataType.simpleString()}" for f in input_schema.fields]
    return ", ".join([*columns, *(f"{name} {SPARK_TYPES[name]}" for name in OUTPUT_COLUMNS)])
