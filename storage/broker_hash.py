"""Secrets in the form an MQTT broker checks them: Mosquitto's PBKDF2-SHA512 `$7$` hashes.

Hand-written on hashlib (no kept library writes this format; passlib's pbkdf2_sha512 uses
another layout): Mosquitto's password file takes `username:$7$<iterations>$<salt>$<digest>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Mosquitto's own parameters for `$7$` (mosquitto_passwd 2.0): PBKDF2-HMAC-SHA512, 101
# iterations, a 12-byte salt, a 64-byte digest, both in standard base64.
BROKER_HASH_ITERATIONS = 101
BROKER_SALT_BYTES = 12


def broker_hash(plaintext: str) -> str:
    """The secret in Mosquitto's password-file form, `$7$101$<salt>$<digest>`."""
    salt = secrets.token_bytes(BROKER_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", plaintext.encode("utf-8"), salt,
                                 BROKER_HASH_ITERATIONS)
    return (f"$7${BROKER_HASH_ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def broker_hash_matches(stored: str, plaintext: str) -> bool:
    """Whether a `$7$` hash is that of this secret (as Mosquitto checks it)."""
    try:
        _, kind, iterations, salt, digest = stored.split("$")
        if kind != "7" or not 1 <= int(iterations) <= 1_000_000:
            return False
        offered = hashlib.pbkdf2_hmac("sha512", plaintext.encode("utf-8"),
                                      base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(offered, base64.b64decode(digest))
    except ValueError:
        return False
