"""How big a template's work may get: the checks behind the sandbox's hooks.

Jinja2's sandbox stops attribute walks, not work. A template renders on the
event loop and never yields, so one that builds a huge value blocks every
node and run timeout (or runs the process out of memory). The sandbox in
engine/templates.py calls these checks before each operation that can make
a value much bigger than its inputs, and each raises ``SecurityError`` with
what would have been made, before anything is built:

* ``**`` and ``*`` on integers past :data:`MAX_INT_BITS`;
* ``*`` repetition, ``+`` and ``~`` joins, a template's whole output and a
  ``{% set %}`` block past :data:`MAX_ITEMS` characters or items;
* padding and widths: ``'%999999999d' % 1``, ``'{:>999999999}'.format(1)``
  (widths given as numbers or as strings), ``ljust``/``rjust``/``center``/
  ``zfill``/``expandtabs``, ``replace``, ``translate`` and ``join``, the
  ``center``, ``indent``, ``format``, ``replace``, ``join``, ``wordwrap``,
  ``tojson``, ``urlencode``, ``escape``, ``xmlattr``, ``urlize``, ``string``,
  ``pprint``, ``sum``, ``batch`` and ``slice`` filters, and ``lipsum``;
* writing a list or mapping as text (``{{ xs }}``, ``~``, ``|string``,
  ``'%s' % xs``, a lone ``{{ expr }}``'s value): its text size, about its JSON
  length (:func:`size_over`), is checked before it is written, so a list of
  references to one big string cannot be written out many times.

And, as a net under all of these, the result of every filter and call is
checked after it is made (a string past the cap is refused before anything
uses it). Slow work is the business of engine/template_budget.py: the
functions here that look at a value's size charge that look to its budget,
and :data:`FILTER_NS_PER_UNIT` says what a filter costs per item of input.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping, Sized
from typing import Any, TypeGuard

from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

from engine import template_budget as budget

MAX_INT_BITS = 100_000
"""Largest integer ``**`` or ``*`` may make, in bits (about 30,000 digits)."""

MAX_ITEMS = 10_000_000
"""Most characters/items a repetition, join, padding or template output may make, and a lazy value may
turn into."""

MAX_LIPSUM_WORDS = 100_000
"""Most words ``lipsum`` may write (paragraphs times their longest length)."""

Cost = tuple[float, float]
"""Estimated nanoseconds of work per character of a string and per item of a list or mapping."""

DEFAULT_NS_PER_UNIT: Cost = (3.0, 20.0)
"""Estimated cost of a filter not listed below (built-in string work such as ``upper`` runs at 1-2 ns per
character)."""

COMPARE_NS_PER_UNIT: Cost = (1.0, 5.0)
"""Estimated cost of comparing or searching (``==``, ``in``) per character or item."""

_NO_WORK = ("length", "count", "first", "last", "random", "default", "d", "attr", "safe", "int", "float", "abs",
            "round", "filesizeformat", "items", "batch", "map", "select", "reject", "selectattr", "rejectattr")
"""Filters whose work does not grow with their input (or that are lazy: their items are counted as drawn)."""

FILTER_NS_PER_UNIT: dict[str, Cost] = {
    # Measured on the 2-core CI machine (inputs of 10^5-10^7), rounded up: these filters run Python code
    # for every item (or character), so a big input takes a long time.
    "sort": (1500.0, 1500.0),
    "dictsort": (2000.0, 2000.0),
    "groupby": (2000.0, 2000.0),
    "unique": (200.0, 200.0),
    "min": (500.0, 500.0),
    "max": (500.0, 500.0),
    "sum": (100.0, 100.0),
    "join": (100.0, 100.0),
    "wordwrap": (300.0, 300.0),
    "urlize": (800.0, 800.0),
    "title": (250.0, 250.0),
    "wordcount": (50.0, 50.0),
    "pprint": (3000.0, 3000.0),
    "tojson": (5.0, 100.0),
    "xmlattr": (2000.0, 2000.0),
    "urlencode": (100.0, 100.0),
    "indent": (20.0, 20.0),
    "slice": (100.0, 100.0),
    "list": (6.0, 6.0),
    "string": (3.0, 50.0),
    "striptags": (4.0, 4.0),
    "reverse": (1.0, 10.0),
    **{name: (0.0, 0.0) for name in _NO_WORK},
}
"""Estimated cost per character or item of input of the filters that do Python work per item."""

CASE_METHODS = frozenset({"upper", "lower", "title", "capitalize", "swapcase", "casefold"})
_NON_ASCII_CASE_NS_PER_CHAR = 20.0  # 'ß'.upper() is 'SS': case changes outside ASCII are slow and may grow x3
_STR_METHOD_NS_PER_UNIT = {"split": 20.0, "rsplit": 20.0, "splitlines": 20.0, "title": 5.0, "format": 20.0,
                           "format_map": 20.0, "join": 20.0, "translate": 20.0}
_SIZE_WALK_NS_PER_ITEM = 60.0

# printf-style conversions: %[(key)][flags][width][.precision]type, width/precision may be "*"
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
# str.format fields: "{" [name] [!conv] ":" spec "}", where spec may hold "{nested}" fields
_FORMAT_SPEC = re.compile(r"\{[^{}:]*(?:![rsa])?:([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_DIGITS = re.compile(r"\d+")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int)  # bool included: True ** n and True * "a" are small


def short(number: int) -> str:
    """An integer for a message: in full when short, else its size (str() of a huge int raises)."""
    if abs(number) < 10**18:
        return f"{number:,}"
    return f"a {number.bit_length():,}-bit number"


def _refuse_size(what: str, count: int, unit: str = "characters") -> None:
    if count > MAX_ITEMS:
        raise SecurityError(f"{what} too large: would make {short(count)} {unit} (the limit is {MAX_ITEMS:,})")


def check_power(base: Any, exponent: Any) -> None:
    """Refuse an integer power with more than MAX_INT_BITS bits; floats overflow on their own."""
    if not (_is_int(base) and _is_int(exponent)) or exponent <= 0 or abs(base) <= 1:
        return  # negative exponents give floats; |base| <= 1 stays small
    if exponent > MAX_INT_BITS or exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise SecurityError(
            f"exponent too large: {short(base)} ** {short(exponent)} would have more than "
            f"{MAX_INT_BITS:,} bits (about {int(MAX_INT_BITS * math.log10(2)):,} digits); use smaller numbers"
        )


def check_product(left: Any, right: Any) -> None:
    """Refuse a repetition past MAX_ITEMS or an integer product past MAX_INT_BITS."""
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise SecurityError(
                f"product too large: {short(left)} * {short(right)} would have more than {MAX_INT_BITS:,} bits"
            )
        return
    if isinstance(left, (str, bytes, list, tuple)) and _is_int(right):
        sequence, times = left, right
    elif isinstance(right, (str, bytes, list, tuple)) and _is_int(left):
        sequence, times = right, left
    else:
        return
    if times <= 1:
        return  # no bigger than what already exists
    _refuse_size("repetition", len(sequence) * times, "items" if isinstance(sequence, (list, tuple)) else "characters")
    if isinstance(sequence, (list, tuple)) and size_over(sequence, MAX_ITEMS // times):
        # [long_string] * n: few items, but each repeats every character of the string.
        raise SecurityError(
            f"repetition too large: would make more than {MAX_ITEMS:,} items and characters in all "
            f"(the limit is {MAX_ITEMS:,})"
        )


def check_sum(left: Any, right: Any) -> None:
    """Refuse ``+`` joining two strings, lists or tuples into more than MAX_ITEMS."""
    if isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):
        _refuse_size("join", len(left) + len(right))
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        _refuse_size("join", len(left) + len(right), "items")


def check_printf(template: Any, values: Any) -> None:
    """Refuse ``template % values`` (and the ``format`` filter) when a width or precision is huge."""
    if isinstance(template, bytes):
        template = template.decode("latin-1")
    if not isinstance(template, str):
        return
    star_values = values if isinstance(values, tuple) else (values,)
    check_text("printf", star_values)  # '%s' % (xs,): a list of references to one big string
    for match in _PRINTF.finditer(template):
        for part in match.groups():
            if part == "*":
                for value in star_values:
                    if _is_int(value) and not isinstance(value, bool):
                        _refuse_size("printf width", abs(value))
            elif part is not None:
                _refuse_size("printf width", int(part))


def check_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse ``str.format``/``format_map`` when a field's width or precision is huge, including one taken
    from an argument, as a number or as text (``'{:{}}'.format(x, 999999999)``,
    ``'{0:{1}{2}}'.format('a', 9, '0000000')``): nested fields are filled in the way ``str.format`` numbers
    them before the width is read. An argument written as text is checked for its size too."""
    check_text("format", (args, kwargs))  # '{}'.format(xs): a list of references to one big string
    named = args[0] if len(args) == 1 and isinstance(args[0], Mapping) and not kwargs else kwargs  # format_map
    auto = 0
    try:
        fields = list(_FORMATTER.parse(template))
    except ValueError:
        return  # str.format refuses it itself
    for _literal, field, spec, _conversion in fields:
        if field is None:
            continue
        if field == "":
            auto += 1
        if not spec:
            continue
        if "{" in spec:
            filled: list[str] = []
            try:
                nested_fields = list(_FORMATTER.parse(spec))
            except ValueError:
                return
            for literal, nested, _, _ in nested_fields:
                filled.append(literal)
                if nested is None:
                    continue
                if nested == "":
                    value = args[auto] if auto < len(args) else None
                    auto += 1
                elif nested.isdigit():
                    value = args[int(nested)] if int(nested) < len(args) else None
                else:
                    value = named.get(nested) if nested.isidentifier() else _UNKNOWN
                if value is _UNKNOWN:  # '{0:{1[w]}}': every argument may be the width
                    filled.extend(_width_texts((*args, *named.values())))
                elif isinstance(value, (int, str)) and not isinstance(value, bool):
                    filled.append(str(value) if isinstance(value, str) else _digits(value))
            spec = "".join(filled)
        for digits in _DIGITS.findall(spec):
            _refuse_size("format width", int(digits[:20]))


_UNKNOWN = object()
_FORMATTER = string.Formatter()


def _digits(value: int) -> str:
    """The digits of ``abs(value)`` as a width would read them (a huge number reads as twenty nines)."""
    return str(abs(value)) if abs(value) < 10**20 else "9" * 20


def _width_texts(values: Iterable[Any], depth: int = 0) -> list[str]:
    """Every number and string that ``{1[0]}`` or ``{1.w}`` could pick out of ``values`` (lists and mappings
    looked into, three levels deep), as a possible width."""
    texts: list[str] = []
    for value in values:
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            texts.append(" " + (value[:1000] if isinstance(value, str) else _digits(value)))
        elif depth < 3 and isinstance(value, (list, tuple)):
            texts.extend(_width_texts(value[:1000], depth + 1))
        elif depth < 3 and isinstance(value, Mapping):
            texts.extend(_width_texts(list(value.values())[:1000], depth + 1))
        elif depth < 3 and isinstance(value, Namespace):  # {1.w}
            texts.extend(_width_texts(list(value._Namespace__attrs.values())[:1000], depth + 1))
    return texts


def check_str_method(text: str | bytes, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call of a ``str`` (or ``bytes``) method that would make a huge string, and charge its work
    to the render budget."""
    cost = _STR_METHOD_NS_PER_UNIT.get(name, 2.0)
    if name in CASE_METHODS and isinstance(text, str) and not text.isascii():
        cost = _NON_ASCII_CASE_NS_PER_CHAR
    budget.charge(len(text), cost, f"str.{name}")
    if name in _PADDING_METHODS:
        width = args[0] if args else kwargs.get("width")
        if _is_int(width):
            _refuse_size(name, width)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if _is_int(size):
            tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
            _refuse_size(name, len(text) + tabs * max(size, 0))
    elif name == "replace" and len(args) >= 2:
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        check_join(text, args[0])
    elif name in ("format", "format_map") and isinstance(text, str):
        check_format(text, args, kwargs)
    elif name == "hex" and isinstance(text, bytes):
        _refuse_size("hex", len(text) * (3 if args or kwargs else 2))
    elif name == "encode":
        check_encode(text, args[0] if args else kwargs.get("encoding", "utf-8"))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        _refuse_size("translate", len(text) * longest)


_ENCODE_GROWTH = {"unicode_escape": 10, "raw_unicode_escape": 10, "punycode": 4}


def check_encode(text: Any, encoding: Any) -> None:
    """Refuse ``str.encode`` when the bytes could pass the cap: 4 per character at most (UTF-8, -16, -32),
    10 for ``unicode_escape``."""
    if not isinstance(text, str) or not isinstance(encoding, str):
        return
    name = encoding.lower().replace("-", "_")
    if text.isascii() and name in ("utf_8", "utf8", "ascii", "latin_1", "latin1"):
        return  # one byte per character
    _refuse_size("encode", len(text) * _ENCODE_GROWTH.get(name, 4))


def check_int_to_bytes(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse ``(1).to_bytes(10**9, 'big')``."""
    length = args[0] if args else kwargs.get("length", 1)
    if _is_int(length):
        _refuse_size("to_bytes", length)


def check_urlize(
    value: Any,
    trim_url_limit: Any = None,
    nofollow: Any = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> None:
    """Refuse ``urlize`` when the links it writes could pass the cap: every word may become a link of about
    ten times its length, with ``target`` and ``rel`` written in each one."""
    text = str(value)
    words = len(text.split()) + 1
    extra = sum(len(x) for x in (target, rel) if isinstance(x, str))
    _refuse_size("urlize", len(text) * 10 + words * 2 * extra)


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """Refuse a replace that would make a huge string: ``'abc'.replace('', 'x' * 10**6)``."""
    same_type = isinstance(text, (str, bytes)) and type(old) is type(text) and type(new) is type(text)
    if not same_type or len(new) <= len(old):
        return
    found = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        found = min(found, count)
    _refuse_size("replace", len(text) + found * (len(new) - len(old)))


def check_join(separator: Any, items: Any, whole: bool = False) -> None:
    """Refuse ``separator.join(items)`` when the separators and the items' text would make too much
    (a list of references to one big string is small, its join is not). ``whole``: the ``join`` filter,
    which writes every item as text, lists and mappings included."""
    if not isinstance(items, Sized):
        return
    gaps = max(len(items) - 1, 0)
    if isinstance(separator, (str, bytes)) and separator:
        _refuse_size("join", len(separator) * gaps)
    room = MAX_ITEMS - (len(separator) * gaps if isinstance(separator, (str, bytes)) else 0)
    if (whole or isinstance(items, (list, tuple))) and _text_over(items, room, top_level_free=True):
        raise SecurityError(
            f"join too large: would make more than {MAX_ITEMS:,} characters (the limit is {MAX_ITEMS:,})"
        )


def check_indent(text: Any, width: Any) -> None:
    """Refuse the ``indent`` filter when the indentation written would be huge."""
    text = str(text)
    lines = text.count("\n") + 1
    size = width if _is_int(width) else len(width) if isinstance(width, str) else 0
    _refuse_size("indent", len(text) + lines * max(size, 0))


def check_count(what: str, count: Any) -> None:
    """Refuse a count of things to make (``batch`` fill, ``slice`` columns) past MAX_ITEMS."""
    if _is_int(count):
        _refuse_size(what, count, "items")


def check_lipsum(n: Any, max_words: Any) -> None:
    if _is_int(n) and _is_int(max_words) and n * max(max_words, 0) > MAX_LIPSUM_WORDS:
        raise SecurityError(f"lipsum too large: at most {MAX_LIPSUM_WORDS:,} words (paragraphs x max)")


def check_wordwrap(
    s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None, *_: Any, **__: Any
) -> None:
    """Refuse ``wordwrap`` when its line breaks would make too much: ``wordwrap(1, wrapstring='b' * 9000000)``."""
    text = str(s)
    if not isinstance(wrapstring, str) or not _is_int(width):
        return
    lines = 2 * len(text) // max(width, 1) + text.count("\n") + 2  # a line holds a word or ~width characters
    _refuse_size("wordwrap", len(text) + min(lines, len(text) + 1) * len(wrapstring))


def check_tojson(value: Any, indent: Any = None) -> None:
    """Refuse ``tojson`` when its JSON would pass the cap: escapes (``"`` -> ``\\"``, ``<`` -> ``\\u003c``,
    an emoji -> 12 characters) grow a string each time it is encoded again, and an indent is written on
    every line."""
    width = indent if _is_int(indent) else len(indent) if isinstance(indent, str) else 0
    if width > MAX_ITEMS:
        _refuse_size("tojson indent", width)
    if _text_over(value, MAX_ITEMS, escaped=True, indent=max(width, 0)):
        raise SecurityError(
            f"tojson too large: would make more than {MAX_ITEMS:,} characters (the limit is {MAX_ITEMS:,})"
        )


_URL_SAFE = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~/"


def _url_size(text: str) -> int:
    data = text.encode("utf-8", "surrogatepass")
    return len(data) + 2 * len(data.translate(None, _URL_SAFE))  # each unsafe byte becomes %XX


def check_urlencode(value: Any) -> None:
    """Refuse ``urlencode`` when percent-encoding would pass the cap (an emoji becomes 12 characters)."""
    if isinstance(value, str):
        _refuse_size("urlencode", _url_size(value))
    elif isinstance(value, (Mapping, list, tuple)):
        pairs = value.items() if isinstance(value, Mapping) else value
        total = 0
        for pair in pairs:
            budget.tick()
            parts = pair if isinstance(pair, (list, tuple)) else (pair,)
            total += sum(_url_size(str(p)) + 1 for p in parts)
            _refuse_size("urlencode", total)


def check_escape(value: Any) -> None:
    """Refuse HTML escaping when it would pass the cap (``&`` becomes ``&amp;``, ``"`` becomes ``&#34;``)."""
    if isinstance(value, str):
        grows = 4 * (value.count("&") + value.count("<") + value.count(">") + value.count('"') + value.count("'"))
        _refuse_size("escape", len(value) + grows)
    else:
        check_text("escape", value, factor=5)


def check_sum_filter(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    """Refuse ``sum(start=[])`` over lists when the result would pass the cap; its time grows with the
    square of the count (each step copies what was summed so far), so that is charged too."""
    if isinstance(start, (list, tuple, str)) and isinstance(iterable, (list, tuple)):
        total = len(start) + sum(len(x) for x in iterable if isinstance(x, Sized))
        _refuse_size("sum", total, "items")
        budget.charge(len(iterable) * total // 2 + 1, 5.0, "the sum filter")


def check_text(what: str, value: Any, factor: int = 1) -> None:
    """Refuse writing ``value`` as text (or JSON) when that would pass the cap (``factor``: how much the
    text may grow on the way, as in escaping)."""
    if type(value) is str:
        _refuse_size(what, len(value) * factor)
    elif _text_over(value, MAX_ITEMS // factor):
        raise SecurityError(
            f"{what} too large: would write more than {MAX_ITEMS:,} characters (the limit is {MAX_ITEMS:,})"
        )


def charge_input(what: str, value: Any, cost: Cost, case: bool = False) -> None:
    """Charge a filter's work, estimated from the size of its input, to the render budget (``case``: it
    changes letter case, which is slow outside ASCII)."""
    if isinstance(value, str):
        per_char = cost[0]
        if case and not value.isascii():
            per_char = max(per_char, _NON_ASCII_CASE_NS_PER_CHAR)
        budget.charge(len(value), per_char, what)
    elif isinstance(value, Sized):
        budget.charge(len(value), cost[1], what)
    else:
        budget.tick()


def charge_call(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Charge a call of anything but a ``str`` method (``dict.fromkeys(big)``, a macro) to the budget."""
    units = 0  # a string passed along costs nothing, unless the callee walks it (dict.fromkeys('x' * n))
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, (str, bytes)):
            units += len(arg) if name == "fromkeys" else 0
        elif isinstance(arg, Sized):
            units += len(arg)
    budget.charge(units, 20.0, name or "a call")


def checked_result(what: str, result: Any) -> Any:
    """The net under every filter and call: a string, bytes, list or mapping past the cap is refused
    before anything uses it."""
    if isinstance(result, (str, bytes)):
        if len(result) > MAX_ITEMS:
            _refuse_size(what, len(result))
    elif isinstance(result, (list, tuple, Mapping)) and len(result) > MAX_ITEMS:
        _refuse_size(what, len(result), "items")
    return result


def joined(parts: Iterable[str], what: str = "output") -> str:
    """``"".join`` for a template's output and ``{% set %}`` blocks (``what="join"`` for ``~``):
    refused past MAX_ITEMS."""
    items = parts if isinstance(parts, (list, tuple)) else list(parts)
    _refuse_size(what, sum(len(item) for item in items))
    return "".join(items)


def size_over(value: Any, limit: int) -> bool:
    """Whether ``value`` counts more than ``limit`` items and characters (stops as soon as it does)."""
    return _text_over(value, limit)


_NUMBERS = frozenset({int, float, bool, type(None)})
_WALK_FAST_NS_PER_ITEM = 60.0  # a list of strings or numbers is measured with built-ins
_WALK_SLOW_NS_PER_ITEM = 2000.0  # a list that mixes types, or holds lists or mappings, item by item


def _text_over(value: Any, limit: int, *, escaped: bool = False, indent: int = 0, top_level_free: bool = False) -> bool:
    """Whether ``value`` written as text counts more than ``limit`` characters, about its JSON length: a
    string counts its characters (with ``escaped``, what JSON escaping makes of them), a number its
    digits, a list or mapping one per item (its separator) plus ``indent`` per item and level, anything
    else one. Stops as soon as it is over; the walk is charged to the render budget."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    total = 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (str, bytes)):
            total += _escaped_len(item) if escaped and isinstance(item, str) else len(item)
        elif isinstance(item, (list, tuple, Mapping)):
            count = len(item)
            if not (top_level_free and depth == 0):
                total += count + count * indent * (depth + 1)
            parts = (item.keys(), item.values()) if isinstance(item, Mapping) else (item,)
            for part in parts:
                total += _flat_size(part, count, escaped, limit - total, stack, depth + 1)
                if total > limit:
                    return True
        elif type(item) is int:
            total += item.bit_length() * 3 // 10 + 1
        else:
            total += 1
        if total > limit:
            return True
    return False


def _flat_size(part: Any, count: int, escaped: bool, room: int, stack: list[tuple[Any, int]], depth: int) -> int:
    """The text size of the strings and numbers among ``part``'s ``count`` items; lists and mappings among
    them go on ``stack``. Built-ins do the work when every item is a string, or every item a number."""
    budget.charge(count, _WALK_FAST_NS_PER_ITEM, "measuring a value's size")
    kinds = set(map(type, part))
    if kinds == {str}:
        plain = sum(map(len, part))
        if not escaped or plain > room:
            return plain
        return _escaped_len("".join(part)) - 2 + 2 * count  # (joined: at most ``room`` characters)
    if kinds == {int}:
        return sum(map(int.bit_length, part)) * 3 // 10 + count
    if kinds <= _NUMBERS:
        return count
    budget.charge(count, _WALK_SLOW_NS_PER_ITEM, "measuring a value's size")
    size = 0
    for child in part:
        if isinstance(child, (list, tuple, Mapping, str, bytes)) or type(child) is int:
            stack.append((child, depth))
        else:
            size += 1
    return size


def _escaped_len(text: str) -> int:
    """Length of ``text`` as Jinja's ``tojson`` writes it: quotes and backslashes escaped, ``<>&'`` as
    ``\\u00XX``, other non-ASCII characters as ``\\uXXXX`` (two of them for an emoji)."""
    size = len(text) + 2 + text.count('"') + text.count("\\")
    size += 5 * (text.count("<") + text.count(">") + text.count("&") + text.count("'"))
    if not text.isascii():
        wide = len(text) - len(text.encode("ascii", "ignore"))
        astral = len(text.encode("utf-16-le", "surrogatepass")) // 2 - len(text)
        size += 5 * wide + 6 * astral
    return size
