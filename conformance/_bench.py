"""Benchmarks (SPEC §9): the adapter's cache hot path, suite throughput, and scale.

Two ways in:

- :func:`hot_path` is a quick in-process measurement (a fraction of a second, no pytest) of
  the hot path, for the certificate;
- :func:`run_bench` runs the whole pytest-benchmark suite (``conformance/_benchmarks``) in a
  subprocess and writes ``benchmark.json``: pytest-benchmark's JSON plus a ``"wcifs"``
  object with the ratios, the targets and the adapter's identity. It backs
  ``wcifs-conformance bench --adapter SPEC [--out DIR]``; ``tox -e bench`` runs the same
  modules directly.

Nothing here asserts on time: figures are reported, compared with :data:`TARGETS`, and
the comparison is written down, never raised.

The hot path is measured black-box, for any adapter: the model drives it through a layer
install (one file, scanned as it is laid out), a container start and a first open; the
``PostCreate`` of a second open of the same file is the realistic cache hit, and the
``PreCreate`` before it is a create in container context. The floor is ``dict.get`` of that
file's backing key (``FileId + VolumeGuid``, the 32 bytes the ECP carries) in a dict that
holds an equal but distinct key object, which is the lookup an adapter's own cache makes:
its key was built from the install scan, and every ECP brings a fresh ``bytes``.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import timeit
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference import ops as O
from reference.adapter import reference_factory
from reference.contract import (
    AdapterInfo,
    FileChange,
    PostCreate,
    PreCreate,
    ScanOrigin,
    ScanOutcome,
    ScanResult,
    Services,
    Verdict,
)
from reference.model import World

from ._errors import AdapterStartError, ConformanceError, ProtocolError
from ._faults import DEFAULT_CALL_TIMEOUT, AdapterFault
from ._loading import adapter_info, instantiate
from ._version import __version__
from ._watchdog import watchdog

__all__ = [
    "BENCH_DIR",
    "TARGETS",
    "BenchmarkError",
    "HotPathCase",
    "adapter_identity",
    "cache_bytes_per_entry",
    "cache_hit_case",
    "engine_throughput",
    "floor_lookup",
    "hot_path",
    "machine_info",
    "noop_machine_throughput",
    "run_bench",
    "scale",
    "summarize",
]

Factory = Callable[[], Any]

#: The pytest-benchmark modules (``bench_*.py``), shipped inside the package.
BENCH_DIR = Path(__file__).resolve().with_name("_benchmarks")

#: What the figures should be (the issue's targets); checked and reported, never asserted.
TARGETS: dict[str, tuple[str, float]] = {
    "reference_post_create_ratio": ("<=", 3.0),
    "reference_post_create_ratio_tight_loop": ("<=", 3.0),
    "throughput_ratio": (">=", 0.5),
    "start_time_ratio_big_to_small_layer": ("<=", 1.5),
    "start_memory_ratio_big_to_small_layer": ("<=", 1.5),
    "cache_bytes_per_entry": ("<=", 110.0),
}

#: The standard scale scenario of SPEC §9.
SCALE_FILES = 200_000
SCALE_CONTAINERS = 1_000
SCALE_FRACTION = 0.01
CACHE_ENTRIES = 1_000_000
#: Examples per throughput run (fixed, so that figures compare across suite versions).
THROUGHPUT_EXAMPLES = 1_000
THROUGHPUT_SEED = 20_240_901

_NO_HIT = ("it answered SCAN to the second open of a local-layer file that was scanned clean "
           "as the layer was laid out: it has no cache hit to measure")


class BenchmarkError(ConformanceError):
    """The benchmark run could not be completed, or produced no usable report."""

    exit_code = 3


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# --- the hot path -----------------------------------------------------------------------
#: One adapter call as the model made it: the hook, its argument, the adapter's answer.
#: ``start``'s argument is the signature version its services reported.
Event = tuple[str, object, object]

#: The model's operations that prime a cache hit: a one-file local layer laid out (and
#: scanned), a container, and two opens of the file.
PRIMING = (O.InstallLayer(files=1), O.StartContainer(), O.OpenFile(0, 0), O.OpenFile(0, 0))


class _Recorder:
    """Forwards every hook to the adapter and records each call as an :data:`Event`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[Event] = []

    def _call(self, hook: str, argument: object) -> Any:
        answer = getattr(self.inner, hook)(argument)
        self.events.append((hook, argument, answer))
        return answer

    def last(self, hook: str) -> Event | None:
        return next((e for e in reversed(self.events) if e[0] == hook), None)

    def start(self, services: Services) -> None:
        self.events.append(("start", services.signature_version(), None))
        self.inner.start(services)

    def pre_create(self, create: PreCreate) -> Any:
        return self._call("pre_create", create)

    def post_create(self, create: PostCreate) -> Any:
        return self._call("post_create", create)

    def scan_completed(self, result: ScanResult) -> None:
        self._call("scan_completed", result)

    def file_changed(self, change: FileChange) -> None:
        self._call("file_changed", change)

    def signature_updated(self, version: int) -> Any:
        return self._call("signature_updated", version)

    def proactive_scan_completed(self, version: int) -> None:
        self._call("proactive_scan_completed", version)

    def proactive_scan_aborted(self, version: int) -> None:
        self._call("proactive_scan_aborted", version)

    def stop(self) -> None:
        self.inner.stop()
        self.events.append(("stop", None, None))


@dataclass(frozen=True, slots=True)
class HotPathCase:
    """An adapter primed by the model, and the two creates its hot path is made of."""

    adapter: Any
    info: AdapterInfo
    #: The container-context ``PreCreate`` of the second open.
    pre: PreCreate
    #: The ``PostCreate`` of the second open: a local-layer cache hit for a caching adapter.
    post: PostCreate
    #: What the adapter answered to ``post``.
    verdict: object
    #: The backing ``FileId + VolumeGuid`` of the file (what the ECP names).
    key: bytes
    #: Every call that primed it, in order (the native harness replays them).
    events: tuple[Event, ...] = ()

    @property
    def cache_hit(self) -> bool:
        return self.verdict is Verdict.SKIP

    @property
    def note(self) -> str:
        return "" if self.cache_hit else f"{self.info.name}: {_NO_HIT}"


def _make(factory: Factory) -> Any:
    try:
        return instantiate(factory)
    except ConformanceError:
        raise
    except Exception as e:
        raise AdapterStartError(f"the adapter could not be created: {_one_line(e)}") from e


def cache_hit_case(factory: Factory, call_timeout: float = DEFAULT_CALL_TIMEOUT
                   ) -> HotPathCase:
    """Prime a fresh adapter through the model (install a one-file local layer, start a
    container, open the file) and capture the second open of the same file."""
    adapter = _make(factory)
    recorder = _Recorder(adapter)
    step = "start"
    dog = watchdog(call_timeout)
    try:
        world = dog.call("start", World, O.Setup(), recorder)
        for op in PRIMING:
            step = op.kind
            dog.call(step, world.apply, op)
    except AdapterFault as f:
        raise ProtocolError(f"the adapter {f.what} while the hot-path benchmark primed it "
                            f"({step})") from None
    except Exception as e:
        raise ProtocolError(f"the adapter raised {_one_line(e)} while the hot-path benchmark "
                            f"primed it ({step})") from e
    pre, post = recorder.last("pre_create"), recorder.last("post_create")
    if pre is None or post is None or not isinstance(pre[1], PreCreate) or pre[1].silo is None:
        raise BenchmarkError("the model did not produce a container-context open to measure")
    verdict = post[2]
    if not isinstance(verdict, Verdict):
        raise ProtocolError(f"post_create returned {verdict!r}, not a Verdict")
    assert isinstance(post[1], PostCreate)
    backing = world.layers[0].files[O.layer_path(0)]
    return HotPathCase(adapter, adapter_info(adapter), pre[1], post[1], verdict,
                       backing.file_id + backing.volume_guid, tuple(recorder.events))


def floor_lookup(key: bytes, value: int = 1) -> tuple[Callable[[bytes], int | None], bytes]:
    """``(dict.get, key)`` for the floor: a dict holding a copy of ``key`` (equal, not the
    same object, as in any adapter's cache), looked up with ``key`` itself."""
    table = {bytes(bytearray(key)): value}
    return table.get, key


def _timed(name: str, timer: timeit.Timer, number: int,
           call_timeout: float = DEFAULT_CALL_TIMEOUT) -> float:
    """One timed batch; the batch as a whole is under the call timeout (a batch is a few
    milliseconds: the timeout stays far above it, and a per-call guard would be timed too)."""
    try:
        return float(watchdog(call_timeout).call(name, timer.timeit, number))
    except AdapterFault as f:
        raise ProtocolError(f"{name} {f.what} during the hot-path benchmark") from None
    except Exception as e:
        raise ProtocolError(f"{name} raised {_one_line(e)} during the hot-path benchmark"
                            ) from e


def _per_call_ns(calls: Mapping[str, tuple[Callable[[Any], object], object]], seconds: float,
                 repeats: int = 5, call_timeout: float = DEFAULT_CALL_TIMEOUT
                 ) -> dict[str, float]:
    """Best-of-``repeats`` ns per call of each ``f(x)``, timed by one and the same loop
    (``timeit``, garbage collection off), interleaved so drift hits all of them alike."""
    timers = {name: timeit.Timer("f(x)", globals={"f": f, "x": x})
              for name, (f, x) in calls.items()}
    slot = seconds / (len(timers) * (repeats + 1))
    numbers: dict[str, int] = {}
    for name, t in timers.items():
        number = 1
        while True:
            elapsed = _timed(name, t, number, call_timeout)
            if elapsed >= slot / 4 or number >= 10_000_000:
                break
            number *= 8
        numbers[name] = max(1, min(10_000_000, int(number * slot / max(elapsed, 1e-9))))
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(repeats):
        for name, t in timers.items():
            best[name] = min(best[name],
                             _timed(name, t, numbers[name], call_timeout) / numbers[name])
    return {name: value * 1e9 for name, value in best.items()}


def _side(case: HotPathCase, times: Mapping[str, float], prefix: str, floor: float,
          still_hit: bool) -> dict[str, Any]:
    hit = case.cache_hit and still_hit
    post = times.get(f"{prefix} post_create") if hit else None
    pre = times[f"{prefix} pre_create"]
    out: dict[str, Any] = {
        "name": case.info.name,
        "version": case.info.version,
        "cache_hit": hit,
        "post_create_hit_ns": None if post is None else round(post, 1),
        "pre_create_ns": round(pre, 1),
        "post_create_ratio": None if post is None else round(post / floor, 2),
        "pre_create_ratio": round(pre / floor, 2),
    }
    if not case.cache_hit:
        out["note"] = case.note
    elif not still_hit:
        out["note"] = f"{case.info.name}: it stopped answering SKIP while it was measured"
    return out


def hot_path(factory: Factory, *, seconds: float = 0.3,
             call_timeout: float = DEFAULT_CALL_TIMEOUT) -> dict[str, Any]:
    """ns per call of ``post_create`` (local-layer cache hit) and ``pre_create`` (container
    context) for ``factory``'s adapter and for the reference, beside the ``dict.get`` floor
    timed the same way in the same run; ratios are to the floor.

    An adapter that does not answer SKIP has no cache hit: its ``post_create_hit_ns`` and
    ``post_create_ratio`` are None and ``note`` says why.
    """
    ours = cache_hit_case(factory, call_timeout)
    ref = cache_hit_case(reference_factory())
    get, key = floor_lookup(ref.key)
    calls: dict[str, tuple[Callable[[Any], object], object]] = {"floor": (get, key)}
    for prefix, case in (("adapter", ours), ("reference", ref)):
        if case.cache_hit:
            calls[f"{prefix} post_create"] = (case.adapter.post_create, case.post)
        calls[f"{prefix} pre_create"] = (case.adapter.pre_create, case.pre)
    times = _per_call_ns(calls, seconds, call_timeout=call_timeout)
    floor = times["floor"]
    stable = {prefix: not case.cache_hit or _verdict(case, call_timeout) is Verdict.SKIP
              for prefix, case in (("adapter", ours), ("reference", ref))}
    return {
        "unit": "ns",
        "method": "timeit loop of bound-method calls, best of 5, garbage collection off; "
                  "floor and calls timed alike in the same run",
        "floor_dict_get_ns": round(floor, 1),
        "adapter": _side(ours, times, "adapter", floor, stable["adapter"]),
        "reference": _side(ref, times, "reference", floor, stable["reference"]),
        "machine": machine_info(),
    }


def hot_path_for(session: Any, *, seconds: float = 0.3) -> dict[str, Any]:
    """:func:`hot_path` for an opened adapter, without ever loading an isolated one here.

    In-process, the adapter's own methods are timed. An ``exec:`` adapter is timed through
    the protocol: each call is a round trip to its process. An isolated Python or ``lib:``
    adapter is timed in a separate process (the adapter process's own ``--hot-path``),
    under a wall-clock bound, so that what it does there stays there. A ``lib:`` adapter's
    ``post_create`` is also timed natively, beside a native floor (``"native"``), where a
    C compiler is present: through ``ctypes`` the call, not the function, is measured."""
    from ._session import IN_PROCESS, Isolated

    timeout = session.call_timeout
    if session.mode == IN_PROCESS:
        figures = hot_path(session.raw, seconds=seconds, call_timeout=timeout)
        figures["isolation"] = IN_PROCESS
        if session.spec.startswith("lib:"):
            from ._native_bench import native_hot_path

            figures["native"] = native_hot_path(session.spec[4:].strip(), seconds=seconds)
        return figures
    assert isinstance(session, Isolated)
    if session.spec.startswith("exec:"):
        figures = hot_path(session.raw, seconds=seconds, call_timeout=timeout)
        figures["isolation"] = "exec"
        figures["method"] += "; each adapter call is a round trip to the adapter process"
        return figures
    cmd = [*session.argv[:-1], "--hot-path", str(seconds), str(timeout), session.argv[-1]]
    figures = _json_from(cmd, session.env, 60 + 20 * timeout)
    figures["isolation"] = "isolated"
    figures["method"] += "; timed in a separate process"
    return figures


def _json_from(cmd: list[str], env: Mapping[str, str] | None, limit: float) -> dict[str, Any]:
    """Run ``cmd`` (in its own process group, killed after ``limit`` seconds) and return
    the JSON object it prints; its stderr's last line says what went wrong."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(env) if env is not None else None,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProtocolError(f"the hot-path benchmark did not finish within {limit:g} s") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise ProtocolError(lines[-1] if lines else
                            f"the hot-path benchmark exited with status {proc.returncode}")
    try:
        figures = json.loads(out)
    except ValueError:
        raise ProtocolError("the hot-path benchmark printed no JSON") from None
    if not isinstance(figures, dict):
        raise ProtocolError("the hot-path benchmark printed no JSON object")
    return figures


def _verdict(case: HotPathCase, call_timeout: float = DEFAULT_CALL_TIMEOUT) -> object:
    try:
        return watchdog(call_timeout).call("post_create", case.adapter.post_create, case.post)
    except AdapterFault as f:
        raise ProtocolError(f"post_create {f.what} during the hot-path benchmark") from None
    except Exception as e:
        raise ProtocolError(f"post_create raised {_one_line(e)} during the hot-path benchmark"
                            ) from e


# --- identity and machine -----------------------------------------------------------------
def adapter_identity(spec: str, factory: Factory) -> dict[str, str]:
    """What the benchmark report names: the spec, the declared ``AdapterInfo`` and the
    factory it resolved to."""
    info = adapter_info(_make(factory))
    return {
        "spec": spec,
        "name": info.name,
        "version": info.version,
        "factory": f"{getattr(factory, '__module__', '?')}:"
                   f"{getattr(factory, '__qualname__', type(factory).__name__)}",
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "processor": platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


# --- suite throughput ---------------------------------------------------------------------
def engine_throughput(examples: int = THROUGHPUT_EXAMPLES, seed: int = THROUGHPUT_SEED
                      ) -> dict[str, Any]:
    """Checked operations per second of the conformance engine against the reference
    adapter (Hypothesis generation, the model, the oracle and both shadows included)."""
    from ._engine import run_conformance

    result = run_conformance(reference_factory(), "quick", seed=seed, max_examples=examples,
                             spec="reference", workloads=False)
    stats = result.stats
    return {
        "examples": stats["examples"],
        "steps": stats["steps"],
        "creates": stats["creates"],
        "seconds": stats["seconds"],
        "steps_per_second": stats["steps_per_second"],
        "steps_per_example": round(stats["steps"] / max(1, stats["examples"]), 1),
        "conformant": result.levels["conformant"],
    }


def noop_machine_throughput(examples: int = THROUGHPUT_EXAMPLES) -> dict[str, Any]:
    """Rule executions per second of a Hypothesis state machine whose only rule does
    nothing: the framework floor, with the engine's settings and Hypothesis' default
    step count."""
    from hypothesis import HealthCheck, Verbosity, settings
    from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

    steps = [0]

    class NoOp(RuleBasedStateMachine):
        @rule()
        def step(self) -> None:
            steps[0] += 1

    machine_settings = settings(max_examples=examples, deadline=None, database=None,
                                derandomize=True, suppress_health_check=list(HealthCheck),
                                verbosity=Verbosity.quiet, print_blob=False)
    t0 = time.perf_counter()
    run_state_machine_as_test(NoOp, settings=machine_settings)  # type: ignore[no-untyped-call]
    elapsed = time.perf_counter() - t0
    return {
        "examples": examples,
        "steps": steps[0],
        "seconds": round(elapsed, 3),
        "steps_per_second": round(steps[0] / elapsed, 1),
        "steps_per_example": round(steps[0] / examples, 1),
    }


# --- scale --------------------------------------------------------------------------------
class _Tracer:
    """tracemalloc around a phase: bytes still held at its end and its peak, both above
    what was held when it began."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.base = 0

    def begin(self) -> None:
        if self.enabled:
            tracemalloc.reset_peak()
            self.base = tracemalloc.get_traced_memory()[0]

    def end(self) -> tuple[int, int]:
        if not self.enabled:
            return 0, 0
        current, peak = tracemalloc.get_traced_memory()
        return current - self.base, peak - self.base


def _scenario(files: int, containers: int, fraction: float, seed: int, traced: bool
              ) -> dict[str, Any]:
    adapter = reference_factory()()
    world = World(O.Setup(), adapter)
    tracer = _Tracer(traced)
    out: dict[str, Any] = {}

    tracer.begin()
    t0 = time.perf_counter()
    world.apply(O.InstallLayer(files=files))
    out["install_s"] = time.perf_counter() - t0
    out["install_bytes"], out["install_peak_bytes"] = tracer.end()

    tracer.begin()
    t0 = time.perf_counter()
    for _ in range(containers):
        world.apply(O.StartContainer())
    out["start_s"] = time.perf_counter() - t0
    out["start_bytes"], out["start_peak_bytes"] = tracer.end()

    per = max(1, round(files * fraction))
    rng = random.Random(seed)
    scans = world.scans
    tracer.begin()
    t0 = time.perf_counter()
    for index in range(containers):
        for f in rng.sample(range(files), per):
            world.apply(O.OpenFile(index, f))
    out["open_s"] = time.perf_counter() - t0
    out["open_bytes"], out["open_peak_bytes"] = tracer.end()
    out["opens"] = per * containers
    out["open_scans"] = world.scans - scans
    out["materialized"] = sum(len(c.entries) for c in world.containers)
    del world, adapter
    gc.collect()
    return out


def _start_cost(files: int, containers: int, batches: int = 3) -> tuple[float, float]:
    """Seconds and retained bytes per container start on a ``files``-file layer: the best
    of ``batches`` timed batches of ``containers`` starts, then one traced batch."""
    world = World(O.Setup(), reference_factory()())
    world.apply(O.InstallLayer(files=files))
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(containers):
            world.apply(O.StartContainer())
        best = min(best, time.perf_counter() - t0)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracer = _Tracer(True)
        tracer.begin()
        for _ in range(containers):
            world.apply(O.StartContainer())
        retained = tracer.end()[0]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    del world
    gc.collect()
    return best / containers, retained / containers


def scale(files: int = SCALE_FILES, containers: int = SCALE_CONTAINERS,
          fraction: float = SCALE_FRACTION, seed: int = 2024) -> dict[str, Any]:
    """Start ``containers`` containers on one ``files``-file local layer and open
    ``fraction`` of the files (distinct, random) in each, with the reference adapter.

    The scenario runs twice: once for time, once under tracemalloc for memory (tracing
    slows every allocation, so it would distort the times). Container starts are then
    timed alike on this layer and on a three-file one: their cost must not depend on the
    layer's size.
    """
    timed = _scenario(files, containers, fraction, seed, traced=False)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        traced = _scenario(files, containers, fraction, seed, traced=True)
    finally:
        if not was_tracing:
            tracemalloc.stop()
    big_s, big_bytes = _start_cost(files, containers)
    small_s, small_bytes = _start_cost(3, containers)
    mib = 1024 * 1024
    opens = timed["opens"]
    return {
        "adapter": "reference (signature-current)",
        "layer_files": files,
        "containers": containers,
        "opened_per_container": opens // containers,
        "opens": opens,
        "scans_during_opens": timed["open_scans"],
        "placeholders_materialized": timed["materialized"],
        "install_seconds": round(timed["install_s"], 3),
        "install_peak_mib": round(traced["install_peak_bytes"] / mib, 1),
        "start_seconds": round(timed["start_s"], 4),
        "start_peak_mib": round(traced["start_peak_bytes"] / mib, 2),
        "open_seconds": round(timed["open_s"], 2),
        "open_us_per_open": round(timed["open_s"] / opens * 1e6, 2),
        "open_peak_mib": round(traced["open_peak_bytes"] / mib, 1),
        "open_retained_bytes_per_open": round(traced["open_bytes"] / opens, 1),
        "start_and_open_seconds": round(timed["start_s"] + timed["open_s"], 2),
        "start_and_open_peak_mib": round(
            (traced["start_bytes"] + traced["open_peak_bytes"]) / mib, 1),
        "start_us_per_container": round(big_s * 1e6, 2),
        "start_retained_bytes_per_container": round(big_bytes, 1),
        "small_layer_files": 3,
        "small_layer_start_us_per_container": round(small_s * 1e6, 2),
        "small_layer_start_retained_bytes_per_container": round(small_bytes, 1),
        "start_time_ratio_big_to_small_layer": round(big_s / small_s, 2),
        "start_memory_ratio_big_to_small_layer": round(big_bytes / max(1.0, small_bytes), 2),
    }


class _Version:
    def __init__(self, version: int) -> None:
        self.version = version

    def read_registry(self, key: str) -> object | None:
        return None

    def signature_version(self) -> int:
        return self.version


def cache_bytes_per_entry(entries: int = CACHE_ENTRIES) -> dict[str, Any]:
    """Fill the reference adapter's cache with ``entries`` clean proactive scan results and
    measure it: ``sys.getsizeof`` of the dict plus its keys (32-byte ``bytes``, built the
    way the adapter builds them), divided by the entries. The values are small ints that
    Python shares, so they add nothing per entry."""
    adapter = reference_factory()()
    adapter.start(_Version(1))
    volume = bytes(range(16))
    for i in range(entries):
        adapter.scan_completed(ScanResult(None, volume, (0x100 + i).to_bytes(16, "little"), 1,
                                          ScanOutcome.CLEAN, ScanOrigin.PROACTIVE))
    cache: dict[bytes, int] = adapter._cache
    if len(cache) != entries:
        raise BenchmarkError(f"the reference cache holds {len(cache)} entries, not {entries}")
    dict_bytes = sys.getsizeof(cache)
    key_bytes = sum(sys.getsizeof(k) for k in cache)
    value_bytes = sum(sys.getsizeof(v) for v in {id(v): v for v in cache.values()}.values())
    total = dict_bytes + key_bytes + value_bytes
    return {
        "entries": entries,
        "key_length": len(next(iter(cache))),
        "dict_bytes": dict_bytes,
        "key_bytes": key_bytes,
        "shared_value_bytes": value_bytes,
        "bytes_per_entry": round(total / entries, 1),
        "dict_bytes_per_entry": round(dict_bytes / entries, 1),
        "key_bytes_per_entry": round(key_bytes / entries, 1),
    }


# --- the report ---------------------------------------------------------------------------
def _check(name: str, value: float | None) -> dict[str, Any]:
    op, limit = TARGETS[name]
    met = None if value is None else (value <= limit if op == "<=" else value >= limit)
    return {"value": value, "target": f"{op} {limit:g}", "met": met}


def summarize(output_json: Mapping[str, Any], identity: Mapping[str, str],
              notes: Sequence[str] = ()) -> dict[str, Any]:
    """The ``"wcifs"`` object of ``benchmark.json``: ratios, figures and targets, computed
    from pytest-benchmark's own output (its ``benchmarks`` list and their ``extra_info``)."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for bench in output_json.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if "metric" in extra:
            found[(extra["metric"], extra.get("who", ""))] = bench

    def ns(metric: str, who: str = "", stat: str = "min") -> float | None:
        bench = found.get((metric, who))
        return None if bench is None else float(bench["stats"][stat]) * 1e9

    floor = ns("floor_dict_get")
    floor_median = ns("floor_dict_get", stat="median")
    hot: dict[str, Any] = {
        "unit": "ns",
        "method": "pytest-benchmark's loop (benchmark.pedantic(fn, (arg,)), the loop "
                  "benchmark(fn, arg) runs) for the floor and every call alike; ratios of "
                  "the minimum (and of the median) time per call",
        "floor_dict_get_ns": None if floor is None else round(floor, 1),
        "floor_dict_get_median_ns": None if floor_median is None else round(floor_median, 1),
    }
    for who in ("adapter", "reference"):
        side: dict[str, Any] = {}
        for metric in ("post_create_hit", "pre_create"):
            name = metric.replace("_hit", "")
            value, median = ns(metric, who), ns(metric, who, "median")
            side[f"{metric}_ns"] = None if value is None else round(value, 1)
            side[f"{name}_ratio"] = (None if value is None or not floor
                                     else round(value / floor, 2))
            side[f"{name}_median_ratio"] = (None if median is None or not floor_median
                                            else round(median / floor_median, 2))
        side["cache_hit"] = side["post_create_hit_ns"] is not None
        hot[who] = side
    quick = found.get(("hot_path_quick", ""))
    quick_result = None if quick is None else quick["extra_info"].get("hot_path")

    engine = found.get(("engine_throughput", ""))
    noop = found.get(("noop_machine_throughput", ""))
    throughput: dict[str, Any] | None = None
    if engine is not None and noop is not None:
        e, n = engine["extra_info"], noop["extra_info"]
        throughput = {
            "unit": "checked steps per second",
            "engine": {k: v for k, v in e.items() if k != "metric"},
            "noop_machine": {k: v for k, v in n.items() if k != "metric"},
            "ratio": round(e["steps_per_second"] / n["steps_per_second"], 2),
        }
    scale_bench = found.get(("scale", ""))
    cache_bench = found.get(("cache_bytes_per_entry", ""))
    scale_info = (None if scale_bench is None else
                  {k: v for k, v in scale_bench["extra_info"].items() if k != "metric"})
    cache_info = (None if cache_bench is None else
                  {k: v for k, v in cache_bench["extra_info"].items() if k != "metric"})

    def get(obj: Mapping[str, Any] | None, key: str) -> float | None:
        return None if obj is None else obj.get(key)

    return {
        "suite_version": __version__,
        "adapter": dict(identity),
        "hot_path": hot,
        "hot_path_quick": quick_result,
        "throughput": throughput,
        "scale": scale_info,
        "cache": cache_info,
        "targets": {
            "reference_post_create_ratio": _check("reference_post_create_ratio",
                                                  hot["reference"]["post_create_ratio"]),
            "reference_post_create_ratio_tight_loop": _check(
                "reference_post_create_ratio_tight_loop",
                None if quick_result is None
                else quick_result["reference"]["post_create_ratio"]),
            "throughput_ratio": _check("throughput_ratio", get(throughput, "ratio")),
            "start_time_ratio_big_to_small_layer": _check(
                "start_time_ratio_big_to_small_layer",
                get(scale_info, "start_time_ratio_big_to_small_layer")),
            "start_memory_ratio_big_to_small_layer": _check(
                "start_memory_ratio_big_to_small_layer",
                get(scale_info, "start_memory_ratio_big_to_small_layer")),
            "cache_bytes_per_entry": _check("cache_bytes_per_entry",
                                            get(cache_info, "bytes_per_entry")),
        },
        "notes": list(notes),
    }


# --- the whole suite in a subprocess --------------------------------------------------------
def pytest_args(spec: str, json_path: Path) -> list[str]:
    """The pytest command line (after ``python -m pytest``) that runs the benchmarks."""
    return [
        "-p", "no:xdist",  # benchmarks never run in parallel
        "-p", "no:cacheprovider",
        "-o", "addopts=",
        "-o", "python_files=bench_*.py",
        "--rootdir", str(BENCH_DIR),
        "--benchmark-only",
        "--benchmark-json", str(json_path),
        "--conformance-adapter", spec,
        # the cost of each route into the suite, not a figure of this adapter: tox -e bench
        "--ignore", str(BENCH_DIR / "bench_protocol.py"),
        "-q",
        str(BENCH_DIR),
    ]


def run_bench(spec: str, out_dir: Path, *, extra_args: Sequence[str] = (),
              echo: bool = True) -> Path:
    """Run the pytest-benchmark suite for ``spec`` in a subprocess and write
    ``out_dir/benchmark.json`` (pytest-benchmark's JSON plus ``"wcifs"``: ratios, targets,
    the adapter's identity). Returns its path; raises :class:`ConformanceError` subclasses.

    The adapter is loaded only in that subprocess, never in this one (SPEC §10)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchmarkError(f"cannot create the output directory {str(out_dir)!r}: "
                             f"{e.strerror or e}", exit_code=2) from e
    with tempfile.TemporaryDirectory(prefix="wcifs-bench-") as tmp:
        raw = Path(tmp) / "benchmark-raw.json"
        cmd = [sys.executable, "-m", "pytest", *pytest_args(spec, raw), *extra_args]
        code, tail = _run(cmd, echo)
        if code != 0:
            why = "bad arguments" if code == 4 else f"pytest exit status {code}"
            raise BenchmarkError(f"the benchmark run failed ({why}): {_reason(tail)}",
                                 exit_code=2 if code == 4 else None)
        try:
            data = json.loads(raw.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BenchmarkError(f"the benchmark run wrote no readable JSON: {_one_line(e)}",
                                 exit_code=4) from e
    if not isinstance(data, dict) or not data.get("benchmarks") or "wcifs" not in data:
        raise BenchmarkError("the benchmark JSON has no benchmarks or no 'wcifs' summary",
                             exit_code=4)
    reported = data["wcifs"].get("adapter", {})
    if reported.get("spec") != spec:
        raise BenchmarkError(f"the benchmark run measured {reported.get('spec')!r}, "
                             f"not {spec!r}")
    out = out_dir / "benchmark.json"
    out.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def _reason(tail: Sequence[str]) -> str:
    """The line of pytest's output that says what went wrong."""
    lines = [line.strip() for line in tail if line.strip()]
    for wanted in (lambda x: "error:" in x.lower(),
                   lambda x: x.startswith(("FAILED", "ERROR", "E "))):
        for line in reversed(lines):
            if wanted(line):
                return line
    return lines[-1] if lines else "no output"


def _run(cmd: list[str], echo: bool) -> tuple[int, list[str]]:
    """Run ``cmd``, echoing its output as it comes; return its status and last lines."""
    env = dict(os.environ)
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the suite's plugins must load
    env.pop("PYTEST_ADDOPTS", None)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip("\n"))
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = proc.wait()
    except OSError as e:
        raise BenchmarkError(f"cannot start {cmd[0]!r}: {e.strerror or e}") from e
    return code, list(tail)
