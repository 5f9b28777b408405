"""The signature on every webhook request, and its check (docs/webhooks.md).

`X-Refiner-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
endpoint's secret as the key. The timestamp is inside the signed string, so a captured
request cannot be replayed later with a fresh time: receivers refuse old ones.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Refiner-Signature"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
