"""costbench's command line: dispatch to one module per subcommand.

Each subcommand lives in a bench/cmd_*.py module with two functions,
`add_arguments(parser, command)` and `main(args) -> int` (args.command holds the command name, so
one module can serve several listing commands). Only the chosen command's module is imported, so `costbench cost` never
pays for importing torch. Exit statuses (SPEC.md; the README lists them):

    0 ok · 1 a measurement failed its correctness check · 2 bad input (one line on stderr, no
    traceback) · 3 a rank failed or hung (a dead peer, a start-up or step timeout) · 4 an I/O
    error while writing results or output (disk full, stdout closed or full) · 70 an internal
    error (a bug; one line) · 130 interrupted (Ctrl-C, SIGTERM)

Commands return them (bench.runner computes run's); this module maps the exceptions that
reach it: InputError -> 2, OutputError and OSError -> 4, KeyboardInterrupt -> 130, anything else -> 70.
"""

import argparse
import errno
import importlib
import os
import re
import signal
import sys
import warnings

from bench.table import printable
from cost_models.errors import InputError, OutputError
from cost_models.units import check_plausible, parse_fraction, parse_number, parse_positive

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_RANK_FAILED, EXIT_IO, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_BUG = 70  # an internal error (EX_SOFTWARE): a bug, still one line (COSTBENCH_DEBUG=1: the traceback)

# name -> (module, one-line help). Order is the order `costbench --help` lists them.
COMMANDS = {
    "run": ("bench.cmd_run", "measure this machine: matmul TFLOP/s, memory and collective bandwidth, a layer's work"),
    "cost": ("bench.cmd_cost", "what training a model costs: GPU-hours, days and dollars per provider"),
    "whatif": ("bench.cmd_whatif", "one cost input varied (gpu, network, gpus, ...), all else fixed, set against the claims"),
    "tco": ("bench.cmd_tco", "own versus rent: the cost of an owned GPU-hour, break-even utilisation, payback"),
    "compare": ("bench.cmd_compare", "result files side by side: delivered TFLOP/s, $ per PFLOP-hour, cost to train"),
    "report": ("bench.cmd_report", "charts (PNG) and one self-contained HTML page from result files"),
    "prices": ("bench.cmd_catalog", "list the price catalog, or turn a SkyPilot vms.csv into price rows"),
    "models": ("bench.cmd_catalog", "list the model catalog"),
    "gpus": ("bench.cmd_catalog", "list the GPU catalog"),
    "networks": ("bench.cmd_catalog", "list the network fabrics"),
}
MEASURING = ("run", None)  # commands that import torch and time kernels
DEFAULT_MODULE = "bench.cmd_default"  # bare `costbench`: quick measurement, then Llama 3 70B costs


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, but a help string with a literal '%' (e.g. "(10%)") prints as written instead
    of failing `--help` with a ValueError (found by scripts/hostile.py on `tco --help`)."""

    def _expand_help(self, action):
        try:
            return super()._expand_help(action)
        except (ValueError, KeyError, TypeError):
            return self._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _print_message(self, message, file=None):
        # argparse swallows OSError here: `cost --help > /dev/full` then exited 0 having printed
        # nothing; let it reach main(), which says so in one line with exit 4
        if message:
            (file or sys.stderr).write(message)


def _argtype(fn, what):
    """Wrap a cost_models.units parser as an argparse type with a one-line error."""

    def convert(text):
        try:
            return fn(text, what)
        except InputError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None

    convert.__name__ = what
    return convert


number = _argtype(parse_number, "number")
positive = _argtype(parse_positive, "positive number")
fraction = _argtype(parse_fraction, "fraction in (0, 1]")


def positive_int(text):
    value = positive(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number")
    return int(value)


_BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text):
    """'4G', '256M', '4GiB', '64k', '1048576', '1_024', '4e3' -> bytes. Binary units, as nccl-tests'
    -b/-e; the number as cost_models.units reads every number (ASCII digits, `_` between them)."""
    if "," in text:   # as every number: 1,5G is a decimal point in some locales, thousands in others
        raise argparse.ArgumentTypeError(f"{text!r}: commas are ambiguous (decimal point or thousands?); "
                                         "write 1.5G, 1536M or 1_536M")
    m = re.fullmatch(r"\s*([0-9][0-9_.eE+-]*?)\s*([KMGT]?)(?:I?B)?\s*", text, re.IGNORECASE)
    try:
        value = parse_number(m.group(1)) * _BYTE_UNITS[m.group(2).upper()] if m else None
    except InputError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 4G, 256M, 65536)")
    if value > _BYTE_UNITS["T"]:
        raise argparse.ArgumentTypeError(f"{text!r} is above 1T (1 TiB): a message larger than any GPU's memory")
    if value != int(value) or value < 4 or int(value) % 4:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of fp32 elements: "
                                         "a positive multiple of 4 bytes")
    return int(value)


def csv_items(text):
    """'a,b, c' -> ['a', 'b', 'c']; an empty item (`matmul,,membw`) is refused as a typo, not dropped."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError(f"{text!r} is an empty list")
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item (two commas, or one at an end)")
    return items


def first_repeat(items: list, values: list | None = None):
    """The first of items whose value (values[i], default the item; text in any case) came before, or None."""
    seen = []   # compared by ==: a value may be a list (--vary of a comma-list flag)
    for item, value in zip(items, items if values is None else values):
        key = value.casefold() if isinstance(value, str) else value
        if key in seen:
            return item
        seen.append(key)
    return None


def csv_list(text):
    """csv_items of names, none twice (in any case)."""
    items = csv_items(text)
    twice = first_repeat(items)
    if twice is not None:   # `--ops matmul,matmul` measured nothing more: a typo for another item, likely
        raise argparse.ArgumentTypeError(f"{text!r} names {twice} twice")
    return items


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [f"  {n:<{width}}  {h}" for n, (_, h) in COMMANDS.items()]
    return (
        "usage: costbench [COMMAND] [options]\n\n"
        "With no command: a quick measurement of this machine, then the Llama 3 70B\n"
        "training-cost table across providers.\n\ncommands:\n" + "\n".join(lines) +
        "\n\n`costbench COMMAND --help` for a command's options.\n"
    )


def build_parser(command: str | None):
    """The parser for one command (None: the bare default job)."""
    module = importlib.import_module(COMMANDS[command][0] if command else DEFAULT_MODULE)
    prog = f"costbench {command}" if command else "costbench"
    parser = ArgumentParser(prog=prog, description=COMMANDS[command][1] if command else None)
    module.add_arguments(parser, command)
    return parser, module


def _prepare_streams() -> bool:
    """Make printing safe whatever stdout is: characters the encoding lacks (an ASCII-only
    terminal, PYTHONIOENCODING=ascii) are backslash-escaped instead of raising; a closed stderr
    is replaced by /dev/null so errors never land on stdout. False when stdout is closed."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a detached or closed stream: leave it
                pass
    return sys.stdout is not None


def _silence_stdout() -> None:
    """After stdout failed (full, closed pipe): point it at /dev/null, file descriptor included,
    so the interpreter's own flush at exit cannot print 'Exception ignored ...'."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    sys.stdout = open(os.devnull, "w")


def _flush_stdout() -> None:
    """Flush stdout now, inside the try, so a full disk behind it is an error we report."""
    if sys.stdout is not None:
        sys.stdout.flush()


def _sigterm_as_interrupt() -> None:
    """SIGTERM (kill, Slurm preemption, a pod stop) from the first moment main() runs ends the
    command as Ctrl-C does: one line, exit 130. bench.runner installs the same for a run. SIGINT
    gets the same handler so that an interrupt swallowed by C code (torch's start-up) is noticed."""
    def handler(signum, frame):
        _signalled.append(signum)  # checked again where C code may have swallowed the exception
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, handler)
    except ValueError:  # not the main thread (main() called from a thread in a test)
        pass


_signalled = []  # SIGTERMs received: torch's C start-up imports numpy and swallows an exception raised
# in that window (found by scripts/hostile.py: SIGTERM 1.3 s into `run` was lost), so the record is kept


def _interrupt_behind(e: BaseException) -> bool:
    """True for an exception a signal caused: a KeyboardInterrupt raised inside code that wraps what
    it catches (class creation turns one raised in __set_name__ into "RuntimeError: Error calling
    __set_name__", found by SIGTERM 0.55 s into `run`, in torch's import), or any error after a
    signal was received: the user's interrupt, not a bug."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return bool(_signalled)


def _import_measurement_stack() -> None:
    """Import numpy, then torch, before a measuring command starts, with SIGTERM and SIGINT only
    noted meanwhile, then honoured. Raised inside torch's C++ start-up (a pybind11 callback), a
    KeyboardInterrupt aborted the process (std::terminate, SIGABRT, exit -6: the CI's hardening test
    under load); elsewhere in it torch swallowed one. The import takes a second or two: the
    interrupt waits that long."""
    def note(signum, frame):
        _signalled.append(signum)

    previous = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, note)
    except ValueError:  # not the main thread: no handlers to swap
        pass
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if _signalled:
        raise KeyboardInterrupt(f"signal {_signalled[0]}")


def _say_interrupted() -> None:
    """The one line of an interrupt, from rank 0 only: under torchrun the agent stops the other ranks
    with SIGTERM when one ends (rank 0 refusing a flag), and their "interrupted" read as the cause."""
    if os.environ.get("RANK", "0").strip() in ("", "0"):
        print("costbench: interrupted", file=sys.stderr)


def _prog(command) -> str:
    return f"costbench{' ' + command if command else ''}"


def glue_negative_values(argv: list) -> list:
    """`--tokens -1T` as `--tokens=-1T`: argparse takes a value after an option for an option itself
    unless it is a plain number (-8), so a negative 70B or 1e9 was "expected one argument", hiding
    the problem (its sign) that the option's own check names."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"-\.?\d", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv=None) -> int:
    """Run one command and return its exit status (README "Exit codes"). Never raises: every
    failure is one line on stderr, and a bug is one line too unless COSTBENCH_DEBUG is set."""
    installed = argv is None  # the real program, not a test calling main([...]) in-process
    if installed:
        _sigterm_as_interrupt()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None  # for error messages
    try:
        if not _prepare_streams():
            print("costbench: error: standard output is closed; nothing can be printed "
                  "(redirect it to a file or /dev/null)", file=sys.stderr)
            return EXIT_IO
        with warnings.catch_warnings():
            # numpy overflow in the cost model means an input beyond what can be computed: an
            # error naming it beats a RuntimeWarning and a 40-digit (or inf) answer
            warnings.filterwarnings("error", category=RuntimeWarning, module=r"cost_models\.")
            code = _main(command, argv[1:] if command else argv)
        _flush_stdout()
        return code
    except (InputError, OutputError) as e:
        print(f"{_prog(command)}: error: {printable(str(e))}", file=sys.stderr)   # one line: a path's ESC escaped
        return EXIT_IO if isinstance(e, OutputError) else EXIT_BAD_INPUT
    except SystemExit as e:  # argparse's one-line errors (status 2) and --help (0)
        if not e.code:   # --help: its text must reach stdout too (`cost --help > /dev/full` said 0)
            try:
                _flush_stdout()
            except OSError as err:
                print(f"{_prog(command)}: error: writing output: {err.strerror or err}", file=sys.stderr)
                _silence_stdout()
                return EXIT_IO
        if isinstance(e.code, int) or e.code is None:
            return e.code or EXIT_OK
        print(e.code, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say_interrupted()
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `costbench prices | head`: the reader had enough; not an error
        _silence_stdout()
        return EXIT_OK
    except OSError as e:  # stdout on a full disk, or any other I/O failure not turned into one line yet
        where = f"{e.filename}: " if e.filename else "writing output: " if _stdout_error(e) else ""
        print(f"{_prog(command)}: error: {where}{e.strerror or e}", file=sys.stderr)
        if _stdout_error(e):
            _silence_stdout()
        return EXIT_IO
    except RuntimeWarning as e:
        print(f"{_prog(command)}: error: the inputs are beyond what can be computed ({e}); see README "
              f"'What costbench refuses'", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecursionError:
        print(f"{_prog(command)}: error: input nested too deeply", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug: still one line, the traceback on request
        if _interrupt_behind(e):
            _say_interrupted()
            return EXIT_INTERRUPTED
        if os.environ.get("COSTBENCH_DEBUG"):
            raise
        print(f"{_prog(command)}: internal error (a bug in costbench; COSTBENCH_DEBUG=1 shows the "
              f"traceback): {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_BUG
    finally:
        if installed:  # a signal while the interpreter shuts down: the same status, no traceback
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, lambda signum, frame: os._exit(EXIT_INTERRUPTED))
            except ValueError:
                pass


def entry() -> None:
    """The console script and `python -m bench`: main(), then leave without the interpreter's
    finalization. Python resets signal handlers to their defaults while it finalizes, so a SIGTERM
    in that window (the work done, the output written) would end the process as -15 with no word;
    os._exit after flushing keeps the documented status. Every result and report file is already
    complete and closed when main() returns (they are written atomically)."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # main() already reported a stdout that cannot be written
            pass
    os._exit(code if isinstance(code, int) else EXIT_BUG)


def _stdout_error(e: OSError) -> bool:
    return e.filename is None and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EPIPE, errno.EBADF)


def _main(command: str | None, argv: list) -> int:
    """Run `command` (None: the bare default job) on the rest of the command line."""
    if command is None and argv:
        if argv[0] == "help" and len(argv) > 1:   # `costbench help run`, as git and pip read it
            if argv[1] not in COMMANDS:
                from cost_models.errors import unknown_name
                raise unknown_name("command", argv[1], COMMANDS)
            return _main(argv[1], ["--help"])
        if argv[0] in ("-h", "--help", "help"):
            sys.stdout.write(_top_help())
            return 0
        if argv[0] in ("-V", "--version"):
            from bench import __version__
            print(f"costbench {__version__}")
            return 0
        if not argv[0].startswith("-"):
            from cost_models.errors import unknown_name
            raise unknown_name("command", argv[0], COMMANDS)
    parser, module = build_parser(command)
    args = parser.parse_args(glue_negative_values(argv))
    args.command = command
    check_empty(args, parser)
    check_args(args)
    if command in MEASURING:
        _import_measurement_stack()
    code = int(module.main(args) or 0)
    if _signalled and code == EXIT_OK:  # a SIGTERM something swallowed: still report it
        raise KeyboardInterrupt(f"signal {_signalled[0]}")
    return code


def check_empty(args, parser) -> None:
    """An option given an empty value (`--network ''`, `--model ''`, `--results ''`) is refused: it
    silently meant the default, or became an error naming ': no such file'."""
    lists = {"gpu": "costbench gpus", "model": "costbench models", "network": "costbench networks"}
    required = {a.dest for a in parser._actions if a.required and a.option_strings}
    for name, value in vars(args).items():
        if isinstance(value, str) and not value.strip() and value != parser.get_default(name):
            hint = f" ({lists[name]} lists them)" if name in lists else ""
            leave = "" if name in required else " or leave the option out"
            raise InputError(f"--{name.replace('_', '-')}: empty; give a value{hint}{leave}")


def check_args(args) -> None:
    """The plausibility bounds of cost_models.units.PLAUSIBLE, for every command's flags of
    those names: a value that parses but no hardware or budget could mean is refused here."""
    for name, value in vars(args).items():
        check_plausible(name, value, "--" + name.replace("_", "-"))


if __name__ == "__main__":
    sys.exit(main())
