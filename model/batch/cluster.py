"""The Dask cluster a run uses, checked before a row is scored, and its failures said in one line.

A real cluster fails in ways a local one does not: a scheduler that cannot unpickle LoanDesk's
tasks (the project is not installed there), workers that cannot import it or run other versions,
a scheduler that does not answer or goes away mid-run. Dask reports each as a traceback from
deep inside; here each becomes an `EngineError` naming the process and what to install, raised
before any part is submitted (or, for a scheduler lost mid-run, as soon as it is lost), so that
`score_dataset` removes its output and counts nothing.
"""

from __future__ import annotations

import contextlib
import os
import warnings

from model.core.errors import EngineError, WorkerModelError

from .workers import SCHEDULER_PACKAGES, ModelSpec, check_worker, differences, process_facts

# Dask's nanny sets MALLOC_TRIM_THRESHOLD_ for its workers, which turns off glibc's adaptive mmap
# threshold: every array over 128 KiB is then mapped and unmapped afresh, and a worker spent about
# 5x the system time of the same work in one process (530,000 page faults for 2M rows, against
# 40,000). A fixed 64 MiB threshold brings it back in line. Set it on a real cluster's workers too.
WORKER_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": 1 << 26}
INSTALL = "install this project there (the same requirements.txt, the project folder on its PYTHONPATH)"


def local_cluster(workers: int):
    """A LocalCluster of `workers` processes with one thread each (the parts are the parallelism)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENVIRONMENT.items()}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)


class connected:
    """The client to use: the caller's, one connected to `scheduler`, or a local cluster started here.

    Connecting waits `distributed.comm.timeouts.connect` (30 s unless configured, e.g.
    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s) for a scheduler that does not answer."""

    def __init__(self, client, scheduler: str | None, workers: int | None):
        self.client, self.scheduler, self.workers = client, scheduler, workers
        self._owned: list = []

    def __enter__(self):
        if self.client is not None:
            return self.client
        from distributed import Client

        if self.scheduler:
            try:
                with warnings.catch_warnings():  # Dask's table of mismatched versions: check_cluster says it in a line
                    warnings.filterwarnings("ignore", message="Mismatched versions")
                    client = Client(self.scheduler)
            except (OSError, TimeoutError, ValueError) as exc:
                raise EngineError(f"no Dask scheduler answers at {self.scheduler}: {one_line(exc)}") from None
            self._owned = [client]
            return client
        cluster = local_cluster(self.workers or os.cpu_count() or 1)
        client = Client(cluster)
        self._owned = [client, cluster]
        return client

    def __exit__(self, *exc) -> None:
        for thing in self._owned:
            with contextlib.suppress(Exception):  # a scheduler already gone: nothing left to close
                thing.close(timeout=10)


def check_cluster(cli, spec: ModelSpec) -> list[str]:
    """The scheduler and every worker run what the driver runs, and every worker holds the model;
    returns the workers' addresses. Any difference stops the run before a row is scored."""
    address = getattr(cli.scheduler, "address", "") or "the scheduler"
    ours = process_facts()
    try:
        theirs = cli.run_on_scheduler(process_facts)
    except Exception as exc:  # whatever the scheduler could not do is said in one line
        raise EngineError(f"the Dask scheduler at {address} cannot run LoanDesk's tasks ({one_line(exc)}): "
                          f"{INSTALL} as on the workers") from None
    differ = differences(theirs, ours, SCHEDULER_PACKAGES)
    if differ:
        raise EngineError(f"the Dask scheduler at {address} runs {', '.join(differ)}: install the same "
                          "LoanDesk and requirements.txt on the scheduler as on the driver")
    info = cli.scheduler_info(n_workers=-1) if _takes_n_workers(cli) else cli.scheduler_info()
    names = list(info["workers"])
    if not names:
        raise EngineError(f"the Dask cluster at {address} has no workers")
    answers = cli.run(check_worker, spec, on_error="return")
    refused = []
    for worker, answer in answers.items():
        if isinstance(answer, ImportError) or "No module named" in str(answer):
            refused.append(f"{worker} cannot import LoanDesk ({str(answer).strip()[:200]}): {INSTALL}")
        elif isinstance(answer, WorkerModelError):
            refused.append(f"{worker}: {str(answer).splitlines()[0]}")
        elif isinstance(answer, BaseException):
            refused.append(f"{worker}: {one_line(answer)}")
        elif not isinstance(answer, dict):
            refused.append(f"{worker} runs another version of LoanDesk: install the same one on every worker")
        elif differ := differences(answer, ours):
            refused.append(f"{worker} runs {', '.join(differ)}")
    if refused:
        raise EngineError(f"{len(refused)} of {len(answers)} worker(s) refused the model, so nothing was scored: "
                          + "; ".join(refused))
    return names


def lost_scheduler(cli, exc: BaseException) -> EngineError | None:
    """The error to raise when `exc` means the scheduler went away mid-run, else None."""
    from distributed.comm.core import CommClosedError

    status = str(getattr(cli, "status", ""))
    cancelled = type(exc).__name__ in ("CancelledError", "FutureCancelledError")
    gone = cancelled or isinstance(exc, CommClosedError | OSError) or status in ("closed", "closing", "connecting")
    if gone and (status != "running" or cancelled):
        address = getattr(cli.scheduler, "address", "") or "the scheduler"
        why = "the connection was lost" if cancelled else one_line(exc)
        return EngineError(f"the Dask scheduler at {address} went away mid-run ({why}), so nothing was written "
                           "or counted: start it again and rerun")
    return None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240]}" if text else type(exc).__name__


def _takes_n_workers(cli) -> bool:
    import inspect

    return "n_workers" in inspect.signature(cli.scheduler_info).parameters
