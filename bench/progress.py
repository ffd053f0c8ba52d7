"""A small progress display on stderr, without dependencies.

On a terminal: one line redrawn in place, with a bar and ETA when the phase's step count is known
("allreduce fp32 [#####.....] 5/8 4 MiB  ETA 0:03"). Elsewhere (CI logs, files): a plain line when
a phase starts, then at most one every `every_s` seconds and the phase's last one, so logs stay
readable.
"""

import sys
import time


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class Progress:
    """progress.phase("matmul fp32") / .phase("allreduce", total=8); .step("4096x4096x4096"); .close()"""

    def __init__(self, stream=None, enabled: bool = True, every_s: float = 5.0, width: int = 24):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s, self.width = every_s, width
        self.name, self.total, self.done = "", None, 0
        self._t0 = self._last = time.monotonic()
        self._drawn = False
        self._pending = None  # logs: the latest step line not yet written

    def phase(self, name: str, total: int | None = None) -> None:
        """Start a phase; total=None where the number of steps is not known in advance."""
        self._flush_pending()
        self.name, self.total, self.done = name, total, 0
        self._t0 = time.monotonic()
        if self.enabled and not self.tty:
            self._write(f"{name}: started" + (f" ({total} steps)" if total else ""))
            self._last = self._t0

    def step(self, label: str = "") -> None:
        """One step of the current phase finished; label says what (a shape, a size)."""
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        line = self.line(label, now - self._t0)
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            self._drawn = True
        elif now - self._last >= self.every_s or self.done == self.total:
            self._write(line)
            self._last, self._pending = now, None
        else:
            self._pending = line

    def line(self, label: str, elapsed_s: float) -> str:
        """The text shown after a step (pure: elapsed time passed in)."""
        if self.total:
            filled = min(self.width, self.width * self.done // self.total)
            bar = "[" + "#" * filled + "." * (self.width - filled) + "]"
            eta = elapsed_s / self.done * (self.total - self.done) if self.done else 0.0
            return f"{self.name} {bar} {self.done}/{self.total} {label}  ETA {_clock(eta)}".rstrip()
        return f"{self.name} {self.done} done, {_clock(elapsed_s)} elapsed, last {label}".rstrip()

    def write(self, text: str) -> None:
        """A message line that must not be mangled by the bar (a failed check, a note)."""
        if self.enabled:
            self._flush_pending()  # keep the log in the order things happened
            self._write(text)

    def _write(self, text: str) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def _flush_pending(self) -> None:
        if self._pending:
            self._write(self._pending)
            self._pending = None

    def close(self) -> None:
        self._flush_pending()
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
