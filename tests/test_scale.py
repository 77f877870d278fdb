"""Scale (SPEC §3, §9): starting a container costs O(1), not O(files in its layers).

Asserted on counts and traced allocations, never on time.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

from reference import ops as O
from reference.contract import BaseAdapter, EcpRequest, PostCreate, PreCreate, Verdict
from reference.model import World

FILES = 200_000
CONTAINERS = 1_000
BUDGET = 5 * 1024 * 1024  # bytes for all 1,000 starts: far below FILES × CONTAINERS × 1


class Quick(BaseAdapter):
    """Answers at once and counts container-context creates."""

    def __init__(self) -> None:
        self.container_creates = 0

    def pre_create(self, create: PreCreate) -> EcpRequest | None:
        return None if create.silo is None else EcpRequest()

    def post_create(self, create: PostCreate) -> Verdict:
        if create.silo is not None:
            self.container_creates += 1
        return Verdict.SKIP


def _start_containers(world: World, n: int) -> int:
    """Starts ``n`` containers; returns the bytes still allocated afterwards."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(n):
            world.apply(O.StartContainer())
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


@pytest.fixture(scope="module")
def big() -> tuple[World, Quick, int]:
    adapter = Quick()
    world = World(O.Setup(), adapter)
    world.apply(O.InstallLayer(files=FILES))
    grown = _start_containers(world, CONTAINERS)
    return world, adapter, grown


def test_layer_has_all_its_files(big: tuple[World, Quick, int]) -> None:
    world, _, _ = big
    (layer,) = world.layers
    assert len(layer.files) == FILES
    assert O.layer_path(FILES - 1) in layer.files


def test_starting_1000_containers_creates_no_per_file_objects(
        big: tuple[World, Quick, int]) -> None:
    world, adapter, grown = big
    (layer,) = world.layers
    assert len(world.containers) == CONTAINERS
    assert layer.containers_started == CONTAINERS
    for c in world.containers:
        assert c.running
        assert c.layers == (layer,)
        assert c.entries == {}
    assert adapter.container_creates == 0
    assert grown < BUDGET, f"{grown} bytes allocated for {CONTAINERS} container starts"


def test_start_cost_does_not_depend_on_layer_size(big: tuple[World, Quick, int]) -> None:
    _, _, grown_big = big
    small = World(O.Setup(), Quick())
    small.apply(O.InstallLayer(files=3))
    grown_small = _start_containers(small, CONTAINERS)
    assert grown_small > 0
    assert grown_big < 2 * grown_small + 64 * 1024, (grown_big, grown_small)


def test_opening_one_percent_materializes_only_those_files(
        big: tuple[World, Quick, int]) -> None:
    world, adapter, _ = big
    rng = random.Random(2024)
    chosen = (0, CONTAINERS // 2, CONTAINERS - 1)
    before = adapter.container_creates
    opened: dict[int, set[int]] = {}
    opens = 0
    for index in chosen:
        files = [rng.randrange(FILES) for _ in range(FILES // 100)]
        files += files[:50]  # some files opened twice
        for f in files:
            world.apply(O.OpenFile(index, f))
        opened[index] = set(files)
        opens += len(files)
    assert adapter.container_creates - before == opens
    for i, c in enumerate(world.containers):
        if i in opened:
            assert len(c.entries) == len(opened[i])
            assert set(c.entries) == {O.layer_path(f) for f in opened[i]}
        else:
            assert c.entries == {}
