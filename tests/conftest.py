"""Scheduling for ``pytest -n 2 --dist loadgroup`` (tox.ini): the long tests first, so the
two workers finish together instead of one waiting on a long test picked up last, and
tests that share a module-scoped fixture on one worker, so it is built once."""

from __future__ import annotations

import pytest


def _shares_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs[-1].scope == "module"
               for defs in info.name2fixturedefs.values() if defs)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _shares_module_fixture(item) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return 1 if item.get_closest_marker("xdist_group") else 2

    items.sort(key=order)  # stable: collection order within each rank
