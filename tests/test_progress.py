"""bench.progress: a rich bar on a terminal, sparse plain lines (no escape codes) in logs."""

import io

from bench.progress import Progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_line_with_a_known_total_has_bar_count_and_eta():
    p = Progress(stream=io.StringIO(), width=10)
    p.phase("allreduce fp32", total=8)
    p.done = 2
    assert p.line("64 KiB", elapsed_s=3.0) == "allreduce fp32 [##........] 2/8 64 KiB  ETA 0:09"
    p.done = 8
    assert p.line("4 MiB", elapsed_s=3725.0).endswith("8/8 4 MiB  ETA 0:00")


def test_line_without_a_total_counts_and_shows_elapsed():
    p = Progress(stream=io.StringIO())
    p.phase("matmul bf16")
    p.done = 3
    assert p.line("512x512x512", elapsed_s=3725.0) == "matmul bf16 3 done, 1:02:05 elapsed, last 512x512x512"


def test_terminal_gets_a_rich_bar_with_count_rate_and_eta_and_messages_above_it():
    out = Tty()
    p = Progress(stream=out)
    p.phase("allreduce fp32", total=2)
    p.step("32 KiB")
    p.write("note: something")  # printed above the live bar, not into it
    p.step("64 KiB")
    p.close()
    text = out.getvalue()
    assert "\x1b[" in text and "note: something\n" in text
    last = text.rsplit("\r", 1)[-1]  # the bar's final redraw
    assert "allreduce fp32" in last and "2/2" in last and "ETA" in last and "64 KiB" in last
    assert "steps/s" in last or "s/step" in last


def test_log_gets_a_start_line_and_each_phase_s_last_step_only():
    out = io.StringIO()
    p = Progress(stream=out, every_s=3600)
    p.phase("matmul fp32")
    p.step("256x256x256")
    p.step("512x512x512")
    p.phase("allreduce fp32", total=3)
    for label in ("a", "b", "c"):
        p.step(label)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[0] == "matmul fp32: started"
    assert lines[1].startswith("matmul fp32 2 done,") and lines[1].endswith("last 512x512x512")
    assert lines[2] == "allreduce fp32: started (3 steps)" and "3/3 c" in lines[3]


def test_disabled_progress_writes_nothing():
    out = Tty()
    p = Progress(stream=out, enabled=False)
    p.phase("x", total=1)
    p.step("y")
    p.write("z")
    p.close()
    assert out.getvalue() == ""
