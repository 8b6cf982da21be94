"""Principals from TLS client certificates: Kafka's `ssl.principal.mapping.rules`.

Theory of operation. A client that presents a certificate on an SSL listener is the principal
`User:<distinguished name>`, the DN written as RFC 2253 (what Java's X500Principal.getName()
gives: most specific first, `CN=client,OU=eng,O=corp`). `ssl.principal.mapping.rules` rewrites
it: a comma-separated list of `RULE:pattern/replacement/[L|U]` and `DEFAULT`, tried in order;
the first rule whose pattern matches the whole DN wins (`$1` in the replacement is the first
group; L/U lower- or upper-cases the result), DEFAULT keeps the DN. No matching rule refuses
the connection, as in Kafka.
"""

from __future__ import annotations

import re

from cryptography import x509

# One rule: DEFAULT, or RULE:pattern/replacement/flags, where / and , may be escaped by \.
_RULE = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?))\s*(?:,|$)")


class PrincipalMappingError(ValueError):
    pass


def parse_rules(value: str | None) -> list[tuple[str, str, str] | None]:
    """[None (DEFAULT) | (pattern, replacement, flag)]; raises on a malformed list."""
    text = (value or "DEFAULT").strip()
    rules: list[tuple[str, str, str] | None] = []
    position = 0
    while position < len(text):
        match = _RULE.match(text, position)
        if match is None or match.end() == position:
            raise PrincipalMappingError(f"invalid rule at {text[position:]!r} in ssl.principal.mapping.rules: "
                                        "expected RULE:pattern/replacement/[L|U] or DEFAULT, comma-separated")
        if match.group(1):
            rules.append(None)
        else:
            pattern = match.group(2).replace("\\,", ",").replace("\\/", "/")
            replacement = match.group(3).replace("\\,", ",").replace("\\/", "/")
            try:
                re.compile(pattern)
            except re.error as error:
                raise PrincipalMappingError(f"invalid pattern {pattern!r} in ssl.principal.mapping.rules: {error}") from None
            rules.append((pattern, replacement, match.group(4)))
        position = match.end()
    return rules


def map_distinguished_name(dn: str, rules: list[tuple[str, str, str] | None]) -> str:
    for rule in rules:
        if rule is None:
            return dn
        pattern, replacement, flag = rule
        match = re.fullmatch(pattern, dn)
        if match is None:
            continue
        # Java's $1 in replacements; \ escapes as in Java's Matcher.replaceAll.
        result = re.sub(r"\\(.)|\$(\d+)", lambda m: m.group(1) if m.group(1) is not None else (match.group(int(m.group(2))) or ""), replacement)
        return result.lower() if flag == "L" else result.upper() if flag == "U" else result
    raise PrincipalMappingError(f"no ssl.principal.mapping.rules rule matches {dn!r}")


def certificate_principal(certificate_der: bytes, rules: list[tuple[str, str, str] | None]) -> str:
    """`User:<mapped DN>` of a client certificate (DER, as the TLS layer hands it over)."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    return "User:" + map_distinguished_name(certificate.subject.rfc4514_string(), rules)
