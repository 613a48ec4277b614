"""Child runner of the ``python`` tool: runs ONE cell of untrusted code, inside the sandbox.

Why this file exists: the app never executes the model's code itself.
``tools/builtin/python_exec.py`` starts a fresh, contained process running the
*system* interpreter (``/usr/bin/python3 -I -B -c <this file's source>``, so
the file needs no path visible inside the sandbox and no package of the
project), and this script is what that process runs.

It is deliberately self-contained: standard library only, compatible with
Python 3.8+ (Debian's ``/usr/bin/python3``), and it never imports the project.

Protocol:
    stdin   one JSON object: ``{"code": str, "result_fd": int, "workdir": str,
            "value_cap": int}``; read to EOF first, then stdin is replaced by
            /dev/null (``input()`` sees end-of-file).
    stdout  / stderr: whatever the code prints (the app captures and caps them).
            A traceback of an exception in the code goes to stderr.
    result_fd  a pipe inherited from the app; exactly one JSON object is written
            to it at the end: ``{"value", "value_truncated", "exit", "error",
            "memory_error"}``. The descriptor is made non-inheritable first so
            processes the code starts do not get it.
    exit status  the cell's exit status (0, 1 after an exception, or the
            SystemExit code).

Like a notebook cell, the value of a trailing expression is reported: as JSON
when it is plain data (None, bool, int, float, str, lists/dicts of those), as
its ``repr`` otherwise.

Before the code runs, network access is disabled at the Python level as a
second layer (the sandbox's own network namespace is the first): the
``socket`` module refuses every address family but AF_UNIX and name lookups
fail. Nothing here is the security boundary -- the sandbox is.
"""

import ast
import builtins
import contextlib
import json
import linecache
import os
import sys
import traceback

CELL = "<cell>"

# Saved before the code runs: the code shares this interpreter and may
# replace module attributes; the epilogue uses these references only.
_exit = os._exit
_write = os.write
_getpid = os.getpid
_dumps = json.dumps
_isinstance = isinstance
_repr = repr
_len = len
_type = type
_str = str


class NetworkDisabled(PermissionError):
    """Raised by every network entry point inside the sandbox."""


def _refuse_network(*_args, **_kwargs):
    raise NetworkDisabled(13, "network access is disabled in the python tool's sandbox")


def _block_network():
    """Second layer: make the socket module refuse everything but AF_UNIX."""
    try:
        import _socket
        import socket
    except Exception:  # no socket support at all: nothing to block
        return

    original = socket.socket
    raw = _socket.socket  # the C type; socket.socket.__init__ calls _socket.socket.__init__ by module lookup
    allowed = {getattr(socket, "AF_UNIX", None)} - {None}

    def _check(family):
        if family not in allowed:  # also refuses family=-1 with a fileno (auto-detect)
            _refuse_network()

    class raw_blocked(raw):  # noqa: N801  (stands in for _socket.socket)
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002
            _check(family)
            raw.__init__(self, family, type, proto, fileno)

    class socket_blocked(original):  # noqa: N801  (stands in for socket.socket)
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002
            _check(family)
            # original.__init__ reaches _socket.socket.__init__, i.e. raw_blocked's (checked again), then
            # the C type's: the two replacements never call each other in a loop.
            original.__init__(self, family, type, proto, fileno)

    socket.socket = socket_blocked
    socket.SocketType = socket_blocked
    for name in (
        "create_connection",
        "create_server",
        "fromfd",
        "getaddrinfo",
        "gethostbyname",
        "gethostbyname_ex",
        "gethostbyaddr",
        "getnameinfo",
        "getfqdn",
    ):
        if hasattr(socket, name):
            setattr(socket, name, _refuse_network)
    for name in ("socket", "SocketType", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                 "gethostbyaddr", "getnameinfo", "fromfd"):
        if hasattr(_socket, name):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(_socket, name, raw_blocked if name in ("socket", "SocketType") else _refuse_network)


_PLAIN = (bool, int, float, str, type(None))


def _plain(value, depth=0, budget=None):
    """Whether ``value`` is plain JSON data (bounded walk)."""
    if budget is None:
        budget = [10000]
    budget[0] -= 1
    if budget[0] < 0 or depth > 50:
        return False
    t = _type(value)
    if t in _PLAIN:
        if t is float and (value != value or value in (float("inf"), float("-inf"))):
            return False
        return not (t is int and value.bit_length() > 1000)
    if t in (list, tuple):
        return all(_plain(v, depth + 1, budget) for v in value)
    if t is dict:
        return all(_type(k) is str and _plain(v, depth + 1, budget) for k, v in value.items())
    return False


def _describe_value(value, cap):
    """(value for the JSON result, truncated?)"""
    if value is None:
        return None, False
    try:
        if _plain(value):
            text = _dumps(value, ensure_ascii=False)
            if _len(text.encode("utf-8", "replace")) <= cap:
                return value, False
        text = _repr(value)
        if not _isinstance(text, _str):
            text = _str(text)
    except ValueError as exc:  # e.g. an int too large to convert to a string
        if _isinstance(value, int):
            return f"<int of {value.bit_length()} bits>", False
        return f"<value could not be shown: {exc!s}>", False
    except Exception as exc:
        return f"<value could not be shown: {_type(exc).__name__}: {exc!s}>", False
    data = text.encode("utf-8", "replace")
    if _len(data) > cap:
        shown = data[:cap].decode("utf-8", "ignore")
        return shown + f"… [value truncated: repr was {_len(data)} bytes]", True
    return text, False


def _print_exception(exc):
    """Print the traceback of ``exc`` to stderr, keeping only the cell's frames."""
    try:
        te = traceback.TracebackException(_type(exc), exc, exc.__traceback__)
        frames = [f for f in te.stack if f.filename == CELL]
        te.stack = traceback.StackSummary.from_list(frames)
        text = "".join(te.format())
    except Exception:
        text = f"{_type(exc).__name__}: {exc!s}\n"
    try:  # noqa: SIM105 - runs after the cell, which may have replaced builtins.issubclass that suppress() calls
        sys.stderr.write(text)
    except Exception:
        pass


def _exception_line(exc, limit=2000):
    try:
        message = _str(exc)
    except Exception:
        message = "<message could not be shown>"
    line = f"{_type(exc).__name__}: {message}" if message else _type(exc).__name__
    return line if _len(line) <= limit else line[:limit] + "… [truncated]"


def _run_cell(code, namespace):
    """Run ``code`` like a notebook cell. Returns (value, exit, error, memory_error)."""
    linecache.cache[CELL] = (_len(code), None, code.splitlines(True), CELL)
    try:
        tree = ast.parse(code, filename=CELL, mode="exec")
        last = None
        if tree.body and _isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, CELL, "exec")
        tail = compile(last, CELL, "eval") if last is not None else None
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        _print_exception(exc)
        return None, 1, _exception_line(exc), _isinstance(exc, MemoryError)

    try:
        exec(body, namespace)  # noqa: S102  (this IS the sandboxed child: running the code is its job)
        value = eval(tail, namespace) if tail is not None else None  # noqa: S307
        return value, 0, None, False
    except SystemExit as exc:
        code_ = exc.code
        if code_ is None:
            status = 0
        elif _isinstance(code_, int):
            status = code_ & 0xFF
        else:
            try:  # noqa: SIM105 - runs after the cell, which may have replaced builtins.issubclass that suppress() calls
                sys.stderr.write(f"{code_!s}\n")
            except Exception:
                pass
            status = 1
        return None, status, (None if status == 0 else f"SystemExit: {code_!s}"), False
    except BaseException as exc:  # KeyboardInterrupt, MemoryError, anything the code raised
        _print_exception(exc)
        return None, 1, _exception_line(exc), _isinstance(exc, MemoryError)


def main():
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    result_fd = int(request["result_fd"])
    value_cap = int(request.get("value_cap", 65536))
    os.set_inheritable(result_fd, False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    with contextlib.suppress(OSError):
        os.chdir(request.get("workdir") or "/tmp")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")

    _block_network()
    main_pid = _getpid()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    value, status, error, memory_error = _run_cell(request["code"], namespace)

    if _getpid() != main_pid:  # a process the code forked finished the cell: it reports nothing
        _exit(0)
    shown, value_truncated = _describe_value(value, value_cap)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:  # noqa: SIM105 - runs after the cell, which may have replaced builtins.issubclass that suppress() calls
            stream.flush()
        except Exception:
            pass
    result = {
        "value": shown,
        "value_truncated": value_truncated,
        "exit": status,
        "error": error,
        "memory_error": memory_error,
    }
    try:
        data = _dumps(result, ensure_ascii=False).encode("utf-8", "replace")
    except Exception as exc:
        data = _dumps({"value": None, "exit": status, "error": f"result not serialisable: {exc!s}"}).encode()
    view = memoryview(data)
    while view:
        try:
            n = _write(result_fd, view)
        except InterruptedError:
            continue
        except OSError:
            break
        view = view[n:]
    _exit(status)


if __name__ == "__main__":
    main()
