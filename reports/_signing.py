"""Ed25519 keys and signatures over ``MANIFEST.sha256``.

Keys are PEM (PKCS#8 private, SubjectPublicKeyInfo public) and the signature is the raw
64 bytes, so ``openssl pkeyutl -verify -rawin`` checks a bundle without this suite.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

# ``cryptography`` loads when a key is first made, read or used, not with ``reports``.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE = "MANIFEST.sha256.sig"
PUBLIC_KEY = "signing-key.pub"


class SigningKeyError(ValueError):
    """A key file that is missing, unreadable, or not an Ed25519 key."""


def generate_key_pair(passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    """A new key pair as (private PEM, public PEM); the private one encrypted if asked."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                encryption)
    return private, public_pem(key.public_key())


def public_pem(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the raw public key, in the style of ``ssh-keygen -l``."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{what} {str(path)!r} does not exist") from None
    except OSError as e:
        raise SigningKeyError(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        raise SigningKeyError(
            f"private key {str(path)!r} is encrypted: set WCIFS_SIGN_KEY_PASSPHRASE"
            if not passphrase else
            f"private key {str(path)!r} is not encrypted, but a passphrase was given") from None
    except ValueError as e:
        raise SigningKeyError(f"{str(path)!r} is not a PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{str(path)!r} holds a {type(key).__name__.lstrip('_')}, not an "
                        "Ed25519 key (make one with: wcifs-conformance keygen)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    return public_key_from_pem(_read(path, "public key"), str(path))


def public_key_from_pem(data: bytes, where: str = "public key") -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise SigningKeyError(f"{where!r} is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{where!r} is not an Ed25519 public key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def signature_valid(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
