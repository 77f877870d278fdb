"""Adapter SPEC strings (SPEC §8): what loads, and the hint when it does not."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import AdapterLoadError, load_adapter
from reference.adapter import ReferenceAdapter

_ADAPTER = textwrap.dedent('''
    from reference.contract import BaseAdapter, EcpRequest, Verdict

    VALUE = 3


    class MyAdapter(BaseAdapter):
        def pre_create(self, create):
            return EcpRequest() if create.silo is not None else None

        def post_create(self, create):
            return Verdict.SCAN


    def make_adapter():
        return MyAdapter()
''')

_serial = itertools.count()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable package ``<name>`` with a module ``<name>.mod`` defining MyAdapter."""
    name = f"wcifs_test_pkg_{next(_serial)}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(_ADAPTER)
    (pkg / "broken.py").write_text("def oops(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


@pytest.fixture
def adapter_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_adapter.py"
    path.write_text(_ADAPTER)
    return path


def load_error(spec: str) -> AdapterLoadError:
    with pytest.raises(AdapterLoadError) as info:
        load_adapter(spec)
    return info.value


# --- reference ------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "level"), [
    ("reference", "signature-current"), ("  reference  ", "signature-current"),
    ("reference:signature-current", "signature-current"),
    ("reference:conformant", "conformant"),
])
def test_reference_specs(spec: str, level: str) -> None:
    factory = load_adapter(spec)
    a, b = factory(), factory()
    assert isinstance(a, ReferenceAdapter)
    assert a is not b
    assert a.level == level


def test_empty_spec_is_a_usage_error() -> None:
    err = load_error("   ")
    assert err.exit_code == 2
    assert "reference" in str(err) and "module.path:attr" in str(err)


# --- module.path:attr -------------------------------------------------------------------------
def test_module_spec_loads_class_and_factory(package: str) -> None:
    factory = load_adapter(f"{package}.mod:MyAdapter")
    assert isinstance(factory, type) and factory.__name__ == "MyAdapter"
    assert factory.__module__ == f"{package}.mod"
    adapter = factory()
    assert adapter.post_create(None).value == "SCAN"
    made = load_adapter(f"{package}.mod:make_adapter")()
    assert type(made).__name__ == "MyAdapter"


def test_dotted_spec_without_colon_suggests_the_colon(package: str) -> None:
    err = load_error(f"{package}.mod.MyAdapter")
    assert err.hint == f"did you mean {package}.mod:MyAdapter?"
    assert f"did you mean {package}.mod:MyAdapter?" in str(err)
    assert err.exit_code == 2


def test_dotted_spec_hint_needs_no_importable_module() -> None:
    err = load_error("pkg.mod.Cls")
    assert "did you mean pkg.mod:Cls?" in str(err)


def test_missing_module(package: str) -> None:
    err = load_error(f"{package}_nope.mod:MyAdapter")
    assert "no module named" in str(err)
    assert "PYTHONPATH" in err.hint


def test_module_path_with_class_after_a_dot(package: str) -> None:
    # "pkg.mod.MyAdapter:create" was meant as pkg.mod:MyAdapter.create
    err = load_error(f"{package}.mod.MyAdapter:make")
    assert f"did you mean {package}.mod:MyAdapter.make?" in str(err)


def test_module_missing_attribute_lists_what_it_defines(package: str) -> None:
    err = load_error(f"{package}.mod:Nope")
    assert "has no attribute 'Nope'" in str(err)
    assert "defines" in err.hint
    assert "MyAdapter" in err.hint and "make_adapter" in err.hint
    assert "MyAdapter" in str(err)


def test_module_missing_attribute_suggests_case_insensitive_match(package: str) -> None:
    err = load_error(f"{package}.mod:myadapter")
    assert err.hint == f"did you mean {package}.mod:MyAdapter?"
    assert err.hint in str(err)


def test_module_that_fails_to_import_cannot_be_loaded(package: str) -> None:
    err = load_error(f"{package}.broken:X")
    assert err.exit_code == 3
    assert "SyntaxError" in str(err)


def test_module_attribute_that_is_not_callable(package: str) -> None:
    err = load_error(f"{package}.mod:VALUE")
    assert "int" in str(err)
    assert "not a class or factory" in str(err)


# --- path/to/file.py:attr -----------------------------------------------------------------------
def test_file_spec_loads_class(adapter_file: Path) -> None:
    factory = load_adapter(f"{adapter_file}:MyAdapter")
    assert isinstance(factory, type) and factory.__name__ == "MyAdapter"
    assert factory().post_create(None).value == "SCAN"
    assert load_adapter(f"{adapter_file}:make_adapter")().__class__ is factory


def test_relative_file_spec(adapter_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(adapter_file.parent)
    factory = load_adapter("my_adapter.py:make_adapter")
    assert type(factory()).__name__ == "MyAdapter"
    sub = adapter_file.parent / "sub"
    sub.mkdir()
    (sub / "other.py").write_text(_ADAPTER)
    assert load_adapter("sub/other.py:MyAdapter").__name__ == "MyAdapter"


def test_missing_file(tmp_path: Path) -> None:
    err = load_error(f"{tmp_path / 'absent.py'}:MyAdapter")
    assert "does not exist" in str(err)
    assert "absent.py" in str(err)


def test_file_missing_attribute_lists_what_it_defines(adapter_file: Path) -> None:
    err = load_error(f"{adapter_file}:Nope")
    assert "has no attribute 'Nope'" in str(err)
    assert "defines" in err.hint
    assert "MyAdapter" in err.hint and "make_adapter" in err.hint and "VALUE" in err.hint


def test_file_missing_attribute_suggests_case_insensitive_match(adapter_file: Path) -> None:
    err = load_error(f"{adapter_file}:MYADAPTER")
    assert err.hint == f"did you mean {adapter_file}:MyAdapter?"
    assert err.hint in str(err)


def test_file_attribute_that_is_not_callable(adapter_file: Path) -> None:
    err = load_error(f"{adapter_file}:VALUE")
    assert "int" in str(err)
    assert "not a class or factory" in str(err)


def test_file_with_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("class MyAdapter(:\n    pass\n")
    err = load_error(f"{path}:MyAdapter")
    assert err.exit_code == 3
    assert "SyntaxError" in str(err)
    assert "fix the error" in str(err)
    # Once fixed, it loads: the failed import left nothing behind.
    path.write_text(_ADAPTER)
    assert load_adapter(f"{path}:MyAdapter").__name__ == "MyAdapter"


def test_file_raising_on_import(tmp_path: Path) -> None:
    path = tmp_path / "raises.py"
    path.write_text("raise RuntimeError('no licence')\n")
    err = load_error(f"{path}:MyAdapter")
    assert err.exit_code == 3
    assert "no licence" in str(err)


def test_file_without_attr(adapter_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(adapter_file.parent)
    err = load_error("my_adapter.py")
    assert err.hint == "write my_adapter.py:MyAdapter"
    assert "write my_adapter.py:MyAdapter" in str(err)
    assert err.exit_code == 2
    err = load_error("path/to/file.py")
    assert "write path/to/file.py:MyAdapter" in str(err)


def test_windows_file_without_attr() -> None:
    err = load_error("C:\\adapters\\my_adapter.py")
    assert "write C:\\adapters\\my_adapter.py:MyAdapter" in str(err)


def test_windows_style_file_with_attr_is_treated_as_a_file() -> None:
    err = load_error("C:\\adapters\\my_adapter.py:MyAdapter")
    assert "does not exist" in str(err)


def test_unknown_form_lists_the_forms() -> None:
    err = load_error("nonsense")
    assert "exec:COMMAND" in err.hint and "lib:PATH" in err.hint
