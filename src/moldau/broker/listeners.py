"""Kafka's listener model: named listeners, their security protocols, the advertised ones.

Theory of operation. `listeners` names the sockets a node binds (`NAME://host:port`, several,
comma-separated; an empty host binds every interface). Each listener name maps to one of
Kafka's four security protocols through `listener.security.protocol.map` (default: each
protocol name maps to itself; under KRaft, when the map is not set and nothing uses SSL or
SASL, the `controller.listener.names` map to PLAINTEXT, as Kafka 4 does). The listeners named
in `controller.listener.names` serve the metadata quorum; the others serve clients and other
brokers. `advertised.listeners` is what the node tells clients (Metadata, FindCoordinator) and
other nodes (broker registration); by default the broker listeners themselves.
`inter.broker.listener.name` (or `security.inter.broker.protocol`, the listener of that name)
is the listener other brokers connect to.

Settings of a listener come from `listener.name.<lower-case name>.<key>` when present and
from the plain `<key>` otherwise (Kafka's per-listener prefix); `ListenerSettings.value` does
that lookup.

Everything here is pure parsing and validation: a malformed value raises `ListenerError` whose
text names the key and the expected form, which the server prints as its one-line refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL = "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"
SECURITY_PROTOCOLS = (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)
DEFAULT_PROTOCOL_MAP = {protocol: protocol for protocol in SECURITY_PROTOCOLS}
DEFAULT_LISTENER = "PLAINTEXT://127.0.0.1:9092"

# NAME://host:port, host possibly empty or a bracketed IPv6 address (Kafka's EndPoint regex).
_ENDPOINT = re.compile(r"^([A-Za-z0-9_.-]+)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$")
_LISTENER_FORM = ("NAME://host:port[,NAME://host:port...], a listener list such as "
                  "PLAINTEXT://127.0.0.1:9092,SSL://:9093 with a port from 0 to 65535")


class ListenerError(ValueError):
    """A listener setting that cannot be used; the text names the key and the expected form."""


@dataclass(frozen=True, slots=True)
class Listener:
    name: str  # upper case, as Kafka normalises listener names
    host: str  # "" binds every interface
    port: int  # 0: any free port (replaced by the bound port once listening)
    security_protocol: str

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in (SSL, SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in (SASL_PLAINTEXT, SASL_SSL)

    @property
    def config_prefix(self) -> str:
        return f"listener.name.{self.name.lower()}."

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


@dataclass
class ListenerSettings:
    """The resolved listener configuration of one node."""

    listeners: list[Listener]
    # What clients and other nodes are told: broker listeners, then controller listeners.
    advertised_listeners: list[Listener]
    controller_listener_names: tuple[str, ...] = ()
    inter_broker_listener_name: str = PLAINTEXT
    protocol_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROTOCOL_MAP))
    # Whether advertised.listeners was given (else it follows `listeners`, bound ports included).
    advertised_explicit: bool = False

    @property
    def broker_listeners(self) -> list[Listener]:
        return [listener for listener in self.listeners if listener.name not in self.controller_listener_names]

    @property
    def controller_listeners(self) -> list[Listener]:
        return [listener for listener in self.listeners if listener.name in self.controller_listener_names]

    @property
    def advertised_broker_listeners(self) -> list[Listener]:
        return [listener for listener in self.advertised_listeners
                if listener.name not in self.controller_listener_names]

    def listener(self, name: str) -> Listener | None:
        for listener in self.listeners:
            if listener.name == name.upper():
                return listener
        return None

    def advertised(self, name: str) -> Listener | None:
        for listener in self.advertised_listeners:
            if listener.name == name.upper():
                return listener
        return None

    def rebind(self, name: str, host: str | None = None, port: int | None = None) -> None:
        """Change where a listener binds (a --host/--port flag, or the port a port-0 listener
        was given). A derived advertised listener follows."""
        self.listeners = [replace(l, host=l.host if host is None else host, port=l.port if port is None else port)
                          if l.name == name else l for l in self.listeners]
        if not self.advertised_explicit:
            self.advertised_listeners = list(self.listeners)
        elif port is not None:  # an advertised port 0 means "whatever this listener was given"
            self.advertised_listeners = [replace(l, port=port) if l.name == name and l.port == 0 else l
                                         for l in self.advertised_listeners]


def parse_endpoints(key: str, value: str) -> list[tuple[str, str, int]]:
    """`NAME://host:port,...` → [(NAME, host, port)], names upper-cased and unique."""
    endpoints = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        match = _ENDPOINT.match(item)
        if match is None:
            raise ListenerError(f"invalid value {value!r} for {key}: expected {_LISTENER_FORM}")
        name, host, port = match.group(1).upper(), match.group(2), int(match.group(3))
        if not 0 <= port <= 65535:
            raise ListenerError(f"invalid value {value!r} for {key}: port {port} is out of range, expected 0-65535")
        if any(name == other for other, _h, _p in endpoints):
            raise ListenerError(f"listener name {name} appears twice in {key}: each listener needs its own name")
        endpoints.append((name, host, port))
    if not endpoints:
        raise ListenerError(f"{key} is empty: expected {_LISTENER_FORM}")
    return endpoints


def parse_protocol_map(value: str) -> dict[str, str]:
    """`NAME:PROTOCOL,...` (listener.security.protocol.map)."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        name, sep, protocol = item.partition(":")
        name, protocol = name.strip().upper(), protocol.strip().upper()
        if not sep or not name or protocol not in SECURITY_PROTOCOLS:
            raise ListenerError(
                f"invalid entry {item!r} in listener.security.protocol.map: expected NAME:PROTOCOL with "
                f"PROTOCOL one of {', '.join(SECURITY_PROTOCOLS)}, e.g. CONTROLLER:PLAINTEXT,CLIENT:SASL_SSL")
        mapping[name] = protocol
    return mapping


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(name.strip().upper() for name in (value or "").split(",") if name.strip())


def resolve(props: dict[str, str]) -> ListenerSettings:
    """The listener settings of a node from its server.properties (only listener keys are read)."""
    controller_names = _names(props.get("controller.listener.names"))
    raw_listeners = parse_endpoints("listeners", props.get("listeners") or DEFAULT_LISTENER)
    if not controller_names and any(name == "CONTROLLER" for name, _h, _p in raw_listeners):
        # Kafka would refuse a CONTROLLER listener without controller.listener.names; Kafka's
        # own examples always pair them, so the name alone says what the listener is for.
        controller_names = ("CONTROLLER",)
    protocol_map = _protocol_map(props, controller_names, raw_listeners)
    listeners = [_listener("listeners", name, host, port, protocol_map) for name, host, port in raw_listeners]
    _check_ports(listeners)
    advertised_value = props.get("advertised.listeners")
    if advertised_value:
        advertised = [_listener("advertised.listeners", name, host, port, protocol_map)
                      for name, host, port in parse_endpoints("advertised.listeners", advertised_value)]
        _check_advertised(advertised, listeners, controller_names)
        # Listeners missing from advertised.listeners are advertised as they bind (Kafka).
        named = {listener.name for listener in advertised}
        advertised += [listener for listener in listeners if listener.name not in named]
    else:
        advertised = list(listeners)
    settings = ListenerSettings(listeners, advertised, controller_names, PLAINTEXT, protocol_map,
                               bool(advertised_value))
    settings.inter_broker_listener_name = _inter_broker_listener(props, settings)
    _check_controller_listeners(props, settings)
    return settings


def _protocol_map(props: dict[str, str], controller_names: tuple[str, ...], raw_listeners) -> dict[str, str]:
    value = props.get("listener.security.protocol.map")
    if value is not None:
        return parse_protocol_map(value)
    mapping = dict(DEFAULT_PROTOCOL_MAP)
    # Kafka 4 (KRaft): with the default map, controller listeners are PLAINTEXT unless some
    # listener or controller listener is named after SSL or a SASL protocol.
    secured = {SSL, SASL_SSL, SASL_PLAINTEXT}
    if not any(name in secured for name in controller_names) and not any(name in secured for name, _h, _p in raw_listeners):
        for name in controller_names:
            mapping.setdefault(name, PLAINTEXT)
    return mapping


def _listener(key: str, name: str, host: str, port: int, protocol_map: dict[str, str]) -> Listener:
    protocol = protocol_map.get(name)
    if protocol is None:
        raise ListenerError(
            f"no security protocol for listener {name} in {key}: add {name}:PROTOCOL to "
            f"listener.security.protocol.map (PROTOCOL one of {', '.join(SECURITY_PROTOCOLS)})")
    return Listener(name, host, port, protocol)


def _check_ports(listeners: list[Listener]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for listener in listeners:
        if listener.port == 0:
            continue
        key = (listener.host, listener.port)
        if key in seen or ("", listener.port) in seen or (listener.host == "" and any(p == listener.port for _h, p in seen)):
            raise ListenerError(f"listeners {seen.get(key, '?')} and {listener.name} both use port {listener.port}: "
                                "each listener needs its own port")
        seen[key] = listener.name


def _check_advertised(advertised: list[Listener], listeners: list[Listener], controller_names) -> None:
    bound = {listener.name for listener in listeners}
    for listener in advertised:
        if listener.name not in bound:
            raise ListenerError(f"advertised.listeners names {listener.name}, which is not in listeners: "
                                "every advertised listener must be a listener")
        if listener.host in ("0.0.0.0", "::"):
            raise ListenerError(f"advertised.listeners cannot use the nonroutable meta-address {listener.host} "
                                f"({listener.name}): advertise a host name or address clients can reach")


def _inter_broker_listener(props: dict[str, str], settings: ListenerSettings) -> str:
    by_name = props.get("inter.broker.listener.name", "").strip().upper()
    by_protocol = props.get("security.inter.broker.protocol", "").strip().upper()
    if by_name and by_protocol:
        raise ListenerError("only one of inter.broker.listener.name and security.inter.broker.protocol may be set")
    if by_protocol and by_protocol not in SECURITY_PROTOCOLS:
        raise ListenerError(f"invalid value {by_protocol!r} for security.inter.broker.protocol: "
                            f"expected one of {', '.join(SECURITY_PROTOCOLS)}")
    name = by_name or by_protocol
    broker_names = [listener.name for listener in settings.advertised_broker_listeners]
    if name:
        if name in settings.controller_listener_names:
            raise ListenerError(f"inter.broker.listener.name {name} is a controller listener "
                                "(controller.listener.names): brokers must talk over a broker listener")
        if name not in broker_names:
            key = "inter.broker.listener.name" if by_name else "security.inter.broker.protocol"
            raise ListenerError(f"{key} {name} is not a broker listener in advertised.listeners "
                                f"(expected one of: {', '.join(broker_names) or 'none'})")
        return name
    # Neither key: Kafka's default is the PLAINTEXT listener. Without one Kafka refuses to
    # start; a single node has no inter-broker traffic, so the first broker listener serves.
    return PLAINTEXT if PLAINTEXT in broker_names or not broker_names else broker_names[0]


def _check_controller_listeners(props: dict[str, str], settings: ListenerSettings) -> None:
    roles = {role.strip() for role in props.get("process.roles", "").split(",") if role.strip()}
    names = settings.controller_listener_names
    if "controller" in roles and names:
        bound = {listener.name for listener in settings.listeners}
        if not any(name in bound for name in names):
            raise ListenerError(f"controller.listener.names ({','.join(names)}) names no listener in listeners: "
                                "add NAME://host:port for it")
    if not settings.broker_listeners and "broker" in roles | ({"broker"} if not roles else set()):
        raise ListenerError("listeners has only controller listeners: a broker needs at least one other listener")
    for name in names:
        if name not in settings.protocol_map:
            raise ListenerError(f"no security protocol for controller listener {name}: add {name}:PROTOCOL "
                                "to listener.security.protocol.map")
