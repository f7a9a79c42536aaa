"""Monitoring's daily counts, kept beside the decision log so that a page never rescans old days.

Binning a decision's inputs means parsing its JSON; over a million decisions that takes seconds.
Counts per UTC day, model version, simulated flag, figure and bin are computed once by the
database (`model.monitoring.queries`) and kept here under a fingerprint of the bins used
(`binning`), with each day's decision count and last decision row id, so that a day is
recomputed only when decisions were added to it. Everything here can be dropped at any time: it
is rebuilt from the log.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, String, Table

from model.records.log import metadata

BINNING_LENGTH = 16

monitoring_days = Table(
    "monitoring_days", metadata,
    Column("binning", String(BINNING_LENGTH), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("model_version", String(100), primary_key=True),
    Column("simulated", Boolean, primary_key=True),
    Column("decisions", Integer, nullable=False),  # how many decisions the counts below cover
    Column("last_id", Integer, nullable=False),  # the highest decisions.id among them
)

monitoring_bins = Table(
    "monitoring_bins", metadata,
    Column("binning", String(BINNING_LENGTH), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("model_version", String(100), primary_key=True),
    Column("simulated", Boolean, primary_key=True),
    Column("metric", String(250), primary_key=True),  # "field:income", "age", "probability", ...
    Column("bin", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("approved", Integer, nullable=False),
)
