"""`atlas build --ray`: one Ray task per unit (layer, kind); workers open the model themselves.

Workers return Arrow tables and the driver writes them, so the partitions are the serial build's
and no shared file system is needed between the cluster's machines.
"""

from __future__ import annotations

from pathlib import Path

from embspace.atlas.units import Unit, Workspace, compute_unit
from embspace.atlas.write import write_unit
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import open_model
from embspace.runtime import configure

# Per worker process: the opened model, reused by every task that process runs (a Ray worker
# lives for many tasks; opening MiniLM costs ~1 s, a 7B model much more).
_WORKER_WORKSPACES: dict[tuple, Workspace] = {}


def import_ray():
    try:
        import ray
    except ImportError:
        raise EmbspaceError("--ray needs Ray: pip install -r requirements-ray.txt (or pip install .[ray]).") from None
    return ray


def model_source(workspace: Workspace) -> tuple[str, str | None, str]:
    """(source, revision, embedding) a worker passes to open_model: a local directory by path, else the id."""
    info = workspace.model.info
    source = info.path if info.origin == "local" else info.source
    return source, info.revision, info.embedding


def worker_unit(source: str, revision: str | None, embedding: str, k: int, device: str, unit: Unit) -> dict:
    """Runs in a Ray worker: the unit's tables, the model opened once per process."""
    configure(threads=1)  # one core per task: Ray schedules tasks by num_cpus=1
    key = (source, revision, embedding, k, device)
    if key not in _WORKER_WORKSPACES:
        model = open_model(source, revision=revision, embedding=embedding)
        _WORKER_WORKSPACES[key] = Workspace(model, k, device)
    return compute_unit(_WORKER_WORKSPACES[key], unit)


def run_on_ray(workspace: Workspace, units: list[Unit], directory: Path, address: str | None, bar) -> None:
    """Submit every unit, write each result as it arrives (the driver holds the build lock)."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    gpus = 1 if workspace.device.startswith("cuda") else 0
    task = ray.remote(num_cpus=1, num_gpus=gpus)(worker_unit)
    source, revision, embedding = model_source(workspace)
    pending = {task.remote(source, revision, embedding, workspace.k, workspace.device, unit): unit for unit in units}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            pending.pop(ref)
            write_unit(directory, ray.get(ref))
            bar.update(1)
