"""Free TCP ports for servers that must know their port before they bind (a quorum's voters
list every controller's address up front; a restarted node must come back on its own port).

A port the OS hands out for `bind(0)` lies in the ephemeral range, the same range it gives the
outgoing connections of every client on the machine — so between our check and our bind a
client socket can take it ("address already in use"). These ports come from below the
ephemeral range instead (where the OS never picks on its own), are checked bindable on
127.0.0.1, and are never handed out twice by one process.
"""

from __future__ import annotations

import random
import socket
import threading

_LOW = 20_000
_given: set[int] = set()
_lock = threading.Lock()
_rng = random.SystemRandom()


def ephemeral_low() -> int:
    """The lowest port the OS hands to outgoing connections and bind(0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    high = ephemeral_low() - 1
    with _lock:
        for _ in range(1_000):
            port = _rng.randint(_LOW, high) if high > _LOW else _rng.randint(1_024, 65_535)
            if port in _given:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _given.add(port)
            return port
    with socket.socket() as sock:  # a crowded machine: let the OS choose
        sock.bind((host, 0))
        return sock.getsockname()[1]
