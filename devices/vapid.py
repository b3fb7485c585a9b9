"""The VAPID key pair Web Push is signed with: from settings, or generated under var/ in demo mode."""

import base64
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from py_vapid import Vapid

from devices.providers import ProviderNotConfigured


def _demo_key_path():
    return settings.VAR_DIR / "vapid_private.pem"


def _load_key_text() -> str:
    if settings.VAPID_PRIVATE_KEY:
        return settings.VAPID_PRIVATE_KEY
    if not settings.DEMO_MODE:
        raise ProviderNotConfigured("VAPID_PRIVATE_KEY is not set")
    path = _demo_key_path()
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
    return path.read_text()


@cache
def _vapid_for(text: str) -> Vapid:
    text = text.strip()
    if "BEGIN" in text:
        return Vapid.from_pem(text.encode())
    return Vapid.from_string(private_key=text)  # base64url DER or raw, as `vapid --gen` prints


def vapid() -> Vapid:
    return _vapid_for(_load_key_text())


def vapid_public_key() -> str:
    """The application server key the PWA passes to PushManager.subscribe: base64url of the
    uncompressed P-256 point, unpadded."""
    raw = vapid().public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
