"""Runs a study's paths: in this process (`workers=1`), on a local Dask cluster of worker
processes (`workers=N`, forked on Linux), or on an existing Dask cluster
(`scheduler="tcp://HOST:PORT"`). Paths are Dask tasks (a few to a task when there are many:
`chunk_size`); a worker keeps one deployed engine per study and reverts it for every path, and it
compiles nothing (the build travels with the tasks, scattered once). A task lost with its worker
is run again elsewhere by Dask, and gives the same result (a path depends only on the study seed
and its index)."""

from __future__ import annotations

import gc
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..compiler import BuildResult
from .runner import StudyEngine
from .spec import Study

LEAN_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
}
"""Dask settings for alpsim's local cluster (its scheduler, nannies and workers), for work that
keeps every core busy with pure-Python EVM paths and no dashboard to feed:
- no statistical profiler (it samples the running task's stack every 10 ms);
- the event loop's health tick every second, not every 20 ms;
- the memory limits checked every second, not every 100 ms;
- host metrics every 5 s, not every 0.5 s, and no disk I/O sampling.
Each woke a thread that took the interpreter from the path; together the main process's CPU
during a study fell from 2.3-2.8 s to 0.9-1.0 s over a 40-path run on two workers. Workers you
start yourself read the same settings from the environment (docs/studies.md)."""

START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
"""How alpsim's local cluster starts its worker processes. On Linux a worker is forked from the
process that runs the study: it starts with alpsim and its libraries already imported (a spawned
worker imports them again, about 1.5 s of its first task, and its close is slower too), and the
first path comes about 2 s sooner. Dask starts workers from a thread of their own, so no lock of
the parent's event loop is held in the child. Elsewhere (macOS) fork is unsafe: spawn."""

_ENGINES: dict[str, StudyEngine] = {}
"""This process's engines, by study fingerprint and backend (a worker's, between tasks)."""
_ENGINES_PID = os.getpid()
_INHERITED: list[dict[str, StudyEngine]] = []
"""A forked worker's copy of its parent's engines: kept, never used nor closed (an anvil engine's
node belongs to the parent, and closing it would stop the parent's node)."""


def _engines() -> dict[str, StudyEngine]:
    """This process's engines; in a forked worker, a fresh set (the parent's are put aside)."""
    global _ENGINES, _ENGINES_PID
    if _ENGINES_PID != os.getpid():
        _INHERITED.append(_ENGINES)
        _ENGINES, _ENGINES_PID = {}, os.getpid()
    return _ENGINES


def engines_in_process() -> dict[str, list]:
    """What this process holds: {"own": its engines' keys (study fingerprint and backend),
    "inherited": the keys of each set put aside from a parent it was forked from}, sorted."""
    return {"own": sorted(_ENGINES), "inherited": [sorted(engines) for engines in _INHERITED]}


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Runs paths with the objects that exist before them out of the garbage collector's reach
    (`gc.freeze`, undone after). A path allocates enough for about 50 collections, and each full
    one walks every object of the process (some 150,000 in a study's process): paths ran 10% to
    17% faster frozen. Does nothing if the heap is already frozen by someone else."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _fingerprint(study: Study, base_dir: Path, backend: str) -> str:
    text = study.model_dump_json() + str(base_dir.resolve()) + backend
    return hashlib.sha256(text.encode()).hexdigest()


def run_path(study: Study, base_dir: Path, build: BuildResult, backend: str, index: int) -> dict[str, Any]:
    """One path on this process's engine for the study (deployed on first use)."""
    key = _fingerprint(study, base_dir, backend)
    engines = _engines()
    engine = engines.get(key)
    if engine is None:
        for old in engines.values():  # one study at a time per process: free the last one's engine
            old.close()
        engines.clear()
        engine = engines[key] = StudyEngine(study, build, base_dir, backend)
    return engine.run_path(index)


def run_chunk(study: Study, base_dir: Path, build: BuildResult, backend: str,
              indices: list[int]) -> list[dict[str, Any]]:
    """A few consecutive paths in one task: fewer messages to the scheduler for short paths."""
    with heap_frozen():
        return [run_path(study, base_dir, build, backend, index) for index in indices]


TASK_STEPS = 480
"""A task holds at most this many keeper steps (paths x steps per path), about half a second of
a short path's work: more would leave one worker alone with the last task."""


def chunk_size(paths: int, workers: int, steps_per_path: int = 1) -> int:
    """Paths per task: at least 8 tasks a worker (a lost worker loses little and the load
    evens out), at most 8 paths and TASK_STEPS steps a task (long paths travel one a task)."""
    return max(1, min(8, paths // (workers * 8), TASK_STEPS // max(1, steps_per_path)))


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def local_cluster(workers: int | None = None) -> Any:
    """alpsim's local Dask cluster: `workers` single-threaded worker processes (default one per
    core: an EVM path is pure Python and numpy work), its scheduler, nannies and workers on
    LEAN_WORKERS (a nanny passes its config to its worker), started by START_METHOD. Close it
    when done."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({**LEAN_WORKERS, "distributed.worker.multiprocessing-method": START_METHOD}):
        return LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                            dashboard_address=":0")  # a free port: never a clash with another cluster


RunPaths = Callable[..., list[dict[str, Any]]]
"""`run(study, base_dir, build, indices, backend=..., on_result=...)`: the results of `indices`,
in completion order (`on_result` sees each as it comes). A KeyboardInterrupt stops the run; the
results so far are on the exception as `.results`."""


@contextmanager
def path_runner(workers: int | None = None, scheduler: str | None = None) -> Iterator[RunPaths]:
    """Runs paths in this process (`workers=1`, or one core), on a local cluster of `workers`
    processes, or on the cluster at `scheduler`, for as many runs as needed (a sweep's cells): a
    local cluster starts once, and the build is scattered once."""
    if scheduler is None and (workers or default_workers()) == 1:
        yield _in_process
        return
    from dask.distributed import Client

    cluster = local_cluster(workers) if scheduler is None else None
    client = Client(cluster if cluster is not None else scheduler)
    scattered: dict[int, Any] = {}

    def on_dask(study: Study, base_dir: Path, build: BuildResult, indices: list[int], *, backend: str = "revm",
                on_result: Callable[[dict[str, Any]], None] = lambda result: None) -> list[dict[str, Any]]:
        if id(build) not in scattered:
            scattered[id(build)] = client.scatter(build, broadcast=True)
        return _collecting(lambda results: _run_on_dask(client, study, base_dir, scattered[id(build)], indices,
                                                        backend, results, on_result))
    try:
        yield on_dask
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_paths(study: Study, base_dir: Path, build: BuildResult, indices: list[int], *, backend: str = "revm",
              workers: int | None = None, scheduler: str | None = None,
              on_result: Callable[[dict[str, Any]], None] = lambda result: None) -> list[dict[str, Any]]:
    """One run of `indices` (see RunPaths) on a `path_runner` of its own."""
    with path_runner(workers, scheduler) as run:
        return run(study, base_dir, build, indices, backend=backend, on_result=on_result)


def _collecting(fill: Callable[[list], None]) -> list[dict[str, Any]]:
    """`fill(results)`'s results; on a KeyboardInterrupt, those so far ride on the exception."""
    results: list[dict[str, Any]] = []
    try:
        fill(results)
    except KeyboardInterrupt as exc:
        exc.results = results  # type: ignore[attr-defined]
        raise
    return results


def _in_process(study: Study, base_dir: Path, build: BuildResult, indices: list[int], *, backend: str = "revm",
                on_result: Callable[[dict[str, Any]], None] = lambda result: None) -> list[dict[str, Any]]:
    def fill(results: list) -> None:
        with heap_frozen():
            for index in indices:
                results.append(run_path(study, base_dir, build, backend, index))
                on_result(results[-1])
    return _collecting(fill)


def _run_on_dask(client: Any, study: Study, base_dir: Path, shared_build: Any, indices: list[int], backend: str,
                 results: list, on_result: Callable) -> None:
    from dask.distributed import as_completed

    workers_now = max(1, len(client.scheduler_info().get("workers", {})))
    size = chunk_size(len(indices), workers_now, study.horizon.steps)
    key = _fingerprint(study, base_dir, backend)[:16]
    futures = [client.submit(run_chunk, study, base_dir, shared_build, backend, chunk,
                             key=f"alpsim-paths-{chunk[0]}-{chunk[-1]}-{key}", pure=False)
               for chunk in (indices[i:i + size] for i in range(0, len(indices), size))]
    try:
        for future in as_completed(futures):
            for result in future.result():
                results.append(result)
                on_result(result)
    except KeyboardInterrupt:
        client.cancel(futures)
        raise
