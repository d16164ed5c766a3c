"""No packet of the e2e suite leaves the machine: checks for tests/e2e/netns.sh's network namespace.

``make e2e`` runs pytest through ``tests/e2e/netns.sh``, i.e. inside a fresh network namespace that has
only ``lo`` (plus the addresses netns.sh put on it). Every process the suite starts inherits it.
``NetSampler`` watches, for the whole session,

- every TCP/UDP socket of that namespace (``/proc/self/net/{tcp,tcp6,udp,udp6}`` lists all sockets of
  the reader's namespace, whichever process owns them): its remote address must be unspecified,
  loopback, or an address of this namespace's own interfaces;
- every descendant of the pytest process: it must be in this namespace (or one nested inside it),
  never in the host namespace netns.sh left.

tests/e2e/test_zz_network_isolation.py asserts on what it saw, after every scenario ran.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST_NETNS_ENV = "KNSCALE_E2E_HOST_NETNS"
NETNS_ENV = "KNSCALE_E2E_NETNS_ID"


def current_netns(pid: int | str = "self") -> str | None:
    try:
        return str(Path(f"/proc/{pid}/ns/net").readlink())
    except OSError:
        return None  # the process is gone, or not ours to read


def isolation_problem() -> str | None:
    """Why this process is not in netns.sh's namespace (None when it is)."""
    want = os.environ.get(NETNS_ENV)
    host = os.environ.get(HOST_NETNS_ENV)
    here = current_netns()
    if not want or not host:
        return (
            "the e2e suite must run inside tests/e2e/netns.sh's loopback-only network namespace "
            "(no packet may leave the machine); run it with `make e2e` or "
            "`bash tests/e2e/netns.sh .venv/bin/pytest tests/e2e`"
        )
    if here != want or here == host:
        return f"this process is in network namespace {here}, not netns.sh's {want} (host: {host})"
    return None


def interfaces() -> list[str]:
    """Interface names of this process's network namespace (from /proc/self/net/dev)."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def local_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Addresses assigned inside this namespace (netns.sh's extra loopback addresses among them)."""
    out: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    # IPv4: /proc/net/fib_trie lists "/32 host LOCAL" entries for every local address.
    lines = Path("/proc/self/net/fib_trie").read_text().splitlines()
    for prev, line in itertools.pairwise(lines):
        if "/32 host LOCAL" in line:
            out.add(ipaddress.IPv4Address(prev.split()[-1]))
    for line in Path("/proc/self/net/if_inet6").read_text().splitlines():
        out.add(ipaddress.IPv6Address(int(line.split()[0], 16)))
    return out


def _decode(hexaddr: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        addr = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
        if addr.ipv4_mapped:
            addr = addr.ipv4_mapped
    return addr, int(port, 16)


def sockets() -> list[tuple[str, str, str]]:
    """(protocol, local, remote) of every TCP/UDP socket in this namespace."""
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            rows = Path(f"/proc/self/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, remote = _decode(cols[1]), _decode(cols[2])
            out.append((proto, f"{local[0]}:{local[1]}", f"{remote[0]}:{remote[1]}"))
    return out


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "?"


@dataclass
class NetSampler:
    """Background sampler of the namespace's sockets and the suite's processes (see module doc)."""

    interval: float = 0.5
    samples: int = 0
    sockets_seen: int = 0
    processes_seen: set[int] = field(default_factory=set)
    remotes_seen: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._local = local_addresses()
        self._host = os.environ.get(HOST_NETNS_ENV)
        self._thread = threading.Thread(target=self._run, name="knscale-e2e-netguard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def allowed(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return addr.is_unspecified or addr.is_loopback or addr in self._local

    def sample(self) -> None:
        for proto, local, remote in sockets():
            self.sockets_seen += 1
            host = remote.rsplit(":", 1)[0]
            addr = ipaddress.ip_address(host)
            if not addr.is_unspecified:
                self.remotes_seen.add(host)
            if not self.allowed(addr):
                self.violations.append(f"{proto} socket {local} -> {remote}: not loopback, not ours")
        for pid in _descendants(os.getpid()):
            ns = current_netns(pid)
            if ns is None:
                continue
            self.processes_seen.add(pid)
            if ns == self._host:
                self.violations.append(f"process {pid} ({_cmdline(pid)}) is in the host netns {ns}")
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # a sampler that silently died would prove nothing: record it
                self.violations.append(f"sampler error: {exc!r}")
            self._stop.wait(self.interval)


def dial_off_machine(timeout: float = 2.0) -> str:
    """Try to open a TCP connection to a documentation address (192.0.2.1, TEST-NET-1) and to resolve a
    public name; returns how each failed. In the namespace both must fail at once."""
    results = []
    start = time.monotonic()
    try:
        with socket.create_connection(("192.0.2.1", 443), timeout=timeout):
            results.append("connected to 192.0.2.1:443")
    except OSError as exc:
        results.append(f"connect 192.0.2.1:443: {exc.__class__.__name__} errno={exc.errno}")
    try:
        socket.getaddrinfo("proxy.golang.org", 443)
        results.append("resolved proxy.golang.org")
    except OSError as exc:
        results.append(f"resolve proxy.golang.org: {exc.__class__.__name__}")
    results.append(f"{time.monotonic() - start:.2f}s")
    return "; ".join(results)
