"""Faulty on purpose: the sample exec adapter with a cache that keys on only the first 8
bytes of the FileId (an NTFS habit, wrong on ReFS), so two files whose FileIds share their
low 64 bits share a cache entry. The suite must catch it (SAFE-6; tests/gallery.py's
TruncatedKey is the in-process twin).

    wcifs-conformance certify --adapter "exec:python tests/exec/truncated_key.py"
"""

import sys

from _sample import sample


def short(ids):
    """FileId + VolumeGuid cut to the FileId's first 8 bytes + VolumeGuid."""
    return ids[:8] + ids[16:]


class TruncatedCache(dict):
    """The defect lives in the table, not the policy: every key is cut down by ``short``
    (the sample uses get, [] = and pop)."""

    def get(self, ids, default=None):
        return super().get(short(ids), default)

    def __setitem__(self, ids, version):
        super().__setitem__(short(ids), version)

    def pop(self, ids, *default):
        return super().pop(short(ids), *default)


class TruncatedKey(sample.Adapter):
    def __init__(self):
        super().__init__()
        self.cache = TruncatedCache()


if __name__ == "__main__":
    sys.exit(sample.main(TruncatedKey, {"name": "truncated-key exec mutant", "version": "0"}))
