"""Train a loan-approval pipeline and save it as a new, verified model version.

    python train.py                                   # the built-in applicants
    python train.py --data applicants.csv --target outcome --approved-value granted --out artifacts/my_model
    python train.py --data applicants.csv --target outcome --write-spec spec.toml   # a column spec to edit
    python train.py --data applicants.csv --target outcome --approved-value granted --spec spec.toml
    python train.py --list                            # the versions kept, the active one marked
    python train.py --activate VERSION                # make a version active (roll back or forward), on record
    python train.py --set-threshold 0.55              # the active version again, with another threshold, on record
    python train.py --history                         # the model change history: proposals, approvals, activations
    python train.py --new-key-pair keys/              # an Ed25519 pair for signing model cards

Deploy a pipeline you fitted and saved yourself (joblib.dump(pipeline, "loan_approval_model.pkl")):

    python train.py --import loan_approval_model.pkl --data labelled.csv --target approved --out artifacts/my_model

The file is loaded under an allow-list (scikit-learn, NumPy, SciPy, pandas), so nothing in it runs;
your own transformers need --trust-module MODULE (looked up in the current folder too). It must be a
fitted two-class classifier fitted on named columns; it is measured on the labelled data, its
directions are checked (age may never count against an older applicant), and it is saved as a new
verified version like any trained one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from model.core.formatting import percent
from model.core.pipeline import MonotonicityError
from model.records import access
from model.records.log import DecisionLog
from model.registry import signing
from model.registry.store import (
    ModelIntegrityError,
    active_version,
    default_model_dir,
    list_versions,
    output_folder_problem,
    save_version,
)
from model.training.changes import activate_from_shell, model_changes
from model.training.data import (
    CONFIRM_FLAG,
    DataError,
    label_doubt,
    label_meaning,
    read_training_csv,
    split_target,
)
from model.training.importing import OVERLAP_NOTE, import_pipeline
from model.training.protection import pair_allowed, parse_declared
from model.training.proxies import PROXY_THRESHOLD, Proxy
from model.training.spec import ColumnSpec, read_spec, write_spec
from model.training.train import parse_monotone, train, train_builtin
from model.training.workflows import copy_with_threshold


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a CSV to train on (default: the built-in applicants)")
    p.add_argument("--target", default="approved", help="the label column (default: approved)")
    p.add_argument("--approved-value", "--positive-label", dest="approved_value", metavar="VALUE",
                   help="the target value that means approved (needed unless the target is 0/1 or true/false "
                        "and its name does not read as a bad outcome); --positive-label is the old name")
    p.add_argument(CONFIRM_FLAG, dest="confirm_approved_value", action="store_true",
                   help="take --approved-value as given although it reads as the opposite of approval (yes for a "
                        "target named deny); recorded in the model card and on the Model page")
    p.add_argument("--model", choices=["logistic", "gbm", "auto"], default="auto",
                   help="auto picks the kind with the better cross-validated AUC (default)")
    p.add_argument("--out", type=Path, default=default_model_dir(),
                   help=f"the model folder; versions are kept inside it (default: {default_model_dir()})")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--test-size", type=float, default=0.2, help="hold-out share (default: 0.2)")
    p.add_argument("--rows", type=int, default=5000, help="rows of built-in data to generate")
    p.add_argument("--monotone", help="directions for your own columns, e.g. income=+1,loan_amount=-1")
    p.add_argument("--protected", action="append", metavar="COL[=BASIS]",
                   help="a column that describes a prohibited basis though its name does not say so (repeatable)")
    p.add_argument("--allow", action="append", metavar="COL",
                   help="use a protected column anyway; needs --justification (repeatable, in pairs)")
    p.add_argument("--justification", action="append", metavar="TEXT",
                   help="why using the --allow column (or, with --import, --allow-age-decline) is lawful; "
                        "written into the model card")
    p.add_argument("--proxy-threshold", type=float, default=PROXY_THRESHOLD,
                   help=f"warn when the inputs predict a protected column above this AUC (default: {PROXY_THRESHOLD})")
    p.add_argument("--spec", type=Path, help="a column spec (TOML): labels, units, descriptions, directions, "
                                              "protected status")
    p.add_argument("--write-spec", type=Path, metavar="FILE",
                   help="write a column spec for --data to edit, and exit")
    p.add_argument("--activate", metavar="VERSION",
                   help="make VERSION the active one and exit; recorded in the change history with your OS user")
    p.add_argument("--history", action="store_true", help="print the model change history and exit")
    imp = p.add_argument_group("importing a pipeline you saved (--import)")
    imp.add_argument("--import", dest="import_file", type=Path, metavar="FILE",
                     help="a fitted scikit-learn pipeline or classifier (.pkl/.joblib from joblib.dump or pickle, "
                          "or .skops) to make a new version from; needs --data with labelled rows")
    imp.add_argument("--trust-module", action="append", default=[], metavar="MODULE",
                     help="allow code from MODULE (your own transformers or functions) in the file; "
                          "__main__=MODULE reads functions saved from a script or notebook from MODULE. Repeatable")
    imp.add_argument("--allow-version-mismatch", action="store_true",
                     help="import a file made with another scikit-learn version (recorded in the card)")
    imp.add_argument("--allow-age-decline", action="store_true",
                     help="import although approval falls as age rises; needs --justification (recorded; after "
                          "the ones that go with --allow)")
    p.add_argument("--list", action="store_true", help="list the versions and exit")
    p.add_argument("--set-threshold", type=float, metavar="T",
                   help="save the active version (or --version) again with threshold T, make it active, exit")
    p.add_argument("--version", help="the version --set-threshold starts from (default: the active one)")
    p.add_argument("--new-key-pair", type=Path, metavar="DIR",
                   help="write a new Ed25519 key pair for signing model cards into DIR and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.list:
            return show_versions(args.out)
        if args.history:
            return show_history(args.out)
        if args.new_key_pair:
            private, public = signing.new_key_pair(args.new_key_pair)
            print(f"New signing key pair in {args.new_key_pair}. On the training host only (keep it secret):\n"
                  f"  export LOANDESK_SIGNING_KEY_FILE={private}\n"
                  f"On every replica and the app (copy the public key there):\n"
                  f"  export LOANDESK_VERIFY_KEY_FILE={public}")
            return 0
        if args.set_threshold is not None:
            return set_threshold(args.out, args.version or active_version(args.out) or "", args.set_threshold)
        if args.activate:
            return activate(args.out, args.activate)
        if args.write_spec is not None:
            return write_spec_for(args)
        problem = output_folder_problem(args.out)
        if problem:
            raise DataError(problem)
        if args.import_file is not None:
            return import_file(args)
        if args.data is None:
            trained = train_builtin(seed=args.seed, rows=args.rows, model=args.model, test_size=args.test_size)
        else:
            frame = read_training_csv(args.data)
            features, y, positive = split_target(frame, args.target, args.approved_value,
                                                 confirmed=args.confirm_approved_value)
            print(label_meaning(args.target, positive, y))
            doubt = label_doubt(args.target, positive)
            if doubt:
                print(f"warning: {doubt}; taken as approved because of {CONFIRM_FLAG} (recorded in the model "
                      "card)", file=sys.stderr)
            trained = train(features, y, target=args.target, positive_label=positive, model=args.model,
                            seed=args.seed, test_size=args.test_size,
                            monotone=parse_monotone(args.monotone), source=str(args.data),
                            declared=parse_declared(args.protected),
                            allowed=pair_allowed(args.allow, args.justification),
                            spec=spec_for(args), proxy_threshold=args.proxy_threshold,
                            label_confirmed=doubt)
        version = save_version(args.out, trained.pipeline, trained.card, trained.holdout, activate=False)
        if activate(args.out, version, note=f"trained with train.py on {trained.card['data']['source']}", quiet=True):
            print(f"Saved version {version} to {args.out}, NOT active: make it active once the decision log is "
                  f"back with `python train.py --activate {version} --out {args.out}`.", file=sys.stderr)
            return 2
    except (DataError, MonotonicityError, ModelIntegrityError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"error: the decision log's database cannot be read ({str(exc).splitlines()[0][:160]})",
              file=sys.stderr)
        return 2
    report(trained.card, args.out, version)
    return 0


def import_file(args: argparse.Namespace) -> int:
    """--import: a saved pipeline and labelled data → a new verified version."""
    if args.data is None:
        raise DataError("--import needs --data: a CSV of labelled applicants to check and measure the pipeline on "
                        f"(the columns it reads and {args.target!r})")
    if not args.import_file.is_file():
        raise DataError(f"--import {args.import_file}: no such file")
    frame = read_training_csv(args.data)
    trust_current_folder(args.trust_module)
    justifications = list(args.justification or [])
    # One --justification per --allow, in order; with --allow-age-decline, the last one is for it.
    age_justification = justifications.pop() if args.allow_age_decline and justifications else None
    previous = active_version(args.out) if (args.out / "versions").is_dir() else None
    version, imported = import_pipeline(
        args.import_file, frame, args.target, args.out, positive_label=args.approved_value,
        trust=args.trust_module, allow_version_mismatch=args.allow_version_mismatch,
        allow_age_decline=args.allow_age_decline, justification=age_justification, source=str(args.data),
        spec=spec_for(args), declared=parse_declared(args.protected),
        allowed=pair_allowed(args.allow, justifications), proxy_threshold=args.proxy_threshold,
        confirm_label=args.confirm_approved_value)
    report_protection(imported.card)
    card, m = imported.card, imported.card["metrics"]
    print(f"Imported {args.import_file.name} ({', '.join(card['pipeline_steps'])}), made with scikit-learn "
          f"{card['imported']['made_with_sklearn']}.")
    for note in imported.notes:
        print(note if note.startswith("  ") else f"  {note}")
    for warning in imported.warnings:
        print(f"  warning: {warning}")
    if card["imported"]["trusted_modules"]:
        print(f"  trusted: {', '.join(card['imported']['trusted_modules'])} (it must be importable wherever the "
              f"model is served{serving_hint(card['imported']['trusted_modules'])})")
    print(f"On the labelled data ({m['n_test']:,} rows): AUC {m['auc']:.3f}, Brier {m['brier']:.3f}, "
          f"accuracy {percent(m['accuracy'])}, approval rate {percent(m['approval_rate'])} at threshold "
          f"{card['threshold']:.2f}.")
    print(f"  {OVERLAP_NOTE}")
    print(f"Saved version {version} to {args.out} (active).")
    try:
        model_changes(DecisionLog(), args.out).record_activation(
            access.shell(), previous, version, f"imported {args.import_file.name} with train.py --import")
    except (SQLAlchemyError, OSError) as exc:
        print(f"  warning: the model change history could not record this activation ({str(exc)[:160]})",
              file=sys.stderr)
    print(f"Use it:  LOANDESK_MODEL_DIR={args.out} streamlit run streamlit_app.py  |  "
          f"python score.py applicants.csv --model {args.out}  |  python serve.py --model {args.out}")
    return 0


def write_spec_for(args: argparse.Namespace) -> int:
    """--write-spec: a spec for the inputs, never for the target (a spec naming it would describe the label)."""
    if args.data is None:
        raise DataError("--write-spec needs --data: the CSV whose columns it describes")
    frame = read_training_csv(args.data)
    if args.target not in frame.columns:
        raise DataError(f"--write-spec leaves the target out of the spec, and {args.data} has no column "
                        f"{args.target!r} (the default target): name the label column with --target; the columns "
                        f"are: {', '.join(map(str, frame.columns))}")
    features = frame.drop(columns=[args.target])
    path = write_spec(features, args.write_spec)
    print(f"Wrote a column spec for {features.shape[1]} column(s) of {args.data} to {path} (the target "
          f"{args.target} left out); edit it, then train with --target {args.target} --spec {path}")
    return 0


def spec_for(args: argparse.Namespace) -> ColumnSpec | None:
    """--spec, read; an entry for the target is said to be ignored (the training drops it)."""
    if not args.spec:
        return None
    spec = read_spec(args.spec)
    if args.target in spec.columns:
        print(f"note: {args.spec} describes {args.target}, the target: that entry is ignored (a spec describes "
              "the inputs)")
    return spec


def trust_current_folder(modules: list[str]) -> None:
    """A trusted module is looked up in the current folder too, as `python train.py` run from its
    folder would: `python /path/to/train.py` alone puts only train.py's own folder on sys.path."""
    here = str(Path.cwd())
    if modules and here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def serving_hint(trusted: list[str]) -> str:
    """Where the trusted code was found, as the PYTHONPATH that serving it needs."""
    import importlib.util

    folders = []
    for entry in trusted:
        module = entry.partition("=")[2] or entry
        try:
            found = importlib.util.find_spec(module.split(".")[0])
        except (ImportError, ValueError):
            found = None
        origin = getattr(found, "origin", None)
        if origin:
            folders.append(str(Path(origin).resolve().parent.parent if Path(origin).name == "__init__.py"
                               else Path(origin).resolve().parent))
    if not folders:
        return ""
    return f"; e.g. PYTHONPATH={os.pathsep.join(dict.fromkeys(folders))}"


def report_protection(card: dict) -> None:
    """Each protected column, the rule that caught it and what was done with it; proxy warnings."""
    protected = card.get("protected", {})
    columns = protected.get("columns", [])
    if columns:
        print("Protected columns (ECOA / Regulation B):")
        for c in columns:
            line = f"  {c['name']} ({c['basis']}): {c['rule']}; {c['status']}"
            if c.get("justification"):
                line += f" (justification: {c['justification']!r})"
            elif not c["used"]:
                line += "; kept beside the hold-out to measure fairness"
            print(line)
    for raw in protected.get("proxies", []):
        proxy = Proxy.from_dict(raw)
        if proxy.warn:
            print(f"warning: {proxy.sentence()} Leaving {proxy.column} out does not keep it out of the decisions.",
                  file=sys.stderr)


def report(card: dict, out: Path, version: str) -> None:
    m = card["metrics"]
    sel = card["selection"]
    report_protection(card)
    print(f"Trained a {card['model_kind']} model on {card['data']['rows']:,} rows "
          f"({card['data']['source']}).")
    if sel["cv_auc"]:
        print("  cross-validated AUC: " + ", ".join(f"{k} {v:.3f}" for k, v in sel["cv_auc"].items()))
    for note in sel.get("refused", []):
        print(f"  refused {note}")
    print(f"Hold-out ({m['n_test']:,} rows): AUC {m['auc']:.3f}, Brier {m['brier']:.3f}, "
          f"accuracy {percent(m['accuracy'])}, approval rate {percent(m['approval_rate'])} "
          f"at threshold {card['threshold']:.2f}")
    print(f"Saved version {version} to {out} (active).")
    print(f"Load it with:  from model import load_model; model = load_model({str(out)!r})")


def show_versions(out: Path) -> int:
    versions = list_versions(out)
    if not versions:
        print(f"No versions in {out} yet: run `python train.py --out {out}`.")
        return 1
    for v in versions:
        auc = f"AUC {v.auc:.3f}" if v.auc is not None else ""
        mark = "*" if v.active else " "
        print(f"{mark} {v.version}  {v.created_at}  {v.model_kind:8s} {auc}  threshold {v.threshold:.2f}")
    return 0


def activate(out: Path, version: str, note: str = "", quiet: bool = False) -> int:
    """Activate at once (shell access to the folder is trusted), on record in the change history."""
    me = access.shell()
    log = DecisionLog()
    try:
        previous = activate_from_shell(log, out, version, me, note=note)
    except ModelIntegrityError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        print(f"error: nothing was changed: the activation could not be recorded in the model change history "
              f"at {log!r} ({str(exc).splitlines()[0][:160]})", file=sys.stderr)
        return 2
    if not quiet:
        print(f"Active version of {out}: {version} (was {previous}); recorded as {me.label}.")
    return 0


def set_threshold(out: Path, base: str, threshold: float) -> int:
    """--set-threshold: a new version of `base` with another threshold, made active at once (shell access
    to the folder is trusted) and on record in the change history, like --activate."""
    version = copy_with_threshold(out, base, threshold, activate=False)
    if activate(out, version, note=f"threshold {threshold:.2f} set with train.py --set-threshold on {base}",
                quiet=True):
        print(f"Saved version {version} with threshold {threshold:.2f} to {out}, NOT active: make it active once "
              f"the decision log is back with `python train.py --activate {version} --out {out}`.", file=sys.stderr)
        return 2
    print(f"Saved version {version} with threshold {threshold:.2f} to {out} (active); recorded as "
          f"{access.shell().label}.")
    return 0


def show_history(out: Path) -> int:
    history = model_changes(DecisionLog(), out).history()
    if history.empty:
        print(f"No model changes on record for {out} yet.")
        return 0
    for row in history.itertuples():
        change = "" if pd.isna(row.change_id) else f"#{row.change_id} "
        what = f"{row.from_version or '-'} -> {row.to_version or '-'}"
        if row.kind == "threshold":
            what = f"threshold {_pct(row.from_threshold)} -> {_pct(row.to_threshold)}, version {row.to_version}"
        note = f'  "{row.note}"' if isinstance(row.note, str) and row.note else ""
        print(f"{row.at:%Y-%m-%d %H:%M:%S} UTC  {change}{row.action:9s} {row.kind:9s} {row.actor}: {what}{note}")
    return 0


def _pct(value: float | None) -> str:
    return "?" if value is None or pd.isna(value) else percent(value)


if __name__ == "__main__":
    sys.exit(main())
