"""``certify -j N --cluster ADDRESS`` against a real dask scheduler and two workers started
as processes on this machine (``dask scheduler``, ``dask worker``): the same certificate as
``-j N`` locally, timings aside."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_scale_out import EFFICIENCY_MUTANT, certificate, cli, traces

distributed = pytest.importorskip("distributed", reason="the [cluster] extra is not installed")

ROOT = Path(__file__).parent.parent
BUDGET = ("--max-examples", "160", "--seed", "5", "--no-bench", "-q")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    dask = Path(sys.executable).with_name("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    started = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port",
                                 address.rsplit(":", 1)[1], "--dashboard-address", ":0"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)]
    try:
        started += [subprocess.Popen([str(dask), "worker", address, "--nthreads", "1",
                                      "--nworkers", "1", "--name", f"w{i}",
                                      "--dashboard-address", ":0"],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL) for i in (1, 2)]
        deadline = time.monotonic() + 90
        while True:
            try:
                with distributed.Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield address
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_the_cluster_certifies_what_j4_certifies_locally(scheduler: str,
                                                         tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "cluster"
    done = cli("certify", "--adapter", EFFICIENCY_MUTANT, *BUDGET, "-j", "4", "--out", local)
    assert done.returncode == 0, done.stderr
    done = cli("certify", "--adapter", EFFICIENCY_MUTANT, *BUDGET, "-j", "4", "--cluster",
               scheduler, "--out", remote)
    assert done.returncode == 0, done.stderr
    assert certificate(local) == certificate(remote)
    assert traces(local) == traces(remote) != {}


def test_a_mutant_is_caught_on_the_cluster_and_its_trace_replays(scheduler: str,
                                                                 tmp_path: Path) -> None:
    spec = "tests/gallery.py:StaleLayerMarker"
    out = tmp_path / "b"
    done = cli("certify", "--adapter", spec, "--max-examples", "800", "--seed", "3",
               "--no-bench", "-j", "4", "--cluster", scheduler, "--out", out)
    assert done.returncode == 1, done.stderr
    assert "SAFE-3" in done.stdout
    assert "slices on the cluster" in done.stderr  # the plain progress lines say where
    replayed = cli("replay", out / "traces" / "SAFE-3.json", "--adapter", spec)
    assert replayed.returncode == 1 and "Result: SAFE-3 recurs." in replayed.stdout


def test_no_scheduler_is_a_one_line_error(tmp_path: Path) -> None:
    done = cli("certify", "--adapter", "reference", "--max-examples", "10", "-j", "2",
               "--cluster", f"tcp://127.0.0.1:{_free_port()}", "--out", tmp_path / "b")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("wcifs-conformance: error: no dask scheduler answers at")


def test_a_local_cluster(tmp_path: Path) -> None:
    done = cli("certify", "--adapter", "reference", "--max-examples", "60", "--seed", "2",
               "--no-bench", "-q", "-j", "2", "--cluster", "local", "--out", tmp_path / "b")
    assert done.returncode == 0, done.stdout + done.stderr
    assert certificate(tmp_path / "b")["run"]["workers"] == 2
