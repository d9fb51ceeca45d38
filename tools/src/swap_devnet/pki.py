"""A private CA and one certificate per service, for mutual TLS between the services.

    python -m swap_devnet.pki OUT_DIR [--host NAME ...]

writes OUT_DIR/ca/{ca.crt,ca.key} and, for each identity, OUT_DIR/<identity>/{tls.crt,tls.key,ca.crt}: the
layout of a Kubernetes TLS Secret, which is what every service's <PREFIX>_TLS_DIR expects. A certificate's
common name is its identity (what the servers' <PREFIX>_TLS_CLIENTS lists); its subject alternative names are
the identity itself (the compose service name), localhost, 127.0.0.1, ::1 and any --host given. Keys are
ECDSA P-256, written 0600. The local stack calls issue_all() at every start; compose and Kubernetes users
run the module once (`make certs`) or let cert-manager issue the same layout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Who speaks gRPC inside: the four services, the gateway and Envoy as their clients, and the operator's tools.
IDENTITIES = ("session", "quote", "chain-base", "chain-near", "gateway", "envoy", "operator")
_VALID_DAYS = 365
_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


@dataclass(frozen=True)
class Issued:
    """Where one identity's files are."""

    identity: str
    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls.key"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swap"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


class Authority:
    """A CA key and certificate that sign the services' certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = _name("swap internal CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(self.cert_pem)
        _write_private(directory / "ca.key", _key_pem(self.key))

    def issue(self, identity: str, directory: Path, hosts: Iterable[str] = ()) -> Issued:
        """A server-and-client certificate for `identity`, written with the CA beside it."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(identity), x509.DNSName("localhost")]
        names += [x509.DNSName(host) for host in hosts if host not in (identity, "localhost")]
        names += [x509.IPAddress(address) for address in _LOOPBACK]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(identity))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        issued = Issued(identity, directory)
        directory.mkdir(parents=True, exist_ok=True)
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(issued.key, _key_pem(key))
        issued.ca.write_bytes(self.cert_pem)
        return issued


def issue_all(out: Path, identities: Sequence[str] = IDENTITIES, hosts: Iterable[str] = ()) -> dict[str, Issued]:
    """A new CA in out/ca and a certificate for each identity in out/<identity>."""
    authority = Authority.create()
    authority.save(out / "ca")
    extra = tuple(hosts)
    return {identity: authority.issue(identity, out / identity, extra) for identity in identities}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory to write the CA and the certificates into")
    parser.add_argument("--host", action="append", default=[], help="another DNS name for every certificate")
    args = parser.parse_args(argv)
    issued = issue_all(args.out, hosts=args.host)
    for item in issued.values():
        print(f"{item.identity}: {item.directory}")


if __name__ == "__main__":
    main()
