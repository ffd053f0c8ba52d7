"""Read a file the user handed us (a result file, a price CSV) without trusting it.

The hostile cases this guards (issue 11): a directory, a FIFO or /dev/zero (opening a FIFO
blocks and /dev/zero never ends, so only regular files are read, opened non-blocking), a file
too large to be what it claims (a cap, 256 MiB: a result file of a long run is a few MiB), bytes
that are not UTF-8 (named by line and offset), and a byte-order mark (Excel writes one; it is
dropped). Every problem is an InputError naming the file.
"""

import json
import os
import stat

from cost_models.errors import InputError

MAX_BYTES = 256 << 20


def read_bytes(path: str, what: str = "file", max_bytes: int = MAX_BYTES) -> bytes:
    """The contents of the regular file `path`, at most max_bytes; InputError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what}") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
        raise InputError(f"{path}: cannot open: {getattr(e, 'strerror', None) or e}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file (a pipe or device?); expected a {what}")
        if info.st_size > max_bytes:
            raise InputError(f"{path}: {info.st_size / 2**20:.0f} MiB is too large for a {what} "
                             f"(limit {max_bytes >> 20} MiB)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)  # the file may have grown since fstat
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(f"{path}: too large for a {what} (limit {max_bytes >> 20} MiB)")
    return data


def read_text(path: str, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """read_bytes decoded as UTF-8, a leading byte-order mark dropped; InputError naming the
    line of the first byte that is not UTF-8."""
    data = read_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                         f"save it as UTF-8") from None


class DuplicateKey(ValueError):
    """A JSON object named one key twice (args[0]: the key)."""


def check_unique_columns(path: str, header: list, line: int = 1) -> None:
    """InputError naming a CSV header's column that appears more than once: which of its cells is
    meant? (csv readers keep the last: a $0.5 quote was priced at $500)."""
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise InputError(f"{path}:{line}: column {twice[0]} appears {header.count(twice[0])} times in the header")


def _no_duplicate_keys(pairs):
    """A JSON object as a dict, refusing a key given twice: json keeps the last without a word, so
    a hand-edited file's second summary.layer.gemm_tflops silently replaced the first."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def read_json(path: str, what: str = "file", max_bytes: int = MAX_BYTES):
    """read_text parsed as JSON; InputError naming the file for an empty file, invalid JSON (a
    cut-off one hinted as truncated), nesting Python cannot recurse through, a 5000-digit number."""
    text = read_text(path, what, max_bytes)
    if not text.strip():
        raise InputError(f"{path}: empty file, not a {what}")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except DuplicateKey as e:
        raise InputError(f"{path}: not a {what}: key {e.args[0]!r} appears twice in one object "
                         f"(which value is meant?)") from None
    except json.JSONDecodeError as e:
        cut = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")  # ends mid-value
        hint = " (truncated?)" if cut else ""
        raise InputError(f"{path}: not valid JSON{hint}: {e}") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to be a {what}") from None
    except ValueError as e:  # a number of more than 4300 digits (sys.get_int_max_str_digits)
        raise InputError(f"{path}: not a {what}: {e}") from None
