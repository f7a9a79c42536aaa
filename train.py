"""Train a loan-approval pipeline and save it as a new, verified model version.

    python train.py                                   # the built-in applicants
    python train.py --data applicants.csv --target approved --positive-label yes --out artifacts/my_model
    python train.py --list                            # the versions kept, the active one marked
    python train.py --activate VERSION                # make a version active (roll back or forward)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.core.formatting import percent
from model.core.pipeline import MonotonicityError
from model.registry.store import (
    ModelIntegrityError,
    activate_version,
    default_model_dir,
    list_versions,
    save_version,
)
from model.training.data import DataError, read_training_csv, split_target
from model.training.train import parse_monotone, train, train_builtin


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a CSV to train on (default: the built-in applicants)")
    p.add_argument("--target", default="approved", help="the label column (default: approved)")
    p.add_argument("--positive-label", help="the target value that means approved (e.g. yes, 1)")
    p.add_argument("--model", choices=["logistic", "gbm", "auto"], default="auto",
                   help="auto picks the kind with the better cross-validated AUC (default)")
    p.add_argument("--out", type=Path, default=default_model_dir(),
                   help=f"the model folder; versions are kept inside it (default: {default_model_dir()})")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--test-size", type=float, default=0.2, help="hold-out share (default: 0.2)")
    p.add_argument("--rows", type=int, default=5000, help="rows of built-in data to generate")
    p.add_argument("--monotone", help="directions for your own columns, e.g. income=+1,loan_amount=-1")
    p.add_argument("--activate", metavar="VERSION", help="make VERSION the active one and exit")
    p.add_argument("--list", action="store_true", help="list the versions and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.list:
            return show_versions(args.out)
        if args.activate:
            activate_version(args.out, args.activate)
            print(f"Active version of {args.out}: {args.activate}")
            return 0
        if args.data is None:
            trained = train_builtin(seed=args.seed, rows=args.rows, model=args.model, test_size=args.test_size)
        else:
            frame = read_training_csv(args.data)
            features, y, positive = split_target(frame, args.target, args.positive_label)
            trained = train(features, y, target=args.target, positive_label=positive, model=args.model,
                            seed=args.seed, test_size=args.test_size,
                            monotone=parse_monotone(args.monotone), source=str(args.data))
        version = save_version(args.out, trained.pipeline, trained.card, trained.holdout)
    except (DataError, MonotonicityError, ModelIntegrityError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report(trained.card, args.out, version)
    return 0


def report(card: dict, out: Path, version: str) -> None:
    m = card["metrics"]
    sel = card["selection"]
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


if __name__ == "__main__":
    sys.exit(main())
