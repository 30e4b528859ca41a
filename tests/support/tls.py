"""A throwaway self-signed TLS certificate for servers a test runs on loopback."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["self_signed"]


def self_signed(host: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """A fresh P-256 key and a certificate for the IP address ``host``, signed by that key.

    The certificate is its own trust anchor: a client trusts it by loading it as its CA file
    (``ssl.create_default_context(cafile=...)``), so it says ``CA:TRUE`` and names ``host`` as
    an IP subjectAltName, which is what hostname checking matches an address against (RFC 6125
    §6.2.1; the common name is not used). Valid from five minutes ago (clock skew between the
    processes of a test) for a day.

    Args:
        host: the IP address the server is reached at.

    Returns:
        The certificate and the PKCS#8 private key, each PEM-encoded.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
