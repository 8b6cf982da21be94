"""Finding connector and converter classes by the names users write in properties files.

Theory of operation: Kafka's names (`org.apache.kafka.connect.file.FileStreamSourceConnector`)
and its aliases (`FileStreamSource`, `FileStreamSourceConnector`) map to the built-in classes.
Any other name is a Python import path, `package.module.ClassName` or `package.module:ClassName`;
the class must subclass the expected base (`SourceConnector`/`SinkConnector`, `Converter`).
A name that resolves to nothing gives the error Kafka gives, listing what is available.
"""

from __future__ import annotations

import importlib

from moldau.connect.api import Connector, SinkConnector, SourceConnector
from moldau.connect.config import ConfigError
from moldau.connect.converters import CONVERTER_CLASSES, Converter
from moldau.connect.file import FileStreamSinkConnector, FileStreamSourceConnector

BUILTIN_CONNECTORS = {
    "org.apache.kafka.connect.file.FileStreamSourceConnector": FileStreamSourceConnector,
    "org.apache.kafka.connect.file.FileStreamSinkConnector": FileStreamSinkConnector,
}


def _aliases(full_names: dict[str, type]) -> dict[str, type]:
    """Kafka's aliases: the simple class name, and for connectors also without 'Connector'."""
    table = dict(full_names)
    for name, cls in full_names.items():
        simple = name.rsplit(".", 1)[-1]
        table[simple] = cls
        if simple.endswith("Connector"):
            table[simple[: -len("Connector")]] = cls
    return table


_CONNECTOR_TABLE = _aliases(BUILTIN_CONNECTORS)
_CONVERTER_TABLE = _aliases(CONVERTER_CLASSES)


def _import(name: str) -> type | None:
    module_name, _, attribute = name.partition(":") if ":" in name else name.rpartition(".")
    if not module_name or not attribute:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, attribute, None)
    return found if isinstance(found, type) else None


def connector_class(name: str) -> type[Connector]:
    cls = _CONNECTOR_TABLE.get(name) or _import(name)
    if cls is None or not issubclass(cls, (SourceConnector, SinkConnector)):
        available = ", ".join(sorted(BUILTIN_CONNECTORS) + ["FileStreamSource", "FileStreamSink"])
        raise ConfigError(
            f"Failed to find any class that implements Connector and which name matches {name}; "
            f"available connectors are: {available}, or a Python class as package.module.ClassName"
        )
    return cls


def converter_class(name: str) -> type[Converter]:
    cls = _CONVERTER_TABLE.get(name) or _import(name)
    if cls is None or not issubclass(cls, Converter):
        raise ConfigError(
            f"Class {name} cannot be found; converters are {', '.join(sorted(CONVERTER_CLASSES))}, "
            "or a Python moldau.connect.converters.Converter subclass as package.module.ClassName"
        )
    return cls


def connector_plugins() -> list[dict[str, str]]:
    """GET /connector-plugins: the built-in connectors, as Kafka lists them."""
    plugins = []
    for name, cls in sorted(BUILTIN_CONNECTORS.items()):
        plugins.append({"class": name, "type": cls.type, "version": cls().version()})
    return plugins


def connector_type(cls: type[Connector]) -> str:
    return "source" if issubclass(cls, SourceConnector) else "sink"
