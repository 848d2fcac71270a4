"""The text layer: trees of JSON values to compact JSON text and back, fast, and UTF-8 safe.

Nothing here knows about types: the tree is already made of JSON values (tagged objects
included), built by :mod:`._registry`.
"""

from __future__ import annotations

import array
import base64
import itertools
import json
import json.scanner
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_NESTING",
    "SURROGATE",
    "TAG",
    "check_nesting",
    "dumps_text",
    "plain_decode",
    "scanner",
    "tag_surrogates",
    "tagged",
]

TAG = "$t"
SURROGATE = re.compile("[\\ud800-\\udfff]")


def tagged(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "v": value}


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(tree, separators=(",", ":"), ensure_ascii=False)``, with its C encoder built
    once: ``json.dumps`` and ``JSONEncoder.encode`` build a new one on every call, which costs
    more than encoding a small session. Trees come from :meth:`TypeRegistry.encode`, freshly
    built and so never circular: the circular-reference check is left out.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    encode = make(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def dumps(tree: Any) -> str:
        return "".join(encode(tree, 0))

    return dumps


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


#: How deep stored JSON may nest. Nothing sessionkit writes comes near it (a value nests at
#: most ``MAX_DEPTH`` = 64 levels, each taking at most three levels of JSON: under 200 in
#: all, envelope included), and text nested deeper is refused before it is parsed. The parser
#: recurses once per level: a record nested 100,000 deep (corrupt, or planted in the storage)
#: would spend the interpreter's whole recursion budget, so a finalizer the collector ran
#: meanwhile (one that releases a closed loop's connections, say) would fail for want of
#: stack, and a tool would stop on a ``RecursionError`` instead of counting one unreadable
#: record.
MAX_NESTING = 512
#: A JSON string, escapes included (the unrolled form: no backtracking per character).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Each bracket as a signed byte (+1 opens, -1 closes); every other byte is deleted.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def check_nesting(text: str | bytes) -> None:
    """Raise :class:`ValueError` when the arrays and objects of JSON ``text`` nest deeper than
    :data:`MAX_NESTING`.

    Text with fewer brackets than that in all (every session of ordinary size) costs two
    ``count`` calls. Larger text is measured with no Python step per character: the strings
    cut out (by splitting at the quotes when no string holds an escape, else by regex), the
    brackets made +1 and -1, and the deepest running sum taken: about 110 µs for 12 kB of 600
    small objects, about what ``json.loads`` takes to parse them.
    """
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= MAX_NESTING:
            return
        text = text.decode("latin-1")  # UTF-8 never puts a byte below 0x80 inside a character
    elif text.count("[") + text.count("{") <= MAX_NESTING:
        return
    outside = "".join(text.split('"')[::2]) if "\\" not in text else _STRING.sub("", text)
    signs = outside.encode("utf-8", "surrogatepass").translate(_SIGNS, _NOT_BRACKETS)
    if max(itertools.accumulate(array.array("b", signs)), default=0) > MAX_NESTING:
        raise ValueError(f"nested more than {MAX_NESTING} levels deep")


def scanner(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """``decoder.decode`` without its two whitespace regex passes: our payloads are compact
    JSON, so the value must start at offset 0 and end at the last character. Text nested
    deeper than :data:`MAX_NESTING` is refused first."""
    # typeshed types make_scanner as the C class whose constructor takes a decoder.
    scan = json.scanner.make_scanner(decoder)  # type: ignore[arg-type]

    def decode(text: str) -> Any:
        if text.count("[") + text.count("{") > MAX_NESTING:  # else it cannot nest deeper
            check_nesting(text)
        try:
            value, end = scan(text, 0)
        except StopIteration:  # the scanner's way of saying "no JSON value starts here"
            raise ValueError("not a JSON document") from None
        if end != len(text):
            raise ValueError(f"extra data at offset {end}")
        return value

    return decode


_json_encode = _compact_encoder()
plain_decode = scanner(json.JSONDecoder())


def dumps_text(tree: Any) -> str:
    """Compact JSON text of ``tree``, always valid UTF-8 once encoded.

    A string holding a surrogate code point (``"\\ud800"``, from ``surrogateescape`` decoding,
    say), which UTF-8 cannot carry, travels as ``{"$t": "str", "v": base64}`` and comes back the
    same. Only text that is not ASCII pays for the check (a trial UTF-8 encoding, cheaper than a
    regex search); the rare text with surrogates is encoded twice.
    """
    text = _json_encode(tree)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return _json_encode(tag_surrogates(tree))
    return text


def tag_surrogates(tree: Any) -> Any:
    """``tree`` with every string holding a surrogate tagged (a dict with such a key escaped).

    Only dicts made by the encoder hold ``"$t"`` (a user's is escaped), and only their
    ``"v"`` can hold user text: a type name refuses surrogates at registration.
    """
    kind = type(tree)
    if kind is str:
        if SURROGATE.search(tree) is None:
            return tree
        raw = tree.encode("utf-8", "surrogatepass")
        return tagged("str", base64.b64encode(raw).decode("ascii"))
    if kind is list:
        return [tag_surrogates(item) for item in tree]
    if kind is dict:
        if TAG in tree:
            return {**tree, "v": tag_surrogates(tree["v"])}
        if any(SURROGATE.search(key) for key in tree):
            return tagged("dict", [[tag_surrogates(k), tag_surrogates(v)] for k, v in tree.items()])
        return {key: tag_surrogates(value) for key, value in tree.items()}
    return tree
