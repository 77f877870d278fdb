"""Turning an adapter SPEC string into a factory (SPEC §8)."""

from __future__ import annotations

import difflib
import importlib.util
import pkgutil
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from reference.adapter import reference_factory
from reference.contract import AdapterInfo, BaseAdapter

from ._errors import AdapterLoadError, AdapterStartError
from ._watchdog import Timed

Factory = Callable[[], Any]

REFERENCE_SPECS: dict[str, Factory] = {
    "reference": reference_factory("signature-current"),
    "reference:signature-current": reference_factory("signature-current"),
    "reference:conformant": reference_factory("conformant"),
}

_FORMS = ("reference, module.path:attr, path/to/file.py:attr, exec:COMMAND, lib:PATH")


def load_adapter(spec: str) -> Factory:
    """Resolve ``spec`` to a zero-argument factory in this process; raise
    :class:`AdapterLoadError` with a hint that shows the corrected spelling.

    This imports the adapter here: :func:`conformance._session.open_adapter` is the route
    that keeps it in an adapter process (the default of every face, SPEC §10)."""
    parsed = parse_spec(spec)
    if parsed.kind == "reference":
        return REFERENCE_SPECS[parsed.target]
    if parsed.kind == "exec":
        raise AdapterLoadError("exec: adapters run in their own process",
                               hint="open them with open_adapter(spec)")
    if parsed.kind == "lib":
        from ._native import native_factory

        return native_factory(parsed.target)
    if parsed.kind == "file":
        obj = _from_file(spec, Path(parsed.target), parsed.attr)
    else:
        obj = _from_module(spec, parsed.target, parsed.attr)
    if not callable(obj):
        raise AdapterLoadError(
            f"{spec!r} names a {type(obj).__name__}, not a class or factory",
            hint="point at the adapter class, or at a function that returns a new adapter")
    if isinstance(obj, type):
        _check_hooks(obj, spec)
    return obj  # type: ignore[return-value]


def check_module_exists(name: str) -> None:
    """Exit 2 when no top-level package ``name`` starts with can be found (without
    importing anything: the adapter may be meant for another process)."""
    top = name.partition(".")[0]
    if top not in sys.modules and importlib.util.find_spec(top) is None:
        raise AdapterLoadError(f"no module named {top!r}",
                               hint="is the package installed in this environment, or on "
                                    "PYTHONPATH?")


@dataclass(frozen=True, slots=True)
class ParsedSpec:
    """What an adapter SPEC names, checked without importing anything of the adapter's."""

    #: ``reference``, ``file``, ``module``, ``exec`` or ``lib``.
    kind: str
    #: The reference spec, file path, module name, command line or library path.
    target: str
    #: The attribute naming the factory (file and module specs).
    attr: str = ""


def parse_spec(spec: str) -> ParsedSpec:
    """Check ``spec``'s form (and that a named file exists); exit 2 with a hint if not."""
    spec = spec.strip()
    if not spec:
        raise AdapterLoadError("empty adapter spec", hint=f"use one of: {_FORMS}")
    if spec in REFERENCE_SPECS:
        return ParsedSpec("reference", spec)
    if spec.startswith("exec:"):
        command = spec[5:].strip()
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise AdapterLoadError(f"cannot split the exec: command line: {e}",
                                   hint="quote it as a POSIX shell would") from None
        if not argv:
            raise AdapterLoadError("exec: names no command",
                                   hint='write exec:COMMAND [ARGS], e.g. "exec:./my-adapter"')
        return ParsedSpec("exec", command)
    if spec.startswith("lib:"):
        path = spec[4:].strip()
        if not path:
            raise AdapterLoadError("lib: names no library", hint="write lib:path/to/adapter.so")
        if not Path(path).is_file():
            raise AdapterLoadError(f"adapter library {path!r} does not exist",
                                   hint="give a path relative to the current directory")
        return ParsedSpec("lib", path)
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr or any(c in attr for c in "/\\") or attr.endswith(
            ".py"):
        _no_colon(spec)
    if target.endswith(".py") or "/" in target or "\\" in target:
        if not Path(target).is_file():
            raise AdapterLoadError(f"adapter file {target!r} does not exist",
                                   hint="give a path relative to the current directory")
        return ParsedSpec("file", target, attr)
    return ParsedSpec("module", target, attr)


#: The hooks every adapter defines (SPEC §4); the others are optional for any class.
REQUIRED_HOOKS = ("pre_create", "post_create")
OPTIONAL_HOOKS = ("start", "scan_completed", "file_changed", "signature_updated",
                  "proactive_scan_completed", "proactive_scan_aborted", "stop")


def _check_hooks(obj: object, what: str) -> None:
    """Exit 3 for an adapter without a required hook, naming the closest one it has."""
    for hook in REQUIRED_HOOKS:
        if callable(getattr(obj, hook, None)):
            continue
        names = [n for n in dir(obj) if not n.startswith("__")]
        close = difflib.get_close_matches(hook, names, n=1, cutoff=0.6)
        hint = (f"it defines {close[0]!r}: did you mean {hook!r}?" if close
                else f"define {hook}(self, create); see SPEC §4")
        raise AdapterStartError(f"adapter {what} has no {hook} hook", hint=hint)


class _WithDefaults:
    """An adapter missing optional hooks, completed with :class:`BaseAdapter`'s defaults."""

    def __init__(self, adapter: Any, missing: tuple[str, ...]) -> None:
        self.__dict__["_adapter"] = adapter
        base = BaseAdapter()
        for hook in missing:
            self.__dict__[hook] = getattr(base, hook)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_adapter"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__dict__["_adapter"], name, value)


def instantiate(factory: Factory) -> Any:
    """A new adapter from ``factory``, with any optional hook it lacks filled in; an adapter
    without a required hook is an :class:`AdapterStartError` (exit 3). The factory's own
    exceptions propagate."""
    adapter = factory()
    missing = tuple(h for h in OPTIONAL_HOOKS if not callable(getattr(adapter, h, None)))
    if not missing and all(callable(getattr(adapter, h, None)) for h in REQUIRED_HOOKS):
        return adapter
    _check_hooks(adapter, type(adapter).__name__)
    return _WithDefaults(adapter, missing)


def adapter_info(adapter: Any) -> AdapterInfo:
    """What an adapter declares as ``info``; without a declaration, its class name (that of
    the vendor's adapter, not of a suite wrapper around it)."""
    info = getattr(adapter, "info", None)
    if isinstance(info, AdapterInfo):
        return info
    while isinstance(adapter, _WithDefaults | Timed):
        adapter = adapter._adapter
    return AdapterInfo(name=type(adapter).__name__, version="unknown")


def _no_colon(spec: str) -> NoReturn:
    if spec.endswith(".py"):
        raise AdapterLoadError(f"{spec!r} names a file but no adapter in it",
                               hint=f"write {spec}:MyAdapter")
    module, _, attr = spec.rpartition(".")
    if module and attr:
        raise AdapterLoadError(f"{spec!r} is not a valid adapter spec",
                               hint=f"did you mean {module}:{attr}?")
    raise AdapterLoadError(f"{spec!r} is not a valid adapter spec", hint=f"use one of: {_FORMS}")


def _from_file(spec: str, path: Path, attr: str) -> object:
    name = f"_wcifs_adapter_{abs(hash(str(path.resolve())))}"
    module = sys.modules.get(name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise AdapterLoadError(f"cannot import {str(path)!r}", hint="is it a .py file?")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[name]
            raise AdapterLoadError(f"importing {str(path)!r} failed: {type(e).__name__}: {e}",
                                   hint="fix the error in the adapter file", exit_code=3) from e
    return _attr(spec, module, attr, str(path))


def _from_module(spec: str, target: str, attr: str) -> object:
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as e:
        if e.name and target.startswith(e.name):
            hint = "is the package installed in this environment, or on PYTHONPATH?"
            if "." in target and importlib.util.find_spec(target.rpartition(".")[0]) is not None:
                parent, _, last = target.rpartition(".")
                hint = f"did you mean {parent}:{last}.{attr}?"
            raise AdapterLoadError(f"no module named {target!r}", hint=hint) from None
        raise AdapterLoadError(f"importing {target!r} failed: {e}", exit_code=3) from e
    except Exception as e:
        raise AdapterLoadError(f"importing {target!r} failed: {type(e).__name__}: {e}",
                               hint="fix the error in the adapter module", exit_code=3) from e
    return _attr(spec, module, attr, target)


def _attr(spec: str, module: ModuleType, attr: str, where: str) -> object:
    try:
        return pkgutil.resolve_name(f"{module.__name__}:{attr}")
    except (AttributeError, ValueError, ImportError):
        names = [n for n in dir(module) if not n.startswith("_")]
        close = [n for n in names if n.lower() == attr.lower()]
        hint = f"did you mean {spec.rpartition(':')[0]}:{close[0]}?" if close else (
            f"{where} defines: {', '.join(names[:12]) or 'nothing public'}")
        raise AdapterLoadError(f"{where} has no attribute {attr!r}", hint=hint) from None
