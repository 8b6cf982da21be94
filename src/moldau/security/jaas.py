"""Kafka's inline JAAS configuration (`sasl.jaas.config`), as it appears in server.properties:

    listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\
        required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice";

One login module, a control flag, then `key=value` options (values quoted or bare), ended by
`;`. `parse` returns the module's class name and its options; anything else is a
`JaasError` naming the setting and the expected form.
"""

from __future__ import annotations

import re

_FLAGS = {"required", "requisite", "sufficient", "optional"}
_OPTION = re.compile(r'\s*([^\s=;]+)\s*=\s*(?:"((?:\\.|[^"\\])*)"|([^\s;"]+))')


class JaasError(ValueError):
    pass


def parse(value: str, key: str = "sasl.jaas.config") -> tuple[str, dict[str, str]]:
    text = value.strip()
    match = re.match(r"([A-Za-z0-9_.$]+)\s+(\w+)", text)
    if match is None or match.group(2) not in _FLAGS:
        raise JaasError(f"invalid value for {key}: expected '<LoginModule class> required key=\"value\" ...;'")
    module, position, options = match.group(1), match.end(), {}
    while True:
        option = _OPTION.match(text, position)
        if option is None:
            break
        raw = option.group(2) if option.group(2) is not None else option.group(3)
        options[option.group(1)] = re.sub(r"\\(.)", r"\1", raw)
        position = option.end()
    rest = text[position:].strip()
    if rest != ";":
        raise JaasError(f"invalid value for {key} near {rest[:30]!r}: expected key=\"value\" options ended by ';' "
                        "(one login module per setting)")
    return module, options
