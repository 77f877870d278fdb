"""Certification reports (SPEC §8): the bundle writer, its JSON Schema and HTML templates,
Ed25519 signing, and ``verify``.

Reads conformance results; never the model (nothing here imports ``reference`` or
``strategies``). The catalogue of invariants comes from ``conformance._invariants``.
"""

from ._bundle import (
    BENCHMARK,
    BUNDLE_FILES,
    CERTIFICATE,
    HTML,
    JUNIT,
    SUMMARY,
    TRACES,
    Bundle,
    BundleError,
    check_out_dir,
    write_bundle,
)
from ._certificate import (
    COVERAGE_DIMENSIONS,
    FORMAT_VERSION,
    CertificateError,
    build_certificate,
    coverage_of,
    coverage_problems,
    level_invariants,
    levels_from,
    schema,
    schema_errors,
    unexercised,
    validate_certificate,
)
from ._manifest import MANIFEST, parse_manifest, sha256_file
from ._signing import (
    PUBLIC_KEY,
    SIGNATURE,
    SigningKeyError,
    fingerprint,
    generate_key_pair,
    load_private_key,
    load_public_key,
)
from ._verify import FAIL, PASS, SKIP, Check, NotABundle, verify_bundle

__all__ = [
    "BENCHMARK",
    "BUNDLE_FILES",
    "CERTIFICATE",
    "COVERAGE_DIMENSIONS",
    "FAIL",
    "FORMAT_VERSION",
    "HTML",
    "JUNIT",
    "MANIFEST",
    "PASS",
    "PUBLIC_KEY",
    "SIGNATURE",
    "SKIP",
    "SUMMARY",
    "TRACES",
    "Bundle",
    "BundleError",
    "CertificateError",
    "Check",
    "NotABundle",
    "SigningKeyError",
    "build_certificate",
    "check_out_dir",
    "coverage_of",
    "coverage_problems",
    "fingerprint",
    "generate_key_pair",
    "level_invariants",
    "levels_from",
    "load_private_key",
    "load_public_key",
    "parse_manifest",
    "schema",
    "schema_errors",
    "sha256_file",
    "unexercised",
    "validate_certificate",
    "verify_bundle",
    "write_bundle",
]
