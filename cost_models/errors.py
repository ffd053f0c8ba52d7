"""The one exception type for bad user input.

Anything the user typed or handed us (a name, a number, a file) that is wrong raises InputError
with a message that names the input and the problem; the CLI prints it on one line and exits 2.
Lives in cost_models so the torch-free half can raise it too.
"""

import difflib


class InputError(ValueError):
    """Bad input from the user: one line, exit status 2, no traceback."""


def unknown_name(kind: str, name: str, choices) -> InputError:
    """An InputError for an unknown catalog name, with close matches (SkyPilot-style)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=4, cutoff=0.5)]
    def show(c):   # a name holding a comma ("Florida, US, NA") quoted, so the list reads one way
        return repr(c) if "," in c else c

    hint = (f"; did you mean {', '.join(map(show, close))}?" if close
            else f"; known: {', '.join(map(show, choices))}")
    return InputError(f"unknown {kind} {name!r}{hint}")


class CannotRun(InputError):
    """Valid inputs that together describe no run (a dtype the GPU lacks, GPU-hours the GPU's peak
    cannot reach): `costbench cost` exits 2 with it; `costbench whatif` shows it as that value's row
    and goes on. A typo or a missing file stays a plain InputError, which stops whatif."""


class NoLayoutError(CannotRun):
    """Valid inputs, but no parallel layout of the model fits the cluster (memory, divisibility)."""


class OutputError(Exception):
    """Writing failed (a full disk, a closed or full stdout): one line, exit status 4; the message
    says what the file on disk still holds."""
