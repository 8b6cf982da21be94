"""How the console shows bytes it did not write: as text, pretty JSON and hex, capped in size.

Theory of operation. A key, value or header arrives as raw bytes that may hold anything:
markup, invalid UTF-8, NUL bytes, megabytes. `render_bytes` never interprets them as markup
(the page puts every string into text nodes, never into HTML), decodes UTF-8 with U+FFFD in
place of bad sequences (and says it did), and sends at most `cap` bytes of each form, with
the full size, so the browser can offer "show all" (a second request with a larger cap).
"""

from __future__ import annotations

import json

CAP_BYTES_DEFAULT = 4 * 1024
CAP_BYTES_MAX = 8 * 1024 * 1024  # "show all" still has a ceiling: what a browser page can hold


def render_bytes(data: bytes | None, cap: int) -> dict | None:
    """None for a null key/value; else {size, text, utf8, json, hex, truncated}."""
    if data is None:
        return None
    cap = max(16, min(cap, CAP_BYTES_MAX))
    shown = data[:cap]
    try:
        data.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    text = shown.decode("utf-8", errors="replace")
    pretty = None
    if utf8 and len(data) <= cap:
        try:
            pretty = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
        except ValueError:
            pretty = None
    return {"size": len(data), "text": text, "utf8": utf8, "json": pretty,
            "hex": shown[: cap // 2].hex(" "), "truncated": len(data) > cap}
