"""Producing notices: one for a decision on record (the Decide page, the API), or one per rejected
row of a scored batch file (`score.py --notices DIR`), each recorded in the decision log.

Which decisions get a notice: those whose final decision is a rejection — the model's, unless an
officer overrode it. An approval has no notice, and neither has a case referred to an underwriter
until the underwriter decides.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from model.core.errors import DecisionNotFound, ModelIntegrityError, NotARejection
from model.core.files import private_dir, write_replacing
from model.core.schema import Schema
from model.records.log import DecisionLog
from model.records.notices import NoticeRecord, new_record, record_notices
from model.records.overrides import REFERRED, final_decision_of, model_outcome, overrides_for
from model.registry.store import read_card, resolve_version_dir
from model.scoring.predictor import LoanModel
from model.scoring.reason_codes import join_codes, parse_codes

from .content import NoticeContent, notice_content
from .render import render_pdf
from .template import OVERRIDE_PREFIX, NoticeTemplate

# The deciding model's schema and typical approved applicant, by model version (None: unknown).
SchemaLookup = Callable[[str], tuple[Schema, Mapping[str, Any]] | None]
NOTICE_ROWS = 2000  # notices recorded in the log per transaction in a batch


def schemas_from(registry: Path, model: LoanModel) -> SchemaLookup:
    """Each version's schema and typical approved applicant, read from its card in `registry`
    (the loaded `model` for its own version); a version no longer there gets the loaded model's
    labels and no typical values."""
    def lookup(version: str) -> tuple[Schema, Mapping[str, Any]]:
        if version == model.version:
            return model.schema, model.card.get("reference", {})
        try:
            card = read_card(resolve_version_dir(registry, version))
            return Schema.from_dict(card["schema"]), card.get("reference", {})
        except (ModelIntegrityError, KeyError, TypeError, ValueError):
            return model.schema, {}

    return lookup


@dataclass(frozen=True)
class Notice:
    pdf: bytes
    record: NoticeRecord
    content: NoticeContent

    @property
    def file_name(self) -> str:
        return f"adverse-action-notice-{self.record.decision_id}.pdf"


def notice_for_decision(log: DecisionLog, decision_id: str, *, template: NoticeTemplate, schemas: SchemaLookup,
                        produced_by: str, source: str, key_factors: Sequence[str] | str | None = None,
                        applicant: Sequence[str] = ()) -> Notice:
    """The notice for a rejection on record, recorded as produced by `produced_by`.

    Raises DecisionNotFound for an unknown id and NotARejection when the decision that stands is
    not a rejection (an approval, or a referred case not yet decided by an underwriter).
    """
    row = log.find(decision_id)
    if row is None:
        raise DecisionNotFound(f"there is no decision {decision_id!r} on record")
    final = final_decision_of(log, decision_id, row)
    if final is None:
        raise NotARejection(f"decision {decision_id} was referred to an underwriter and has no final decision "
                            "yet: a notice is given once it is rejected")
    if final == 1:
        raise NotARejection(f"decision {decision_id} was approved: an adverse action notice is only for a rejection")
    codes = parse_codes(row.get("reason_codes")) if int(row["decision"]) == 0 else []
    done = overrides_for(log, decision_id)
    if done and done[-1].final_decision == 0 and (not codes or model_outcome(row) != REFERRED):
        codes = [*codes, OVERRIDE_PREFIX + done[-1].reason]
    found = schemas(row["model_version"])
    schema, reference = found if found is not None else (None, {})
    content = notice_content(template, decision_id=decision_id, decided_at=row["decided_at"], inputs=row["inputs"],
                             reason_codes=codes, schema=schema, reference=reference, key_factors=key_factors,
                             applicant=applicant, model_version=row["model_version"])
    pdf = render_pdf(content)
    record = new_record(decision_id, produced_by=produced_by, source=source,
                        reason_codes=join_codes(content.reason_codes), pdf_sha256=hashlib.sha256(pdf).hexdigest())
    record_notices(log, [record])
    return Notice(pdf, record, content)


@dataclass
class BatchNotices:
    folder: Path
    written: int = 0
    recorded: int = 0
    log_warning: str | None = None


def notices_for_batch(results_path: str | Path, folder: str | Path, *, template: NoticeTemplate, schema: Schema,
                      reference: Mapping[str, Any], model_version: str, log: DecisionLog | None,
                      id_column: str | None = None, produced_by: str = "command") -> BatchNotices:
    """One PDF per rejected row of a scored file (CSV or Parquet, as `score_file` writes it) in `folder`.

    A file is named after the row's `id_column` value when given (made safe for a file name),
    else `row-<n>.pdf` with n the row number (from 1, the first row under the header). Rows
    referred to an underwriter and rows with errors get none.
    """
    folder = private_dir(Path(folder))  # notices name applicants: a folder made here is the owner's only
    table = _read(Path(results_path))
    if id_column is not None and id_column not in table.column_names:
        raise ValueError(f"--notice-id column {id_column!r} is not in the file (its columns: "
                         f"{', '.join(table.column_names[:12])})")
    keep = pc.and_(pc.equal(table.column("decision"), 0), pc.is_null(table.column("error")))
    if "referred" in table.column_names:
        keep = pc.and_(keep, pc.invert(pc.equal(pc.cast(table.column("referred"), pa.int8()), 1)))
    numbers = pa.array(range(1, table.num_rows + 1))
    rejected = table.append_column("_row", numbers).filter(pc.fill_null(keep, False))
    out = BatchNotices(folder)
    pending: list[NoticeRecord] = []
    taken: set[str] = set()
    for row in rejected.to_pylist():
        inputs = {f.name: _value(f.is_number, row.get(f.name)) for f in schema.fields}
        for extra in (template.credit_score.key_factors_field if template.credit_score else None,):
            if extra and extra in row:
                inputs[extra] = row[extra]
        decision_id = row.get("decision_id") or f"row-{row['_row']}"
        content = notice_content(template, decision_id=decision_id, decided_at=datetime.now(UTC), inputs=inputs,
                                 reason_codes=parse_codes(row.get("reason_codes")), schema=schema,
                                 reference=reference, model_version=model_version)
        pdf = render_pdf(content)
        name = _file_name(row, id_column, taken)
        write_replacing(folder / name, pdf)  # owner-only, never through a link planted at the name
        out.written += 1
        pending.append(new_record(decision_id, produced_by=produced_by, source="command",
                                  reason_codes=join_codes(content.reason_codes),
                                  pdf_sha256=hashlib.sha256(pdf).hexdigest()))
        if len(pending) >= NOTICE_ROWS:
            _flush(log, pending, out)
    _flush(log, pending, out)
    return out


def _flush(log: DecisionLog | None, pending: list[NoticeRecord], out: BatchNotices) -> None:
    if log is not None and pending and out.log_warning is None:
        try:
            record_notices(log, pending)
            out.recorded += len(pending)
        except Exception as exc:  # the notices stand; the warning says they are not on record
            out.log_warning = (f"the decision log could not record the notices after {out.recorded:,} of them "
                               f"({str(exc).splitlines()[0]})")
    pending.clear()


def _read(path: Path) -> pa.Table:
    """Every column as text except decision; repeated texts dictionary-encoded (a million rows fit)."""
    if path.suffix.lower() == ".parquet":
        return pq.read_table(path)
    with open(path, "rb") as fh:
        header = next(csv.reader(io.StringIO(fh.readline().decode("utf-8-sig"))))
    types = {name: pa.string() for name in header}
    types["decision"] = pa.int8()
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                          convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                               null_values=[""]))


def _value(number: bool, text: Any) -> Any:
    """A cell of the scored file as the notice shows it: "$62,000" and "62000" both as 62000."""
    if text is None or not number:
        return text
    try:
        return float(str(text).replace("$", "").replace(",", "").strip().lstrip("'"))
    except ValueError:
        return text


UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(row: dict[str, Any], id_column: str | None, taken: set[str]) -> str:
    """`<id>.pdf` (letters, digits, '.', '_' and '-' only; a repeated id gets its row number), else `row-<n>.pdf`."""
    stem = f"row-{row['_row']}"
    if id_column is not None:
        wanted = UNSAFE.sub("_", str(row.get(id_column) or "").lstrip("'")).strip("._")[:100]
        if wanted:
            stem = wanted if wanted.lower() not in taken else f"{wanted}-row-{row['_row']}"
    taken.add(stem.lower())
    return f"{stem}.pdf"
