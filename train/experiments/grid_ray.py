"""--backend ray: each run of the grid is a Ray task that runs the same training command as the
local pool (python main.py --mode train ...), so results land in the same run folders.

With --address HOST:PORT the tasks go to that cluster; its machines must see this checkout, the
raw data and the run folders at the same paths (a shared filesystem) and have the same Python
environment. Without --address a local Ray instance is started and stopped again.
Needs `pip install -r requirements-ray.txt`. The grid (grid.py) imports this module, never the
other way round: it hands over the commands and runs its pool over `ray_launcher`.
"""
import contextlib
import os
import subprocess
from pathlib import Path

from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_command(command, out_log, err_log, cwd):
    """The Ray task: run one training command, stdout and stderr into its log files; its exit status."""
    os.makedirs(os.path.dirname(out_log), exist_ok=True)
    with open(out_log, "w", encoding="utf-8") as out, open(err_log, "w", encoding="utf-8") as err:
        return subprocess.run(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"), check=False).returncode


class RayLauncher:
    """start / poll / stop of run_pool over Ray tasks; each task asks for `cpus` CPUs and `gpus` of a GPU."""

    def __init__(self, ray, command_for, cpus, gpus):
        self.ray, self.command_for = ray, command_for
        self.task = ray.remote(run_command).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        self.cwd = os.getcwd()

    def start(self, cell):
        out_log, err_log = cell.logs
        return self.task.remote(self.command_for(cell), str(out_log.resolve()), str(err_log.resolve()), self.cwd)

    def poll(self, ref):
        ready, _ = self.ray.wait([ref], timeout=0)
        if not ready:
            return None
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as err:   # the worker died, the task was cancelled, ...
            return f"ray: {str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}"

    def stop(self, refs):
        for ref in refs:
            self.ray.cancel(ref, force=True)   # kills the worker; its training process gets SIGTERM


@contextlib.contextmanager
def ray_launcher(command_for, jobs, address=None, cpus=1, gpus=0.0):
    """A RayLauncher for the grid's pool (grid.run_pool), at most `jobs` runs at once, inside a
    Ray session: the cluster at `address`, else a local Ray started here and stopped after."""
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install -r requirements-ray.txt") from None
    env = {k: v for k, v in os.environ.items() if k.startswith("ABSA_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    started_here = not ray.is_initialized()
    if started_here:
        options = {"address": address} if address else {"num_cpus": max(jobs * cpus, os.cpu_count() or 1)}
        try:
            ray.init(**options, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
        except (ConnectionError, ValueError, RuntimeError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"--backend ray: cannot start or reach Ray{f' at {address}' if address else ''} "
                            f"({reason})") from None
    try:
        yield RayLauncher(ray, command_for, cpus, gpus)
    finally:
        if started_here:
            ray.shutdown()
