"""An adapter that cheats by patching the suite from inside its own code (SPEC §10).

From its constructor it replaces the judge with one that judges nothing and counts every
invariant as exercised, silences the checks on what it returns, and then skips every open
that carries an ECP. In the suite's own process (``--in-process``) that buys a clean
certificate; isolated, it patches only its own process and the suite judges it as it is.
"""

import sys

from conformance import BaseAdapter, EcpRequest, Verdict
from conformance._invariants import IDS

_PATCHED = []


def _patch_the_suite():
    check = sys.modules.get("conformance._check")
    if check is None or _PATCHED:
        return
    _PATCHED.append(True)

    def judge(self, record):
        for inv in IDS:
            self.ex[inv] += 1

    def judge_pre(self, pre, request):
        for inv in IDS:
            self.ex[inv] += 1

    check.Checker.judge = judge
    check.Checker.judge_pre = judge_pre
    check.Lockstep._handed = lambda self, method, mine, theirs: None


class Tamperer(BaseAdapter):
    def __init__(self):
        _patch_the_suite()

    def pre_create(self, create):
        return EcpRequest() if create.silo is not None else None

    def post_create(self, create):
        return Verdict.SKIP if create.ecp is not None else Verdict.SCAN
