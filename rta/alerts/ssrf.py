"""Refuse notification targets that reach inside the network (SSRF).

A target is checked when rules load (the host as written), and again at every send after
resolving DNS; the send then connects to the address that was checked, so a name that
re-resolves to 127.0.0.1 later (DNS rebinding) gets nowhere. Only public (global) unicast
addresses pass, unless the project's allow-list names the host or a network holding it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rta.errors import RtaError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
# Names that are internal whatever DNS says (cloud metadata services, the local machine).
_INTERNAL_NAMES = ("localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class TargetRefused(RtaError):
    """A notification target points at a private, loopback, link-local or metadata address."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts and networks trusted for local use (``[alerts] allow_hosts`` in rta.toml)."""

    names: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """``["127.0.0.1", "10.0.0.0/8", "hooks.internal"]`` -> an allow-list."""
        names: set[str] = set()
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` is listed by name."""
        return host.lower().rstrip(".") in self.names

    def allows_ip(self, ip: IPAddress) -> bool:
        """Whether ``ip`` is in a listed network."""
        return any(ip.version == n.version and ip in n for n in self.networks)


def literal_ip(host: str) -> IPAddress | None:
    """The address a host written as an IP literal means, in any form a resolver accepts.

    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1 to
    ``inet_aton`` (and to curl and browsers), so they are read the same way here.

    >>> str(literal_ip("0x7f.1")), str(literal_ip("[::ffff:127.0.0.1]")), literal_ip("example.com")
    ('127.0.0.1', '::ffff:7f00:1', None)
    """
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a target, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = refusal(inner)
            return f"{why} (embedded in {ip})" if why else None
    for test, why in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local (cloud metadata lives here)"),
        (ip.is_private, "private"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    ):
        if test:
            return f"{why} address {ip}"
    return None


def _refuse(url: str, why: str) -> TargetRefused:
    return TargetRefused(f"notification target {url!r} refused: {why}; to use it on purpose, add it to [alerts] allow_hosts in rta.toml")


def host_port(url: str) -> tuple[str, int]:
    """The host and port a URL connects to (http, https, smtp, smtps)."""
    parts = urlsplit(url)
    defaults = {"http": 80, "https": 443, "smtp": 25, "smtps": 465}
    if parts.scheme not in defaults or not parts.hostname:
        msg = f"notification target {url!r}: expected an http(s) or smtp(s) URL with a host"
        raise TargetRefused(msg)
    try:
        port = parts.port or defaults[parts.scheme]
    except ValueError:
        msg = f"notification target {url!r}: the port is not a number from 1 to 65535"
        raise TargetRefused(msg) from None
    return parts.hostname, port


def check_written(url: str, allow: AllowList) -> None:
    """Check the host as written, without DNS (when rules load)."""
    host, _ = host_port(url)
    if allow.allows_name(host):
        return
    ip = literal_ip(host)
    if ip is None:
        name = host.lower().rstrip(".")
        if any(name == n or name.endswith("." + n) for n in _INTERNAL_NAMES) or name.endswith((".local", ".internal")):
            raise _refuse(url, f"{host!r} names an internal host")
        return
    why = None if allow.allows_ip(ip) else refusal(ip)
    if why:
        raise _refuse(url, why)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        msg = f"cannot resolve {host!r}: {err}"
        raise TargetRefused(msg) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(url: str, allow: AllowList, resolver: Resolver = system_resolver) -> str:
    """Resolve the URL's host and return the address to connect to; every address must pass.

    One bad address among several refuses the target: a rebinding name would otherwise win
    whenever the resolver happens to order it first.
    """
    check_written(url, allow)
    host, port = host_port(url)
    if allow.allows_name(host):
        return resolver(host, port)[0]
    addresses: Sequence[str] = [host.strip("[]")] if literal_ip(host) is not None else resolver(host, port)
    if not addresses:
        raise _refuse(url, f"{host!r} resolves to no address")
    for text in addresses:
        ip = literal_ip(text)
        if ip is None:
            raise _refuse(url, f"{host!r} resolves to {text!r}, which is not an address")
        why = None if allow.allows_ip(ip) else refusal(ip)
        if why:
            raise _refuse(url, f"{host!r} resolves to a {why}")
    first = literal_ip(addresses[0])
    return str(first)
