"""Kafka's `.properties` files, read the way `java.util.Properties.load` reads them.

Theory of operation: the text is split into *natural* lines (ended by LF, CR or CRLF). Blank
lines and lines whose first non-blank character is `#` or `!` are comments. A natural line that
ends in an odd number of backslashes continues on the next one, whose leading blanks are dropped;
together they form one *logical* line. The key runs up to the first unescaped `=`, `:` or blank;
blanks, then at most one `=` or `:`, then blanks separate it from the value. Escapes (`\\t`,
`\\n`, `\\r`, `\\f`, `\\uXXXX`, and backslash before any other character meaning that character)
are decoded in keys and values. A key given twice keeps its last value, as in Java.

Java reads these files as ISO-8859-1; we read UTF-8 first (what people write today) and fall back
to ISO-8859-1 when the bytes are not UTF-8, so every file Kafka accepts is accepted here too.
"""

from __future__ import annotations

import re

_BLANKS = " \t\f"
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesError(ValueError):
    """A malformed properties file (only a bad `\\uXXXX` escape is malformed in Java)."""


def load_file(path: str) -> dict[str, str]:
    """Read a properties file; OSError is left for the caller to turn into a user message."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    try:
        return loads(text)
    except PropertiesError as error:
        raise PropertiesError(f"{path}: {error}") from None


def loads(text: str) -> dict[str, str]:
    """Parse properties text into an insertion-ordered dict."""
    result: dict[str, str] = {}
    for number, line in _logical_lines(text):
        key, value = _split_key_value(line)
        try:
            result[_unescape(key)] = _unescape(value)
        except PropertiesError as error:
            raise PropertiesError(f"line {number}: {error}") from None
    return result


def _logical_lines(text: str):
    """Yield (first natural line number, logical line) pairs, comments and blanks removed."""
    natural = re.split(r"\r\n|\r|\n", text)
    index = 0
    while index < len(natural):
        start = index
        line = natural[index].lstrip(_BLANKS)
        index += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while _ends_with_odd_backslashes(line) and index < len(natural):
            parts.append(line[:-1])
            line = natural[index].lstrip(_BLANKS)
            index += 1
        if _ends_with_odd_backslashes(line):
            line = line[:-1]  # a continuation at end of file continues into nothing
        parts.append(line)
        yield start + 1, "".join(parts)


def _ends_with_odd_backslashes(line: str) -> bool:
    count = len(line) - len(line.rstrip("\\"))
    return count % 2 == 1


def _split_key_value(line: str) -> tuple[str, str]:
    """Split a logical line at the first unescaped separator (`=`, `:` or a blank)."""
    position = 0
    while position < len(line):
        char = line[position]
        if char == "\\":
            position += 2
            continue
        if char in "=:" or char in _BLANKS:
            break
        position += 1
    key = line[:position]
    rest = line[position:].lstrip(_BLANKS)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_BLANKS)
    return key, rest


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out = []
    position = 0
    while position < len(text):
        char = text[position]
        position += 1
        if char != "\\" or position >= len(text):
            out.append(char)
            continue
        char = text[position]
        position += 1
        if char == "u":
            digits = text[position : position + 4]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise PropertiesError("malformed \\uxxxx encoding")
            out.append(chr(int(digits, 16)))
            position += 4
        else:
            out.append(_SIMPLE_ESCAPES.get(char, char))
    return "".join(out)


def dumps(properties: dict[str, str]) -> str:
    """Write properties so that `loads` (and Java) read them back unchanged."""
    lines = []
    for key, value in properties.items():
        lines.append(f"{_escape(key, is_key=True)}={_escape(value, is_key=False)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _escape(text: str, is_key: bool) -> str:
    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char in "\t\n\r\f":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[char])
        elif char in "=:#!" or (char == " " and (is_key or index == 0)):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
