"""The value codec: session values to JSON and back, type-exact, with no pickle.

Built-ins that JSON lacks (tuple, set, bytes, datetime, ...) travel as small tagged objects
``{"$t": tag, "v": ...}``; a user dict that itself holds a ``"$t"`` key is escaped the same
way, so no stored text can pose as a tag. Registered attrs classes, dataclasses and enums are
unstructured by this registry's own cattrs converter and tagged with their registered name;
decoding looks that name up in the registry and nowhere else, so stored data can never make
the process import or call anything it was not told about.

Everything ``set()`` accepts can be saved and loaded back: a class is registered only once the
converter can structure it again; a value nested deeper than :data:`MAX_DEPTH` levels (or one
that contains itself) is refused; and a string holding lone surrogates, which UTF-8 cannot
carry, travels tagged rather than failing at save time.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import json.scanner
import re
import sys
import typing
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs
import cattrs

__all__ = ["DecodeError", "TypeRegistry"]

TAG = "$t"
_JSONScalar = (str, int, float, bool, type(None))

MAX_DEPTH = 64
"""How deeply a session value may nest containers (lists, tuples, sets, dicts, registered
objects), the value itself being level 1. Far above what a session needs, and far below what
the JSON decoder's recursion can load back (each level is up to three levels of JSON)."""

_SURROGATE = re.compile("[\\ud800-\\udfff]")


class DecodeError(ValueError):
    """A stored payload cannot be decoded (corrupt, truncated, or naming an unknown type)."""


def _passthrough(kind: type) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise DecodeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "v": value}


class TypeRegistry:
    """Per-store registry of value types, with its own cattrs converter.

    Each :class:`~sessionkit.Store` owns one, so two stores (or two apps in one process) never
    see each other's registrations, and the global cattrs converter is never touched.
    """

    def __init__(self) -> None:
        self._converter = cattrs.Converter()
        # A field typed Any or object holds any storable value: left as it is for encode(),
        # which tags or refuses it (cattrs would flatten a tuple to a list and an attrs object
        # to a dict, which would come back as a list or a dict), and taken back as decoded.
        self._converter.register_unstructure_hook_func(_is_any, _identity)
        self._converter.register_structure_hook_func(_is_any, _as_decoded)
        for leaf in (datetime, date, time, timedelta, Decimal, UUID, bytes, set, frozenset):
            self._converter.register_structure_hook(leaf, _passthrough(leaf))
        # One decoder per registry, built once: json.loads with options builds one per call.
        self._json_decode = _scanner(json.JSONDecoder(object_hook=self.object_hook))
        self._int_digits, self._int_bits, self._int_bound = _int_limit()
        self._by_name: dict[str, type] = {}
        self._name_of: dict[type, str] = {}
        keep = _leaf
        # Each encoder takes the value and its nesting level (the value given is level 1).
        self._encoders: dict[type, Callable[[Any, int], Any]] = {
            str: keep,
            int: self._encode_int,
            float: keep,
            bool: keep,
            type(None): keep,
            list: self._encode_list,
            dict: self._encode_dict,
            tuple: lambda v, d: _tagged("tuple", self._encode_list(v, d)),
            set: lambda v, d: _tagged("set", self._encode_list(v, d)),
            frozenset: lambda v, d: _tagged("frozenset", self._encode_list(v, d)),
            bytes: lambda v, _: _tagged("bytes", base64.b64encode(v).decode("ascii")),
            datetime: lambda v, _: _tagged("datetime", v.isoformat()),
            date: lambda v, _: _tagged("date", v.isoformat()),
            time: lambda v, _: _tagged("time", v.isoformat()),
            timedelta: lambda v, _: _tagged("timedelta", [v.days, v.seconds, v.microseconds]),
            Decimal: lambda v, _: _tagged("decimal", str(v)),
            UUID: lambda v, _: _tagged("uuid", v.hex),
        }
        self._decoders: dict[str, Callable[[Any], Any]] = {
            "tuple": _list_of(tuple),
            "set": _list_of(set),
            "frozenset": _list_of(frozenset),
            "dict": _decode_escaped_dict,
            "bytes": lambda v: base64.b64decode(_str(v), validate=True),
            "datetime": lambda v: datetime.fromisoformat(_str(v)),
            "date": lambda v: date.fromisoformat(_str(v)),
            "time": lambda v: time.fromisoformat(_str(v)),
            "timedelta": _decode_timedelta,
            "decimal": lambda v: Decimal(_str(v)),
            "uuid": lambda v: UUID(hex=_str(v)),
            "str": _decode_surrogate_str,
        }

    # -- registration -------------------------------------------------------------------------

    def register_type(self, cls: type, *, name: str | None = None) -> None:
        """Admit ``cls`` (an attrs class, a dataclass or an enum) as a session value type.

        ``name`` is what is stored to identify the class; it defaults to the class's
        ``module.QualName``. Give an explicit name to keep old sessions readable after moving
        the class. Registering the same class twice is harmless; two classes under one name
        is an error.

        A class whose fields cattrs cannot load back (``int | str``, a plain class, ...) raises
        ``TypeError`` here, naming the field, rather than being stored and then lost.
        """
        if not isinstance(cls, type):
            raise TypeError(f"register_type() takes a class, got {cls!r}")
        if name is not None and (type(name) is not str or _SURROGATE.search(name)):
            raise TypeError(f"register_type() name must be a str, got {name!r}")
        if issubclass(cls, enum.Enum):
            encode = self._enum_encoder()
        elif attrs.has(cls) or dataclasses.is_dataclass(cls):
            self._check_loadable(cls)
            encode = self._object_encoder()
        else:
            raise TypeError(
                f"register_type() accepts attrs classes, dataclasses and enums, not {cls.__qualname__}"
            )
        name = name or f"{cls.__module__}.{cls.__qualname__}"
        known = self._by_name.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"type name {name!r} is already registered for {known!r}")
        previous = self._name_of.get(cls)
        if previous is not None and previous != name:
            raise ValueError(f"{cls.__qualname__} is already registered as {previous!r}")
        self._by_name[name] = cls
        self._name_of[cls] = name
        self._encoders[cls] = encode

    def is_registered(self, cls: type) -> bool:
        """Return whether ``cls`` was registered with :meth:`register_type`."""
        return cls in self._name_of

    def _check_loadable(self, cls: type) -> None:
        """Raise ``TypeError`` unless the converter can structure ``cls`` back.

        cattrs builds a class's structure hook, and with it the hooks of every field type,
        all the way down, when first asked for it, and fails then for a type it has no hook
        for; asking now moves that failure from the first load (a lost session) to here.
        """
        try:
            self._converter.get_structure_hook(cls)
        except Exception as exc:
            field, hint = self._culprit(cls)
            raise TypeError(
                f"register_type({cls.__qualname__}): {field}cannot be loaded back "
                f"({type(exc).__name__}: {exc}); {hint}"
            ) from exc

    def _culprit(self, cls: type) -> tuple[str, str]:
        """``(what, hint)`` for the first field of ``cls`` whose type cannot be structured."""
        hint = (
            "give it one concrete type: a built-in, X | None, a list, tuple, set or dict of "
            "those, an attrs class, dataclass or enum (a union only of attrs classes or "
            "dataclasses with distinct fields), or Any"
        )
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # a forward reference that does not resolve: cattrs said so
            return "its annotations ", "define every class its fields name before registering"
        fields: Any = attrs.fields(cls) if attrs.has(cls) else dataclasses.fields(cls)
        for field in fields:
            kind = hints.get(field.name, field.type)
            try:
                self._converter.get_structure_hook(kind)
            except Exception:
                shown = getattr(kind, "__qualname__", None) or repr(kind)
                return f"field {field.name!r} typed {shown} ", hint
        return "a field ", hint

    def _enum_encoder(self) -> Callable[[Any, int], Any]:
        def encode(member: enum.Enum, depth: int) -> Any:
            value = self._encode(member.value, depth + 1)
            return {TAG: "enum", "n": self._name_of[type(member)], "v": value}

        return encode

    def _object_encoder(self) -> Callable[[Any, int], Any]:
        def encode(obj: Any, depth: int) -> Any:
            if depth > MAX_DEPTH:
                raise self._too_deep(obj)
            cls = type(obj)
            try:
                raw = self._converter.unstructure(obj)
                # What a load will do with it: a field holding something its annotation does
                # not admit (attrs does not check) fails here rather than at the next load.
                self._converter.structure(raw, cls)
            except RecursionError:
                raise self._too_deep(obj) from None
            except Exception as exc:
                raise TypeError(
                    f"sessionkit cannot store this {cls.__qualname__}: it would not load back "
                    f"({type(exc).__name__}: {exc}); do its fields hold what they are annotated "
                    "with?"
                ) from exc
            try:  # The object and its field dict are one level.
                fields = self._encode_dict(raw, depth)
            except _TooDeep:
                # The unstructured copy of a container never contains itself; the object may.
                if _contains_itself(obj):
                    raise self._too_deep(obj) from None
                raise
            return {TAG: "obj", "n": self._name_of[cls], "v": fields}

        return encode

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        """Turn ``value`` into a JSON-ready tree; raise ``TypeError`` for a type not admitted,
        or for a value nested deeper than :data:`MAX_DEPTH` levels or containing itself."""
        encoder = self._encoders.get(type(value))
        if encoder is None:
            raise _unsupported(value)
        return encoder(value, 1)

    def encode_data(self, data: dict[str, Any]) -> Any:
        """:meth:`encode` for a session's whole data dict, whose values are each at level 1
        (as they were when ``set()`` checked them), so the dict adds no level."""
        return self._encode_dict(data, 0)

    def _encode(self, value: Any, depth: int) -> Any:
        encoder = self._encoders.get(type(value))
        if encoder is None:
            raise _unsupported(value)
        return encoder(value, depth)

    def _too_deep(self, value: Any) -> TypeError:
        """The error for a container met below level :data:`MAX_DEPTH` (a slow path)."""
        if _contains_itself(value):
            return _Circular(
                f"sessionkit cannot store a circular value: this {type(value).__qualname__} "
                "contains itself"
            )
        return _TooDeep(
            f"sessionkit cannot store a value nested more than {MAX_DEPTH} levels deep "
            f"(a {type(value).__qualname__} at level {MAX_DEPTH + 1}): flatten it"
        )

    def _encode_int(self, value: int, _: int = 0) -> int:
        """``value`` itself, once it is known to fit the interpreter's int-to-text limit.

        ``json`` writes an int as its decimal text, and Python refuses to make text of an int
        longer than ``sys.get_int_max_str_digits()`` digits (a guard against quadratic-time
        conversions): such an int would be accepted by ``set()`` and fail at save time, in a
        later step, with a bare ``ValueError``. Only ints above a bit length that surely fits
        pay for the exact comparison, so ordinary ints cost one ``bit_length()``.
        """
        if value.bit_length() > self._int_bits and abs(value) >= self._int_bound:
            raise TypeError(
                f"sessionkit cannot store an int of more than {self._int_digits} decimal digits "
                "(sys.get_int_max_str_digits()): store it as a str or a Decimal"
            )
        return value

    def _encode_list(self, values: Any, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise self._too_deep(values)
        encoders = self._encoders
        bits = self._int_bits
        out = []
        for v in values:
            t = type(v)
            if t is str or (t is int and v.bit_length() <= bits) or t is float:
                out.append(v)
            else:
                encoder = encoders.get(t)
                if encoder is None:
                    raise _unsupported(v)
                out.append(encoder(v, depth + 1))
        return out

    def _encode_dict(self, mapping: dict[Any, Any], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self._too_deep(mapping)
        encoders = self._encoders
        bits = self._int_bits
        out: dict[str, Any] = {}
        for k, v in mapping.items():
            if type(k) is not str:
                raise TypeError(
                    f"sessionkit dict keys must be str, got {type(k).__qualname__} key {k!r}"
                )
            t = type(v)
            if (
                t is str
                or (t is int and v.bit_length() <= bits)
                or t is bool
                or v is None
                or t is float
            ):
                out[k] = v
            else:
                encoder = encoders.get(t)
                if encoder is None:
                    raise _unsupported(v)
                out[k] = encoder(v, depth + 1)
        if TAG in out:
            return _tagged("dict", [[k, v] for k, v in out.items()])
        return out

    def dumps(self, tree: Any) -> bytes:
        """Serialise an encoded tree to compact UTF-8 JSON."""
        return self.dumps_text(tree).encode()

    def dumps_text(self, tree: Any) -> str:
        """:meth:`dumps` before the UTF-8 encoding, for a caller that wraps the text.

        The text is always valid UTF-8 once encoded: a string holding a surrogate code point
        (``"\\ud800"``, from ``surrogateescape`` decoding, say), which UTF-8 cannot carry,
        travels as ``{"$t": "str", "v": base64}`` and comes back the same. Only text that is
        not ASCII pays for the check (a trial UTF-8 encoding, cheaper than a regex search); the rare text with surrogates is encoded twice.
        """
        text = _json_encode(tree)
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError:
                return _json_encode(_tag_surrogates(tree))
        return text

    # -- decoding -----------------------------------------------------------------------------

    def object_hook(self, obj: dict[str, Any]) -> Any:
        """``json.loads`` hook that rebuilds tagged values (bottom-up, so children are done)."""
        tag = obj.get(TAG)
        if tag is None:
            return obj
        if tag == "obj" or tag == "enum":
            if obj.keys() != {TAG, "n", "v"}:
                raise DecodeError(f"malformed {tag} value")
            cls = self._by_name.get(obj["n"])
            if cls is None:
                raise DecodeError(f"stored type {obj['n']!r} is not registered")
            if tag == "enum":
                if not issubclass(cls, enum.Enum):
                    raise DecodeError(f"{obj['n']!r} is not an enum")
                return cls(obj["v"])
            if not isinstance(obj["v"], dict):
                raise DecodeError("malformed object value")
            return self._converter.structure(obj["v"], cls)
        decoder = self._decoders.get(tag) if isinstance(tag, str) else None
        if decoder is None or obj.keys() != {TAG, "v"}:
            raise DecodeError(f"unknown or malformed tag {tag!r}")
        return decoder(obj["v"])

    def loads(self, payload: bytes) -> Any:
        """Parse bytes written by :meth:`dumps`; raise :class:`DecodeError` on any defect."""
        try:
            text = payload.decode()
            # Our encoder writes every tag as the literal '"$t"'; text without it holds plain
            # JSON only and skips the per-object Python hook.
            if '"$t"' not in text:
                return _plain_decode(text)
            return self._json_decode(text)
        except DecodeError:
            raise
        except Exception as exc:  # corrupt JSON, bad base64, cattrs errors, ...
            raise DecodeError(f"{type(exc).__name__}: {exc}") from exc


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


def _scanner(decoder: json.JSONDecoder) -> Callable[[str], Any]:
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
_plain_decode = _scanner(json.JSONDecoder())


class _TooDeep(TypeError):
    pass


class _Circular(TypeError):
    pass


def _identity(value: Any) -> Any:
    return value


def _leaf(value: Any, _: int) -> Any:
    return value


def _is_any(kind: Any) -> bool:
    return kind is Any or kind is object


def _as_decoded(value: Any, _: Any) -> Any:
    return value


def _unsupported(value: Any) -> TypeError:
    return TypeError(
        f"sessionkit cannot store a value of type {type(value).__qualname__}: "
        "use built-in types, or call store.register_type() for an attrs class, "
        "dataclass or enum"
    )


def _contains_itself(value: Any) -> bool:
    """Whether ``value`` can be reached from its own items (iteratively: it may be deep)."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, (list, tuple, set, frozenset)):
            children = current
        elif attrs.has(type(current)):
            children = [getattr(current, f.name, None) for f in attrs.fields(type(current))]
        elif dataclasses.is_dataclass(current):
            children = [getattr(current, f.name, None) for f in dataclasses.fields(current)]
        else:
            continue
        for child in children:
            if child is value:
                return True
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return False


def _tag_surrogates(tree: Any) -> Any:
    """``tree`` with every string holding a surrogate tagged (a dict with such a key escaped).

    Only dicts made by the encoder hold ``"$t"`` (a user's is escaped), and only their
    ``"v"`` can hold user text: a type name refuses surrogates at registration.
    """
    kind = type(tree)
    if kind is str:
        if _SURROGATE.search(tree) is None:
            return tree
        raw = tree.encode("utf-8", "surrogatepass")
        return _tagged("str", base64.b64encode(raw).decode("ascii"))
    if kind is list:
        return [_tag_surrogates(item) for item in tree]
    if kind is dict:
        if TAG in tree:
            return {**tree, "v": _tag_surrogates(tree["v"])}
        if any(_SURROGATE.search(key) for key in tree):
            return _tagged(
                "dict", [[_tag_surrogates(k), _tag_surrogates(v)] for k, v in tree.items()]
            )
        return {key: _tag_surrogates(value) for key, value in tree.items()}
    return tree


def _int_limit() -> tuple[int, int, int]:
    """``(digits, bits, bound)``: ``digits`` is the limit on int-to-text conversion; an int of
    at most ``bits`` bits has no more digits than that, and a bigger one fits only if its
    magnitude is below ``bound``.

    Read when a registry is made (a store reads the limit set when it was built). No limit
    (0, or Python 3.10, which has none) gives a bit length no int reaches.
    """
    get_limit = getattr(sys, "get_int_max_str_digits", None)
    limit = get_limit() if get_limit is not None else 0
    if not limit:
        return 0, sys.maxsize, 0
    bound = 10**limit  # the smallest int of limit + 1 digits
    return limit, bound.bit_length() - 1, bound


def _str(value: Any) -> str:
    if type(value) is not str:
        raise DecodeError("expected a string")
    return value


def _list_of(kind: Callable[[list[Any]], Any]) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise DecodeError("expected a list")
        return kind(value)

    return decode


def _decode_escaped_dict(value: Any) -> dict[str, Any]:
    if type(value) is not list or not all(
        type(p) is list and len(p) == 2 and type(p[0]) is str for p in value
    ):
        raise DecodeError("malformed escaped dict")
    return dict(value)


def _decode_surrogate_str(value: Any) -> str:
    return base64.b64decode(_str(value), validate=True).decode("utf-8", "surrogatepass")


def _decode_timedelta(value: Any) -> timedelta:
    if type(value) is not list or len(value) != 3 or not all(type(x) is int for x in value):
        raise DecodeError("malformed timedelta")
    return timedelta(days=value[0], seconds=value[1], microseconds=value[2])
