"""Where a webhook may go (SSRF guard): the URL's rules, and the one address it resolves to
that is checked and then connected to, so DNS can't answer differently in between."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA = ipaddress.ip_address("169.254.169.254")
CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(Exception):
    """The URL may not be delivered to (its text says why)."""


@dataclass(frozen=True)
class Target:
    """A URL resolved and checked: connect to `address`, say `host` in Host and SNI."""

    scheme: str
    host: str
    port: int
    address: str

    def connect_url(self, url: str) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return parts._replace(netloc=f"{literal}:{self.port}").geturl()

    def host_header(self) -> str:
        """The Host header of the original URL (its port only when not the default)."""
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why an endpoint URL is refused (None: it is fine): https only (http too when private
    targets are allowed), a host, and a port that is a number."""
    try:
        parts = urlsplit(url)
        hostname, _port = parts.hostname, parts.port
    except ValueError:  # a bracketed host that is no IPv6 address, a port that is no number
        return "the URL is not a valid URL"
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        return f"the URL must start with {' or '.join(scheme + '://' for scheme in schemes)}"
    if not hostname:
        return "the URL names no host"
    try:
        hostname.encode("idna")
    except UnicodeError:  # a label empty, too long, or with characters no host name has
        return "the URL's host is not a valid host name"
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not a public destination: loopback, private, link-local, CGNAT,
    cloud metadata, multicast, reserved or unspecified (IPv4 inside IPv6 checked as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return address_problem(embedded)
    if address == METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a shared (CGNAT) address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "an address that is not public"
    return None


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host once and check every address it resolves to; the first is the
    one to connect to. TargetRefused when any of them is not public (unless allowed)."""
    problem = url_problem(url, allow_private=allow_private)
    if problem:
        raise TargetRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetRefused(f"the host {host} does not resolve") from error
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"the host {host} does not resolve")
    if not allow_private:
        for address in addresses:
            why = address_problem(address)
            if why:
                raise TargetRefused(f"the host {host} resolves to {address}, {why}")
    return Target(scheme=parts.scheme, host=host, port=port, address=str(addresses[0]))


def target_problem(url: str, *, allow_private: bool) -> str | None:
    """Why a delivery may not go to this URL now (None: it may)."""
    try:
        resolve_target(url, allow_private=allow_private)
    except TargetRefused as refused:
        return str(refused)
    return None
