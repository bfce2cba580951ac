"""Runs a study's paths: in this process (`workers=1`), on a local Dask cluster of worker
processes (`workers=N`), or on an existing Dask cluster (`scheduler="tcp://HOST:PORT"`). Paths
are Dask tasks (a few to a task when there are many: `chunk_size`); a worker keeps one deployed
engine per study and reverts it for every path, and it compiles nothing (the build travels with
the tasks, scattered once). A task lost with its worker is run again elsewhere by Dask, and gives
the same result (a path depends only on the study seed and its index)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
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

_ENGINES: dict[str, StudyEngine] = {}
"""This process's engines, by study fingerprint and backend (a worker's, between tasks)."""


def _fingerprint(study: Study, base_dir: Path, backend: str) -> str:
    text = study.model_dump_json() + str(base_dir.resolve()) + backend
    return hashlib.sha256(text.encode()).hexdigest()


def run_path(study: Study, base_dir: Path, build: BuildResult, backend: str, index: int) -> dict[str, Any]:
    """One path on this process's engine for the study (deployed on first use)."""
    key = _fingerprint(study, base_dir, backend)
    engine = _ENGINES.get(key)
    if engine is None:
        for old in _ENGINES.values():  # one study at a time per process: free the last one's engine
            old.close()
        _ENGINES.clear()
        engine = _ENGINES[key] = StudyEngine(study, build, base_dir, backend)
    return engine.run_path(index)


def run_chunk(study: Study, base_dir: Path, build: BuildResult, backend: str, indices: list[int]) -> list[dict[str, Any]]:
    """A few consecutive paths in one task: fewer messages to the scheduler for short paths."""
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
    LEAN_WORKERS (a nanny passes its config to its worker). Close it when done."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set(LEAN_WORKERS):
        return LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                            dashboard_address=":0")  # a free port: never a clash with another cluster


def run_paths(study: Study, base_dir: Path, build: BuildResult, indices: list[int], *, backend: str = "revm",
              workers: int | None = None, scheduler: str | None = None,
              on_result: Callable[[dict[str, Any]], None] = lambda result: None) -> list[dict[str, Any]]:
    """The results of `indices`, in completion order (`on_result` sees each as it comes). A
    KeyboardInterrupt stops the run; the results so far are on the exception as `.results`."""
    results: list[dict[str, Any]] = []
    try:
        if scheduler is None and (workers or default_workers()) == 1:
            for index in indices:
                results.append(run_path(study, base_dir, build, backend, index))
                on_result(results[-1])
            return results
        _run_on_dask(study, base_dir, build, indices, backend, workers, scheduler, results, on_result)
        return results
    except KeyboardInterrupt as exc:
        exc.results = results  # type: ignore[attr-defined]
        raise


def _run_on_dask(study: Study, base_dir: Path, build: BuildResult, indices: list[int], backend: str,
                 workers: int | None, scheduler: str | None, results: list, on_result: Callable) -> None:
    from dask.distributed import Client, as_completed

    cluster = local_cluster(workers) if scheduler is None else None
    client = Client(cluster if cluster is not None else scheduler)
    try:
        shared_build = client.scatter(build, broadcast=True)
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
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
