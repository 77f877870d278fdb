"""Certification reports (SPEC §8): the bundle writer, its JSON Schema and HTML templates,
Ed25519 signing, and ``verify``.

Reads conformance results; never the model. Of ``conformance`` it imports only the light
public names (the catalogue, the level rule ``level_verdicts``, the profiles, the version):
never the engine, ``reference``, ``strategies`` or Hypothesis. jinja2, jsonschema and
cryptography load when a bundle is rendered, validated or signed, so ``import reports`` is
cheap.
"""

from ._bundle import (
    BENCHMARK,
    BUNDLE_FILES,
    CERTIFICATE,
    HTML,
    JUNIT,
    SLICE,
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
    ci_commit,
    coverage_of,
    coverage_problems,
    run_label,
    schema,
    schema_errors,
    validate_certificate,
)
from ._manifest import MANIFEST, parse_manifest, sha256_file
from ._render import level_state, run_notes, verdicts_of
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
    "SLICE",
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
    "ci_commit",
    "coverage_of",
    "coverage_problems",
    "fingerprint",
    "generate_key_pair",
    "level_state",
    "load_private_key",
    "load_public_key",
    "parse_manifest",
    "run_label",
    "run_notes",
    "schema",
    "schema_errors",
    "sha256_file",
    "validate_certificate",
    "verdicts_of",
    "verify_bundle",
    "write_bundle",
]
