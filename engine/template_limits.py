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
* padding and widths: ``'%999999999d' % 1``, ``'{:>999999999}'.format(1)``,
  ``ljust``/``rjust``/``center``/``zfill``/``expandtabs``, ``replace`` and
  ``join``, the ``center``, ``indent``, ``format``, ``replace``, ``join``,
  ``batch`` and ``slice`` filters, and ``lipsum``.

Work that is slow without making anything big (deeply nested loops over
``range``) is not covered: the sandbox has no step counter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sized
from typing import Any

from jinja2.exceptions import SecurityError

MAX_INT_BITS = 100_000
"""Largest integer ``**`` or ``*`` may make, in bits (about 30,000 digits)."""

MAX_ITEMS = 10_000_000
"""Most characters/items a repetition, join, padding or template output may make, and a lazy value may
turn into."""

MAX_LIPSUM_WORDS = 100_000
"""Most words ``lipsum`` may write (paragraphs times their longest length)."""

# printf-style conversions: %[(key)][flags][width][.precision]type, width/precision may be "*"
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
# str.format fields: "{" [name] [!conv] ":" spec "}", where spec may hold "{nested}" fields
_FORMAT_SPEC = re.compile(r"\{[^{}:]*(?:![rsa])?:([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_DIGITS = re.compile(r"\d+")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


def _is_int(value: Any) -> bool:
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
    if isinstance(left, (str, list, tuple)) and _is_int(right):
        sequence, times = left, right
    elif isinstance(right, (str, list, tuple)) and _is_int(left):
        sequence, times = right, left
    else:
        return
    if times <= 1:
        return  # no bigger than what already exists
    _refuse_size("repetition", len(sequence) * times, "characters" if isinstance(sequence, str) else "items")
    if not isinstance(sequence, str) and size_over(sequence, MAX_ITEMS // times):
        # [long_string] * n: few items, but each repeats every character of the string.
        raise SecurityError(
            f"repetition too large: would make more than {MAX_ITEMS:,} items and characters in all "
            f"(the limit is {MAX_ITEMS:,})"
        )


def check_sum(left: Any, right: Any) -> None:
    """Refuse ``+`` joining two strings, lists or tuples into more than MAX_ITEMS."""
    if isinstance(left, str) and isinstance(right, str):
        _refuse_size("join", len(left) + len(right))
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        _refuse_size("join", len(left) + len(right), "items")


def check_printf(template: Any, values: Any) -> None:
    """Refuse ``template % values`` (and the ``format`` filter) when a width or precision is huge."""
    if not isinstance(template, str):
        return
    star_values = values if isinstance(values, tuple) else (values,)
    for match in _PRINTF.finditer(template):
        for part in match.groups():
            if part == "*":
                for value in star_values:
                    if _is_int(value) and not isinstance(value, bool):
                        _refuse_size("printf width", abs(value))
            elif part is not None:
                _refuse_size("printf width", int(part))


def check_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse ``str.format``/``format_map`` when a field's width or precision is huge; a width taken
    from an argument (``'{:{}}'.format(x, n)``) counts every integer argument as a possible width."""
    nested = False
    for match in _FORMAT_SPEC.finditer(template):
        spec = match.group(1)
        nested = nested or "{" in spec
        for digits in _DIGITS.findall(re.sub(r"\{[^{}]*\}", "", spec)):
            _refuse_size("format width", int(digits))
    if nested:
        mapped = [v for m in args if isinstance(m, Mapping) for v in m.values()]  # format_map(mapping)
        for value in (*args, *kwargs.values(), *mapped):
            if _is_int(value) and not isinstance(value, bool):
                _refuse_size("format width", abs(value))


def check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call of a ``str`` method that would make a huge string."""
    if name in _PADDING_METHODS:
        width = args[0] if args else kwargs.get("width")
        if _is_int(width):
            _refuse_size(name, width)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if _is_int(size):
            _refuse_size(name, len(text) + text.count("\t") * max(size, 0))
    elif name == "replace" and len(args) >= 2:
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        check_join(text, args[0])
    elif name in ("format", "format_map"):
        check_format(text, args, kwargs)


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """Refuse a replace that would make a huge string: ``'abc'.replace('', 'x' * 10**6)``."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)) or len(new) <= len(old):
        return
    found = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        found = min(found, count)
    _refuse_size("replace", len(text) + found * (len(new) - len(old)))


def check_join(separator: Any, items: Any) -> None:
    """Refuse ``separator.join(items)`` when the separators alone are huge (the items exist already)."""
    if isinstance(separator, str) and separator and isinstance(items, Sized):
        _refuse_size("join", len(separator) * max(len(items) - 1, 0))


def check_indent(text: Any, width: Any) -> None:
    """Refuse the ``indent`` filter when the indentation written would be huge."""
    lines = str(text).count("\n") + 1
    size = width if _is_int(width) else len(width) if isinstance(width, str) else 0
    _refuse_size("indent", lines * max(size, 0))


def check_count(what: str, count: Any) -> None:
    """Refuse a count of things to make (``batch`` fill, ``slice`` columns) past MAX_ITEMS."""
    if _is_int(count):
        _refuse_size(what, count, "items")


def check_lipsum(n: Any, max_words: Any) -> None:
    if _is_int(n) and _is_int(max_words) and n * max(max_words, 0) > MAX_LIPSUM_WORDS:
        raise SecurityError(f"lipsum too large: at most {MAX_LIPSUM_WORDS:,} words (paragraphs x max)")


def joined(parts: Iterable[str], what: str = "output") -> str:
    """``"".join`` for a template's output and ``{% set %}`` blocks (``what="join"`` for ``~``):
    refused past MAX_ITEMS."""
    items = parts if isinstance(parts, (list, tuple)) else list(parts)
    _refuse_size(what, sum(len(item) for item in items))
    return "".join(items)


def size_over(value: Any, budget: int) -> bool:
    """Whether ``value`` counts more than ``budget`` items and characters (stops as soon as it does)."""
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple)):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        if total > budget:
            return True
    return False
