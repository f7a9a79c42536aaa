"""Serve the active model over HTTP to the bank's other systems, and manage their API keys.

    python serve.py --new-key origination    # prints a new API key once (its last line)
    python serve.py                          # serves on http://127.0.0.1:8000; docs at /docs
    python serve.py --host 0.0.0.0 --port 8000 --workers 2 --model artifacts/loan_approval_model
    python serve.py --revoke-key origination # the key stops working within seconds
    python serve.py --list-keys
    python serve.py --replay data/unsent/decisions-....jsonl   # decisions saved while the log was down

Decisions go to the decision log (LOANDESK_DB_URL; a SQLite file by default), with the key's name
as their source, and each is answered only once it is there (or, while the log cannot be written,
in the local journal in LOANDESK_UNSENT_DIR, written to the log automatically when it is back).
Ctrl-C or SIGTERM finishes the requests in flight, then exits. Exit status: 0 done (a stop by
SIGTERM or Ctrl-C included), 1 the model cannot be trusted (or, for the key and replay commands,
the database cannot be used), 2 for a wrong command line or key name.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from api.keys import KeyProblem, KeyStore
from model.core import config
from model.core.errors import LoanDeskError, ModelFolderError
from model.records.batches import replay_file
from model.records.log import DecisionLog
from model.registry.store import (
    ModelIntegrityError,
    default_model_dir,
    load_model,
    may_train_builtin,
    model_folder_problem,
)
from model.training.workflows import ensure_model


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.new_key is not None or args.revoke_key is not None or args.list_keys:
        return _keys(args)
    if args.replay is not None:
        return _replay(args.replay)
    given_as = "--model" if args.model is not None else "LOANDESK_MODEL_DIR" if config.model_dir_given() else ""
    args.model = args.model if args.model is not None else default_model_dir()
    try:
        if may_train_builtin(args.model):
            print("No model yet: training the built-in one (a few seconds)...", flush=True)
            ensure_model(args.model)
        problem = model_folder_problem(args.model, given_as)
        if problem:
            raise ModelFolderError(problem)
        model = load_model(args.model)  # refuse to start on a model that cannot be trusted
    except ModelIntegrityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from api.server import run

    os.environ["LOANDESK_MODEL_DIR"] = str(args.model.resolve())  # for every worker process
    print(f"Serving {model.name} version {model.version} on http://{args.host}:{args.port} "
          f"with {args.workers} worker(s); docs at /docs. Ctrl-C stops.", flush=True)
    # uvicorn shuts down gracefully on SIGTERM or Ctrl-C (requests in flight answered, the log
    # flushed), then raises the signal again to the handler it found: ours exits with status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    run(args.host, args.port, args.workers)  # uvloop and httptools, with deadlines for slow clients
    return 0


def _stopped(signum: int, _frame) -> None:
    print(f"Stopped on {signal.Signals(signum).name}.", flush=True)
    raise SystemExit(0)


def _keys(args: argparse.Namespace) -> int:
    store = KeyStore(DecisionLog())
    try:
        if args.new_key is not None:
            key = store.create(args.new_key)
            print(f"New API key for {args.new_key!r}. It is shown this once and stored only as a hash; "
                  "send it as 'Authorization: Bearer KEY'. The key:")
            print(key)
        elif args.revoke_key is not None:
            store.revoke(args.revoke_key)
            print(f"Revoked the key {args.revoke_key!r}; running servers refuse it within seconds.")
        else:
            rows = store.listing()
            for r in rows:
                state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "live"
                print(f"{r['name']:<40} created {r['created_at']:%Y-%m-%d %H:%M}  {state}")
            if not rows:
                print("No API keys yet: python serve.py --new-key NAME")
    except KeyProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database: unreachable, read-only, ...
        print(f"error: the key table cannot be used: {str(exc).splitlines()[0][:200]}", file=sys.stderr)
        return 1
    return 0


def _replay(path: Path) -> int:
    try:
        done = replay_file(path, DecisionLog())
    except (OSError, ValueError, LoanDeskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {done.written:,} decision(s) from {path} to the decision log"
          + (f" ({done.skipped:,} already on record)" if done.skipped else "") + ".")
    if done.left_out:
        print(f"Left out {done.left_out:,} line(s) after the file's last seal: a write torn by a crash, "
              "never answered to anyone.")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=_positive, default=1, help="server processes (default 1)")
    p.add_argument("--model", type=Path, help="the model folder (its active version); default: LOANDESK_MODEL_DIR, "
                   "else the built-in model's folder, trained on a first start")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--new-key", metavar="NAME", help="create an API key for a calling system, print it, exit")
    keys.add_argument("--revoke-key", metavar="NAME", help="revoke the API key of that name, exit")
    keys.add_argument("--list-keys", action="store_true", help="list the API keys (names and dates), exit")
    keys.add_argument("--replay", type=Path, metavar="FILE", help="write a file of unsent decisions to the log")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be from 1 to 64")
    return value


if __name__ == "__main__":
    sys.exit(main())
