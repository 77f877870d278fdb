"""The ``lib:`` route (SPEC §10): a C adapter behind ``conformance/include/wcifs_adapter.h``.

The shipped sample certifies at every level; faulty builds of it are caught with the IDs
their Python twins in the gallery get; broken libraries are refused with the right exit
code; a hook that fails or answers garbage is SAFE-13 naming the call. Everything is
built here with the system compiler (``CC`` or ``cc``) from the sources the wheel ships.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conformance
from conformance import (
    LAYER_ROOT_LOCATIONS_KEY,
    AdapterLoadError,
    EcpRequest,
    PostCreate,
    PreCreate,
    RedirectionEcp,
    Verdict,
    load_adapter,
    replay,
    run_conformance,
)
from conformance._native import HEADER, LAYOUTS, field_offsets, native_factory
from conformance._native_bench import native_hot_path, priming_events

PACKAGE = Path(conformance.__file__).resolve().parent
INCLUDE = HEADER.parent
SAMPLES = PACKAGE / "samples"
NATIVE = Path(__file__).resolve().parent / "native"
CC = shlex.split(os.environ["CC"]) if os.environ.get("CC") else (
    [shutil.which("cc")] if shutil.which("cc") else None)

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc, or $CC) to build "
                                                   "the lib: adapters with")
#: Enough examples for the sample to exercise every invariant of the three levels (the
#: quick profile's 2,000 take most of a minute through ctypes).
EXAMPLES = 300


def build(out: Path, source: Path, *flags: str, name: str | None = None) -> str:
    """Compile ``source`` into a shared library in ``out``, refusing any warning."""
    assert CC is not None
    lib = out / f"{name or source.stem}.so"
    cmd = [*CC, "-shared", "-fPIC", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
           "-I", str(INCLUDE), "-I", str(SAMPLES), *flags, "-o", str(lib), str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return str(lib)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sample, its faulty variants and the stub's builds, by name."""
    out = tmp_path_factory.mktemp("native")
    libs = {
        "sample": build(out, SAMPLES / "sample_adapter.c"),
        "stale_marker": build(out, NATIVE / "stale_marker.c"),
        "truncated_key": build(out, NATIVE / "truncated_key.c"),
    }
    key = '"' + LAYER_ROOT_LOCATIONS_KEY.replace("\\", "\\\\") + '"'
    for name, flags in {"stub": (), "abi2": ("-DABI=2",), "no_post": ("-DNO_POST_CREATE",),
                        "fails": ("-DPOST_ANSWER=-1",), "answers_7": ("-DPOST_ANSWER=7",),
                        "reads_roots": (f"-DREAD_KEY={key}",),
                        "probe": ("-DREGISTRY_PROBE",), "echo": ("-DECHO",)}.items():
        libs[name] = build(out, NATIVE / "stub.c", *flags, name=name)
    return libs


# --- the sample certifies ---------------------------------------------------------------
def test_sample_reaches_every_level(built: dict[str, str]) -> None:
    factory = native_factory(built["sample"])
    result = run_conformance(factory, "quick", seed=1, max_examples=EXAMPLES)
    result.require("conformant", "signature-current", "optimized")
    assert result.adapter_spec == f"lib:{built['sample']}"
    assert result.adapter_info.name == "WCIFS sample C adapter"


def test_sample_in_an_adapter_process(built: dict[str, str]) -> None:
    # The default route: the library is loaded only in the adapter process.
    result = run_conformance(f"lib:{built['sample']}", "quick", seed=2, max_examples=60,
                             workloads=False)
    assert result.levels["conformant"] and result.levels["signature-current"], \
        result.summary()


# --- faulty variants are caught with their gallery twins' IDs ----------------------------
@pytest.mark.parametrize(("variant", "invariant"), [
    ("stale_marker", "SAFE-9"),  # tests/gallery.py NoInvalidation
    ("truncated_key", "SAFE-6"),  # tests/gallery.py TruncatedKey
])
def test_faulty_variant_is_caught(built: dict[str, str], variant: str, invariant: str) -> None:
    factory = native_factory(built[variant])
    result = run_conformance(factory, "quick", seed=1, workloads=False)
    assert result.violations and result.violations[0].id == invariant, result.summary()
    assert not result.levels["conformant"]
    report = result.invariants[invariant].violation
    assert report is not None
    assert invariant in replay(factory, report.trace(f"lib:{built[variant]}")).ids


# --- broken libraries are refused ---------------------------------------------------------
def test_missing_library_is_a_usage_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.so")
    for load, arg in ((native_factory, missing), (load_adapter, f"lib:{missing}")):
        with pytest.raises(AdapterLoadError) as err:
            load(arg)
        assert err.value.exit_code == 2
        assert "does not exist" in str(err.value) and err.value.hint


@pytest.mark.parametrize(("name", "message"), [
    ("abi2", "speaks C ABI version 2; this suite speaks version 1"),
    ("no_post", "does not export wcifs_adapter_post_create"),
    ("not_a_library", "cannot load adapter library"),
])
def test_unusable_library_is_refused(built: dict[str, str], tmp_path: Path, name: str,
                                     message: str) -> None:
    if name == "not_a_library":
        path = tmp_path / "text.so"
        path.write_text("not a shared library\n")
        built = {name: str(path)}
    with pytest.raises(AdapterLoadError) as err:
        native_factory(built[name])
    assert err.value.exit_code == 3
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_exit_codes(built: dict[str, str], tmp_path: Path) -> None:
    def certify(spec: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conformance", "certify", "--adapter", spec,
             "--max-examples", "5", "--no-bench", "--out", str(tmp_path / "out")],
            capture_output=True, text=True, check=False, timeout=120)

    missing = certify(f"lib:{tmp_path / 'nowhere.so'}")
    assert missing.returncode == 2, missing.stderr
    wrong = certify(f"lib:{built['abi2']}")
    assert wrong.returncode == 3, wrong.stderr
    assert "C ABI version 2" in wrong.stderr


# --- hooks that fail or answer garbage are SAFE-13 -----------------------------------------
@pytest.mark.parametrize(("name", "words"), [
    ("fails", "post_create raised RuntimeError: wcifs_adapter_post_create failed with "
              "status -1: the engine is on fire"),
    ("answers_7", "post_create returned 7, not a Verdict"),
])
def test_bad_hook_is_safe13_naming_the_call(built: dict[str, str], name: str,
                                            words: str) -> None:
    result = run_conformance(native_factory(built[name]), "quick", seed=1, max_examples=20,
                             workloads=False)
    assert result.violations and result.violations[0].id == "SAFE-13", result.summary()
    report = result.violations[0]
    assert words in report.summary
    assert report.detail["call"] == "post_create"


def test_reading_layer_root_locations_through_services_is_safe12(
        built: dict[str, str]) -> None:
    result = run_conformance(native_factory(built["reads_roots"]), "quick", seed=1,
                             max_examples=20, workloads=False)
    assert result.violations and result.violations[0].id == "SAFE-12", result.summary()


# --- the marshalling ---------------------------------------------------------------------
class _Services:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.reads: list[str] = []

    def read_registry(self, key: str) -> object | None:
        self.reads.append(key)
        if self.fail is not None:
            raise self.fail
        return {"HKLM\\SOFTWARE\\Contoso\\Mode": "enforcing",
                "HKLM\\SOFTWARE\\Contoso\\Count": 42}.get(key)

    def signature_version(self) -> int:
        return 7


def test_services_reach_the_library(built: dict[str, str]) -> None:
    services = _Services()
    with pytest.raises(RuntimeError) as err:
        native_factory(built["probe"])().start(services)
    # A value cut to the buffer but its whole length returned; none; a number as text;
    # the length asked with no buffer; the version.
    assert str(err.value).endswith(
        "mode=9:enf none=-1 count=2:42 sizing=9 version=7"), err.value
    assert services.reads[0] == "HKLM\\SOFTWARE\\Contoso\\Mode"


def test_an_exception_in_a_service_is_raised_from_the_hook(built: dict[str, str]) -> None:
    # ctypes would print and drop it; the suite must see it (a timeout, an interrupt).
    with pytest.raises(KeyboardInterrupt):
        native_factory(built["probe"])().start(_Services(KeyboardInterrupt()))


def test_post_create_hands_over_every_field(built: dict[str, str]) -> None:
    adapter = native_factory(built["echo"])()
    file_id, volume = bytes(range(16)), bytes(range(16, 32))
    raw = RedirectionEcp.pack(36, 1, bytes(range(32, 48)), bytes(range(48, 64)))
    path = "\\Windows\\Fichiers\\été\\" + "a" * 2000  # non-ASCII, and past the inline room
    with pytest.raises(RuntimeError) as err:
        adapter.post_create(PostCreate(12, volume, path, 3, file_id,
                                       RedirectionEcp(raw[:10], True)))
    ecp = raw[:10].hex() + "00" * 26  # the delivered bytes, zero-padded to 36
    assert str(err.value).endswith(
        f"id=12 silo=1/3 file={file_id.hex()} volume={volume.hex()} ecp={ecp} length=10 "
        f"ack=1 path={len(path.encode())}:{path.encode()[:24].decode()}"), err.value
    with pytest.raises(RuntimeError) as err:
        adapter.post_create(PostCreate(13, volume, "\\a", None, file_id, None))
    assert "id=13 silo=0/0" in str(err.value) and "ecp=- length=0 ack=0 path=2:\\a" in str(
        err.value)


def test_pre_create_answers(built: dict[str, str]) -> None:
    adapter = native_factory(built["sample"])()
    volume = bytes(16)
    assert adapter.pre_create(PreCreate(1, volume, "\\a", 1)) == EcpRequest(36)
    assert adapter.pre_create(PreCreate(2, volume, "\\a", None)) is None
    assert adapter.pre_create(PreCreate(3, volume, "\\" + "b" * 5000, 2)) == EcpRequest(36)


def test_optional_hooks_default_like_base_adapter(built: dict[str, str]) -> None:
    adapter = native_factory(built["stub"])()  # exports none of them
    assert adapter.signature_updated(2) is False
    adapter.start(_Services())
    adapter.proactive_scan_completed(2)
    adapter.stop()
    assert adapter.info.name == "stub.so" and adapter.info.version == "unknown"


def test_instances_are_independent_and_freed(built: dict[str, str]) -> None:
    factory = native_factory(built["stub"])
    live = ctypes.CDLL(built["stub"]).stub_live_instances
    before = live()
    adapters = [factory() for _ in range(5)]
    assert live() == before + 5
    assert len({a._handle for a in adapters}) == 5
    del adapters
    gc.collect()
    assert live() == before


def test_struct_layouts_match_the_compiler(tmp_path: Path) -> None:
    """``_native``'s ``struct`` formats lay the events out as the C compiler does."""
    assert CC is not None
    lines = ["#include <stdio.h>", '#include "wcifs_adapter.h"', "int main(void) {",
             'printf("ecp %zu %zu %zu\\n", sizeof(WCIFS_REDIRECTION_ECP_CONTEXT), '
             "offsetof(WCIFS_REDIRECTION_ECP_CONTEXT, FileId), "
             "offsetof(WCIFS_REDIRECTION_ECP_CONTEXT, VolumeGuid));"]
    for struct_name, fields in LAYOUTS.items():
        for field, _ in fields:
            lines.append(f'printf("{struct_name}.{field} %zu\\n", '
                         f"offsetof({struct_name}, {field}));")
    lines += ["return 0; }"]
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([*CC, "-std=c99", "-I", str(INCLUDE), "-o", str(exe), str(source)],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    got = dict(line.rsplit(" ", 1) for line in out.splitlines() if not line.startswith("ecp"))
    want = {f"{s}.{f}": str(o) for s in LAYOUTS for f, o in field_offsets(s).items()}
    assert got == want
    assert out.splitlines()[0] == "ecp 36 4 20"


# --- the native hot path ---------------------------------------------------------------
def test_native_hot_path(built: dict[str, str]) -> None:
    events = priming_events(native_factory(built["sample"]))
    hooks = [hook for hook, _, _ in events]
    assert hooks[0] == "start" and hooks[-1] == "post_create"
    assert events[-1][2] is Verdict.SKIP
    figures = native_hot_path(built["sample"], events, seconds=0.1)
    assert figures["measured"] and figures["cache_hit"], figures
    assert figures["verdict"] == "SKIP"
    assert figures["post_create_ns"] > 0 and figures["floor_ns"] > 0
    assert figures["ratio"] == pytest.approx(figures["post_create_ns"] / figures["floor_ns"],
                                             rel=0.05, abs=0.02)


def test_native_hot_path_without_a_hit_or_a_compiler(built: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    figures: dict[str, Any] = native_hot_path(built["stub"], seconds=0.05)
    assert figures["measured"] and not figures["cache_hit"] and "note" in figures
    monkeypatch.setattr("conformance._native_bench._compiler", lambda: None)
    assert native_hot_path(built["sample"]) == {"measured": False,
                                                "note": "not measured: no compiler"}


def test_the_c_sample_certifies_at_every_level_from_the_cli(built: dict[str, str],
                                                            tmp_path: Path) -> None:
    """The route a vendor takes: isolated by default, with the hot path timed natively."""
    out = tmp_path / "bundle"
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "certify", "--adapter", f"lib:{built['sample']}",
         "--require", "conformant,signature-current,optimized", "--seed", "1",
         "--max-examples", str(EXAMPLES), "--out", str(out)],
        capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["run"]["isolation"] == "isolated"
    native = cert["benchmark"]["native"]
    assert native["measured"] and native["cache_hit"], native
    assert native["ratio"] == pytest.approx(native["post_create_ns"] / native["floor_ns"],
                                            rel=0.05)
    assert "Timed natively" in (out / "certificate.html").read_text()
