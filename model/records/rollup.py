"""Monitoring's counts per day, kept beside the decision log so that a page never rescans old decisions.

Grouping a million decisions, and binning their inputs (which means parsing their JSON), takes
seconds. The counts per UTC day, model version and simulated flag are computed once by the database
(`model.monitoring.queries`) and kept here; each kind of count has a watermark in
`monitoring_state` (how many decisions it covers and the highest row id among them), so that later
looks add only the decisions written since. Everything here can be dropped at any time: it is
rebuilt from the log.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text

from model.records.log import metadata

KEY_LENGTH = 40

monitoring_state = Table(
    "monitoring_state", metadata,
    Column("key", String(KEY_LENGTH), primary_key=True),  # "activity", or "bins:<fingerprint of the bins>"
    Column("seen", Integer, nullable=False),  # how many decisions the log held when the counts were made
    Column("last_id", Integer, nullable=False),  # the highest decisions.id among them
)

monitoring_days = Table(
    "monitoring_days", metadata,
    Column("model_name", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("model_version", String(100), primary_key=True),
    Column("simulated", Boolean, primary_key=True),
    Column("decisions", Integer, nullable=False),
    Column("approved", Integer, nullable=False),
    Column("out_of_range", Integer, nullable=False),  # decisions with an input outside the training range
    Column("expected_bad", Float, nullable=False),  # sum of 1 − probability over the approved
)

monitoring_bins = Table(
    "monitoring_bins", metadata,
    Column("binning", String(KEY_LENGTH), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("model_version", String(100), primary_key=True),
    Column("simulated", Boolean, primary_key=True),
    Column("metric", String(250), primary_key=True),  # "field:income", "age", "probability", ...
    Column("bin", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("approved", Integer, nullable=False),
)

monitoring_results = Table(
    "monitoring_results", metadata,
    Column("key", String(64), primary_key=True),  # what was computed, for which scope (a SHA-256)
    Column("watermark", String(64), nullable=False),  # the state of its source when it was computed
    Column("body", Text, nullable=False),  # the result, as JSON
)
