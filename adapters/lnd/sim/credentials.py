"""Per-node TLS certificate and macaroon files, made the way LND lays them
out (tls.cert, tls.key, admin.macaroon in the node's directory).

The certificate is self-signed (ECDSA P-256, like LND's) for 127.0.0.1,
::1 and localhost, so clients pin it as their root. The macaroon is an opaque
secret: clients send its hex in the "macaroon" metadata and the simulator
compares it; it is not a parsed, caveat-checked macaroon. Existing files are
reused, so a restarted simulator keeps its clients' credentials valid.
This module must not start servers or read state other than these files.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class NodeCredentials:
    tls_cert_path: Path
    tls_key_path: Path
    macaroon_path: Path

    def tls_cert_pem(self) -> bytes:
        return self.tls_cert_path.read_bytes()

    def tls_key_pem(self) -> bytes:
        return self.tls_key_path.read_bytes()

    def macaroon_hex(self) -> str:
        return self.macaroon_path.read_bytes().hex()


def ensure_credentials(node_dir: Path, *, alias: str) -> NodeCredentials:
    """Creates the node's cert, key and macaroon unless they already exist."""
    node_dir.mkdir(parents=True, exist_ok=True)
    credentials = NodeCredentials(
        node_dir / "tls.cert", node_dir / "tls.key", node_dir / "admin.macaroon"
    )
    if not (credentials.tls_cert_path.exists() and credentials.tls_key_path.exists()):
        cert_pem, key_pem = _self_signed_certificate(alias)
        _write_private(credentials.tls_key_path, key_pem)
        credentials.tls_cert_path.write_bytes(cert_pem)
    if not credentials.macaroon_path.exists():
        # a fixed marker plus a random secret: opaque to clients, unique per node
        _write_private(credentials.macaroon_path, b"\x02mostro-py-sim\x00" + os.urandom(32))
    return credentials


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _self_signed_certificate(alias: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mostro-py lnd simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, alias),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem
