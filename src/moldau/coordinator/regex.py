"""Topic regular expressions of KIP-848 subscriptions, in RE2/J syntax, through Google's RE2.

Theory of operation. Kafka compiles `subscribed_topic_regex` with RE2/J (linear-time matching,
no backreferences or lookaround), and a topic is subscribed when the whole name matches.
RE2/J is a port of RE2, so Google's own RE2 binding (`google-re2`, pinned in pyproject.toml)
accepts and refuses the same patterns; Python's `re` would accept patterns Kafka refuses and
could backtrack exponentially on hostile input. Compiled patterns are cached (bounded by
limits.consumer_group_regex_cache_max): every heartbeat of a group names the same few.
"""

from __future__ import annotations

from collections import OrderedDict

import re2

from moldau import limits


class RegexError(ValueError):
    """A subscription regex that does not compile (Kafka: INVALID_REGULAR_EXPRESSION)."""


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a client's bad pattern is its error, not a broker log line
_cache: OrderedDict[str, object] = OrderedDict()


def compile_regex(pattern: str):
    compiled = _cache.get(pattern)
    if compiled is not None:
        _cache.move_to_end(pattern)
        return compiled
    if len(pattern) > limits.consumer_group_regex_chars_max:
        raise RegexError(f"longer than {limits.consumer_group_regex_chars_max} characters")
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        message = error.args[0] if error.args else str(error)
        raise RegexError(message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)) from None
    _cache[pattern] = compiled
    if len(_cache) > limits.consumer_group_regex_cache_max:
        _cache.popitem(last=False)
    return compiled
