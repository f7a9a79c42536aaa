"""Kept at this path for saved pipelines: a pickle names `model.pipeline.blanks_to_nan` by import path.

New code imports from `model.core.pipeline`.
"""

from model.core.pipeline import blanks_to_nan

__all__ = ["blanks_to_nan"]
