"""Batch scoring of files: stream a CSV or Parquet file through the model, in bounded memory."""

from model.core.csvsafe import FORMULA_START, PLAIN_NUMBER, neutralize, neutralize_text

from .files import (
    BLOCK_SIZE,
    MAX_PROBLEMS,
    OUTPUT_COLUMNS,
    SHOW,
    WORKERS,
    BatchError,
    BatchSummary,
    Progress,
    file_sha256,
    preview_file,
    read_results,
    score_file,
    select_rows,
)
from .reading import MAX_CELL_CHARS, MAX_LINE_BYTES

__all__ = [
    "BLOCK_SIZE",
    "FORMULA_START",
    "MAX_CELL_CHARS",
    "MAX_LINE_BYTES",
    "MAX_PROBLEMS",
    "OUTPUT_COLUMNS",
    "PLAIN_NUMBER",
    "SHOW",
    "WORKERS",
    "BatchError",
    "BatchSummary",
    "Progress",
    "file_sha256",
    "neutralize",
    "neutralize_text",
    "preview_file",
    "read_results",
    "score_file",
    "select_rows",
]
