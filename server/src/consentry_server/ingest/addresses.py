"""Where a request comes from, used for two things and then forgotten.

The connecting address is believed; the forwarding header the proxies are configured to write
(``X-Forwarded-For`` by default, or the standard ``Forwarded``) is believed only when the connection comes from a
configured trusted proxy, and then only as far back as the first address that is not a trusted proxy. Only that
one header is read: a proxy passes the other through untouched, so a client could write it to pose as anyone.

The address found is used to look up a country (an offline database of the Regional Internet Registries'
allocations, through the ``iptocc`` package; off with ``country_lookup = false``) and, hashed with a salt that
lives in memory and changes every day, as the key of the per-source rate limit. It is never stored, logged or
returned.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers

__all__ = ["FORWARDED_HEADERS", "Network", "client_address", "country_of", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The forwarding headers a deployment can choose to believe (lower case, as Starlette gives them).
FORWARDED_HEADERS = ("x-forwarded-for", "forwarded")


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` as networks; a ``ValueError`` names what is not one."""
    networks = []
    for part in text.split(","):
        part = part.strip()  # noqa: PLW2901 - the cleaned-up part
        if part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return tuple(networks)


def _plain(ip: _IPAddress) -> _IPAddress:
    """An IPv4-mapped IPv6 address (how a dual-stack listener sees IPv4 peers) as the IPv4 address it is."""
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def _ip(text: str) -> _IPAddress | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return _plain(ipaddress.ip_address(text))
    except ValueError:
        return None


def _forwarded_chain(headers: Headers, header: str) -> list[str]:
    """Addresses named by the forwarding ``header``, nearest proxy last (as they were appended)."""
    chain: list[str] = []
    if header == "forwarded":
        for value in headers.getlist("forwarded"):
            for element in value.split(","):
                for pair in element.split(";"):
                    name, _, token = pair.partition("=")
                    if name.strip().lower() == "for":
                        chain.append(token)
    else:
        for value in headers.getlist(header):
            chain.extend(value.split(","))
    return chain


def client_address(
    peer: str | None, headers: Headers, trusted: Sequence[Network], header: str = "x-forwarded-for"
) -> str | None:
    """The address the request really came from, as far as it can be trusted.

    ``header`` is the one forwarding header the trusted proxies write (one of ``FORWARDED_HEADERS``).
    """
    current = _ip(peer) if peer else None
    if current is None:
        return None
    for hop in reversed(_forwarded_chain(headers, header)):
        if not any(current in network for network in trusted):
            break
        previous = _ip(hop)
        if previous is None:
            break
        current = previous
    return str(current)


@functools.lru_cache(maxsize=1)
def _lookup() -> object:
    import iptocc  # noqa: PLC0415 - loads its embedded database once, when a lookup is first needed

    return iptocc.country_code


def country_of(address: str | None) -> str | None:
    """The ISO 3166 alpha-2 code of the country ``address`` is allocated to, or ``None`` (private, unknown)."""
    if address is None:
        return None
    ip = _plain(ipaddress.ip_address(address))
    if not ip.is_global:
        return None
    try:
        code = _lookup()(str(ip))  # type: ignore[operator]
    except (ValueError, TypeError):
        return None
    return code if isinstance(code, str) and len(code) == 2 and code.isalpha() else None  # noqa: PLR2004
