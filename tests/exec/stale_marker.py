"""Faulty on purpose: the sample exec adapter deaf to file_changed, so a written or deleted
file keeps its "scanned clean" entry and a tampered layer file is skipped on the strength
of its old scan. The suite must catch it (SAFE-9; tests/gallery.py's NoInvalidation is the
in-process twin).

    wcifs-conformance certify --adapter "exec:python tests/exec/stale_marker.py"
"""

import sys

from _sample import sample


class StaleMarker(sample.Adapter):
    def file_changed(self, change):
        pass  # the defect: nothing is invalidated


if __name__ == "__main__":
    sys.exit(sample.main(StaleMarker, {"name": "stale-marker exec mutant", "version": "0"}))
