"""The text layer: trees of JSON values to compact JSON text and back, fast, and UTF-8 safe.

Nothing here knows about types: the tree is already made of JSON values (tagged objects
included), built by :mod:`._registry`.
"""

from __future__ import annotations

import base64
import json
import json.scanner
import re
from collections.abc import Callable
from typing import Any

__all__ = ["SURROGATE", "TAG", "dumps_text", "plain_decode", "scanner", "tag_surrogates", "tagged"]

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


def scanner(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """``decoder.decode`` without its two whitespace regex passes: our payloads are compact
    JSON, so the value must start at offset 0 and end at the last character."""
    # typeshed types make_scanner as the C class whose constructor takes a decoder.
    scan = json.scanner.make_scanner(decoder)  # type: ignore[arg-type]

    def decode(text: str) -> Any:
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
