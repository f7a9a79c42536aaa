"""Serve the active model over HTTP for the bank's other systems.

    python serve.py [--host 127.0.0.1] [--port 8000] [--model artifacts/loan_approval_model]

POST /v1/decisions with an applicant's fields as JSON; the interactive docs are at /docs.
Set LOANDESK_API_KEYS=key1,key2 to require an X-API-Key header.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from api import create_app
from model.artifact import ModelIntegrityError, default_model_dir, load_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=Path, default=default_model_dir(), help="the model folder (its active version)")
    args = p.parse_args(argv)
    try:
        model = load_model(args.model)  # refuse to start on a model that cannot be trusted
    except ModelIntegrityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Serving {model.name} version {model.version} on http://{args.host}:{args.port} (docs at /docs)")
    uvicorn.run(create_app(args.model), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
