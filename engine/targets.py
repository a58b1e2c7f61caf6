"""Where endpoints may point: an optional allow list of hosts and networks, and an option to
refuse loopback, link-local, private and other non-public addresses.

The policy is checked when a configuration is saved (its host, and the addresses it resolves to)
and again on every new connection, against the address actually connected to, so a name that
resolves elsewhere later (DNS rebinding) is caught before anything is sent.
"""

import fnmatch
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

HOST_PATTERN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


class TargetRefused(ValueError):
    """The endpoint's host or address is not allowed by the outbound target policy."""


def _address(text):
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_network(text):
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class TargetPolicy:
    """``hosts``: host name patterns (``api.example.com``, ``*.example.com``); ``networks``:
    allowed networks; ``deny_private``: refuse addresses that are not public (unless inside an
    allowed network). No hosts and no networks: any host is allowed."""

    hosts: tuple = ()
    networks: tuple = ()
    deny_private: bool = False

    @classmethod
    def parse(cls, allowed_text, deny_private=False):
        """Build a policy from a comma- or space-separated allow list; ValueError names a bad
        entry."""
        hosts, networks = [], []
        for entry in (allowed_text or "").replace(",", " ").split():
            entry = entry.strip().lower()
            if HOST_PATTERN.fullmatch(entry.removeprefix("*.")) and not _is_network(entry):
                hosts.append(entry)
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is neither a host name nor a network") from None
        return cls(tuple(hosts), tuple(networks), bool(deny_private))

    @property
    def active(self):
        return bool(self.hosts or self.networks or self.deny_private)

    def _host_allowed(self, host):
        host = host.lower().rstrip(".")
        return any(
            fnmatch.fnmatchcase(host, pattern) if pattern.startswith("*.") else host == pattern
            for pattern in self.hosts
        )

    def _in_networks(self, address):
        return any(address in network for network in self.networks)

    def check(self, host, addresses):
        """Raise :class:`TargetRefused` unless ``host`` resolving to ``addresses`` may be used."""
        if not self.active:
            return
        parsed = [_address(address) for address in addresses]
        if self.hosts or self.networks:
            by_name = self._host_allowed(host)
            by_network = bool(parsed) and all(self._in_networks(a) for a in parsed)
            if not (by_name or by_network):
                raise TargetRefused(f"host {host} is not in the allowed outbound targets")
        if self.deny_private:
            for address in parsed:
                if not address.is_global and not self._in_networks(address):
                    raise TargetRefused(
                        f"host {host} resolves to {address}, a non-public address "
                        "(loopback, link-local, private or reserved)"
                    )


def resolve(host, port):
    """The addresses ``host`` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url, policy, resolver=resolve):
    """Check the host of ``url`` and every address it resolves to against ``policy``."""
    if not policy.active:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(_address(host))]
    except ValueError:
        addresses = resolver(host, port)
    policy.check(host, addresses)
