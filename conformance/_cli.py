"""The ``wcifs-conformance`` command line (SPEC §8)."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wcifs-conformance",
        description="Property-based conformance suite for AV filters on Windows container hosts.",
    )
    p.add_subparsers(dest="verb", metavar="VERB")
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.verb is None:
        parser().print_help()
    return 0
