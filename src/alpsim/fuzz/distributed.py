"""Where fuzz runs run: in this process (one worker), on a local Dask cluster of single-threaded
worker processes (`workers=N`, alpsim's study cluster), or on an existing cluster (`scheduler`).
A worker keeps its compiled build and its deployed system per chain between runs (fuzz.runner,
fuzz.machine), so a run costs only its steps. Results come back in completion order; the
session sorts them by run index, so the same runs give the same report on any number of workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

Task = tuple[Callable[..., dict], tuple]


class TaskPool:
    """`results(tasks)`: each task's result as it completes."""

    def __init__(self, client: Any = None, workers: int = 1):
        self.client = client
        self.workers = workers

    def results(self, tasks: list[Task]) -> Iterator[dict]:
        if self.client is None:
            for fn, args in tasks:
                yield fn(*args)
            return
        from dask.distributed import as_completed

        futures = [self.client.submit(fn, *args, pure=False) for fn, args in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


@contextmanager
def task_pool(workers: int = 1, scheduler: str | None = None) -> Iterator[TaskPool]:
    """A pool of `workers` local processes (1: this process) or the cluster at `scheduler`."""
    if scheduler is None and workers == 1:
        yield TaskPool()
        return
    from dask.distributed import Client

    from ..study.distributed import local_cluster

    cluster = local_cluster(workers) if scheduler is None else None
    client = Client(cluster if cluster is not None else scheduler, timeout="20s")
    try:
        n = len(client.scheduler_info().get("workers", {})) or workers
        yield TaskPool(client, n)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
