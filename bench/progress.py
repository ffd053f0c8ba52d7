"""Progress on stderr: a rich progress bar on a terminal, sparse plain lines elsewhere.

On a terminal (rich.progress): one live line per phase with a bar, the count, the rate and the
ETA when the phase's step count is known, a spinner and the elapsed time when it is not; messages
(write) print above the bar. Elsewhere (CI logs, files): a plain line when a phase starts, then at
most one every `every_s` seconds and the phase's last one, so logs stay short and greppable.
rich is imported only for a terminal (it costs ~0.1 s of start-up).
"""

import sys
import time


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _rich_progress(stream):
    """A started rich Progress drawing on `stream` (a terminal)."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, ProgressColumn, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class Rate(ProgressColumn):
        """Steps per second, or seconds per step when slower than one a second."""

        def render(self, task):
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("", style="progress.data.speed")
            text = f"{speed:.1f} steps/s" if speed >= 1 else f"{1 / speed:.1f} s/step"
            return Text(text, style="progress.data.speed")

    bar = RichProgress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       Rate(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                       TextColumn("{task.fields[label]}", markup=False),
                       console=Console(file=stream, force_terminal=True))
    bar.start()
    return bar


class Progress:
    """progress.phase("matmul fp32") / .phase("allreduce", total=8); .step("4096x4096x4096"); .close()"""

    def __init__(self, stream=None, enabled: bool = True, every_s: float = 5.0, width: int = 24):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s, self.width = every_s, width
        self.name, self.total, self.done = "", None, 0
        self._t0 = self._last = time.monotonic()
        self._pending = None  # logs: the latest step line not yet written
        self._bar = self._task = None  # terminal: the rich Progress and the current phase's task

    def phase(self, name: str, total: int | None = None) -> None:
        """Start a phase; total=None where the number of steps is not known in advance."""
        self._flush_pending()
        self.name, self.total, self.done = name, total, 0
        self._t0 = time.monotonic()
        if self.tty:
            self._bar = self._bar or _rich_progress(self.stream)
            if self._task is not None:
                self._bar.stop_task(self._task)
            self._task = self._bar.add_task(name, total=total, label="")
        elif self.enabled:
            self._write(f"{name}: started" + (f" ({total} steps)" if total else ""))
            self._last = self._t0

    def step(self, label: str = "") -> None:
        """One step of the current phase finished; label says what (a shape, a size)."""
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            if self._task is not None:
                self._bar.update(self._task, advance=1, label=label)
            return
        now = time.monotonic()
        line = self.line(label, now - self._t0)
        if now - self._last >= self.every_s or self.done == self.total:
            self._write(line)
            self._last, self._pending = now, None
        else:
            self._pending = line

    def line(self, label: str, elapsed_s: float) -> str:
        """The plain-text line for logs after a step (pure: elapsed time passed in)."""
        if self.total:
            filled = min(self.width, self.width * self.done // self.total)
            bar = "[" + "#" * filled + "." * (self.width - filled) + "]"
            eta = elapsed_s / self.done * (self.total - self.done) if self.done else 0.0
            return f"{self.name} {bar} {self.done}/{self.total} {label}  ETA {_clock(eta)}".rstrip()
        return f"{self.name} {self.done} done, {_clock(elapsed_s)} elapsed, last {label}".rstrip()

    def write(self, text: str) -> None:
        """A message line that must not be mangled by the bar (a failed check, a note)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        self._flush_pending()  # keep the log in the order things happened
        self._write(text)

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _flush_pending(self) -> None:
        if self._pending:
            self._write(self._pending)
            self._pending = None

    def close(self) -> None:
        self._flush_pending()
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None
