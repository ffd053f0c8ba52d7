"""`costbench report`: every chart written, one self-contained page that embeds them all and names
every run, valid HTML (html.parser), atomic and never over a user's own files. Small figures, few
points: the test draws everything in a few seconds."""

import base64
import html.parser
import json
import os
import re

import pytest

from bench import cmd_report
from cost_models.errors import InputError
from tests import synthetic
from tests.conftest import run_cli


class Page(html.parser.HTMLParser):
    """Collects <img> sources and the text; fails on tags closed out of order."""

    VOID = {"meta", "img", "br", "link", "input", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    page = Page()
    with open(path) as f:
        page.feed(f.read())
    page.close()
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


def test_report_writes_every_chart_and_a_page_embedding_them(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    synthetic.two_providers(runs)
    whatif = tmp_path / "whatif.json"
    whatif.write_text(json.dumps({"vary": "gpu", "rows": [
        {"value": "H100-SXM", "gpu_hours": 6e6, "wall_clock_days": 16, "cost_usd_min": 2e7},
        {"value": "A100-SXM-80GB", "gpu_hours": 1.5e7, "wall_clock_days": 40, "cost_usd_min": 3e7}]}))
    out = tmp_path / "report"
    written = cmd_report.build([str(runs)], str(out), model="llama3-8b", whatif=str(whatif), dpi=30, scale=0.5)
    names = sorted(os.path.basename(p) for p in written)
    assert names == sorted(cmd_report.REPORT_FILES)
    for name in names:
        if name.endswith(".png"):
            with open(out / name, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    page = _parse(out / "index.html")
    pngs = {n for n in names if n.endswith(".png")}
    assert len(page.images) == len(pngs)
    embedded = [base64.b64decode(img["src"].split(",", 1)[1]) for img in page.images]
    assert all(img["src"].startswith("data:image/png;base64,") and img.get("alt") for img in page.images)
    assert sorted(embedded) == sorted((out / n).read_bytes() for n in pngs)  # the very files written
    text = " ".join(page.text)
    for run_id in ("cw1", "cw2", "cw3", "aws1"):
        assert run_id in text
    assert "coreweave/us-east" in text and "aws/us-east-1" in text and "How to read this" in text
    assert "http://" not in (out / "index.html").read_text().replace("http://www.w3.org", "")
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_report_cli_replaces_its_own_files_but_not_a_users(tmp_path, capsys):
    paths = [synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))]
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    cmd_report.build(paths, str(out), model="llama3-8b", dpi=30, scale=0.5)
    code, stdout, err = run_cli(capsys, "report", *paths, "--out", str(out), "--model", "llama3-8b")
    assert code == 0 and "index.html" in stdout, err  # a re-run replaces costbench's own report files
    (out / "index.html").write_text("<p>my own page</p>")
    code, _, err = run_cli(capsys, "report", *paths, "--out", str(out))
    assert code == 2 and "index.html exists and was not written by costbench" in err and len(err.splitlines()) == 1
    assert (out / "index.html").read_text() == "<p>my own page</p>" and (out / "notes.txt").read_text() == "mine"
    # the marker alone proves nothing: a user's note that names the command, or a copy of report's
    # own page annotated by hand, is the user's (the first was once replaced: hostile tester)
    for mine in ("<html><p>run costbench report to refresh</p></html>", None):
        (out / "index.html").unlink()
        assert run_cli(capsys, "report", *paths, "--out", str(out))[0] == 0
        page = (out / "index.html").read_text()
        (out / "index.html").write_text(mine or page.replace("</body>", "<p>my notes</p></body>"))
        code, _, err = run_cli(capsys, "report", *paths, "--out", str(out))
        assert code == 2 and "index.html exists and was not written by costbench report (or was changed since)" in err
    assert "my notes" in (out / "index.html").read_text()


def _report_with_whatif(tmp_path, capsys):
    """(result paths, --out folder) of a report drawn with a what-if chart."""
    paths = [synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))]
    code, doc, _ = run_cli(capsys, "whatif", "--vary", "gpu=H100-SXM,H200-SXM", "--model", "llama3-8b",
                           "--format", "json")
    whatif = synthetic.write_text(tmp_path, "wi.json", doc)
    out = tmp_path / "r"
    assert run_cli(capsys, "report", *paths, "--out", str(out), "--whatif", whatif)[0] == 0
    return paths, out


def test_a_chart_a_rerun_no_longer_draws_is_removed(tmp_path, capsys):
    """whatif.png from an earlier --whatif, report's own unchanged file, goes when a re-run draws
    no what-if chart (it stayed behind, shown by no page: hostile tester); a user's file of that
    name would have been refused before anything was written."""
    paths, out = _report_with_whatif(tmp_path, capsys)
    assert (out / "whatif.png").exists()
    manifest = json.loads((out / cmd_report.MANIFEST).read_text())["files"]
    assert set(manifest) == {n for n in os.listdir(out) if not n.startswith(".")} and \
        all(len(v) == 1 for v in manifest.values())
    assert run_cli(capsys, "report", *paths, "--out", str(out))[0] == 0
    assert not (out / "whatif.png").exists() and "whatif.png" not in json.loads(
        (out / cmd_report.MANIFEST).read_text())["files"]


def test_a_charts_warning_is_one_prefixed_line_and_an_interrupt_writes_nothing(tmp_path, capsys, monkeypatch):
    """matplotlib's "Tight layout not applied" reached stderr raw, on two lines; an interrupt while
    charts rendered left a folder of new and old PNGs. Now every chart renders before any write."""
    import warnings

    from bench import charts

    paths = [synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))]
    real = charts.matmul_shapes

    def cramped(*a, **kw):
        warnings.warn("Tight layout not applied. The bottom and top margins cannot be made large enough\nmore")
        return real(*a, **kw)

    monkeypatch.setattr(charts, "matmul_shapes", cramped)
    code, _, err = run_cli(capsys, "report", *paths, "--out", str(tmp_path / "r"))
    assert code == 0 and err == ("costbench report: warning: chart matmul_shapes: Tight layout not applied. The bottom "
                                 "and top margins cannot be made large enough\n"), err

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(charts, "step_breakdown", interrupted)   # the last chart: the others rendered
    before = {f: os.stat(tmp_path / "r" / f).st_mtime_ns for f in os.listdir(tmp_path / "r")}
    code, _, _ = run_cli(capsys, "report", *paths, "--out", str(tmp_path / "r"))
    assert code == 130 and {f: os.stat(tmp_path / "r" / f).st_mtime_ns for f in os.listdir(tmp_path / "r")} == before


def test_report_bad_whatif_and_nothing_readable_are_one_line_errors(tmp_path, capsys):
    good = synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))
    (tmp_path / "w.json").write_text(json.dumps({"rows": []}))
    code, _, err = run_cli(capsys, "report", good, "--out", str(tmp_path / "o"), "--whatif", str(tmp_path / "w.json"))
    assert code == 2 and "--whatif" in err and len(err.splitlines()) == 1
    for value in (-5, "x", True):   # a negative bar was drawn; a string silently dropped
        (tmp_path / "w.json").write_text(json.dumps({"rows": [{"value": "a", "cost_usd_min": 1.0,
                                                               "wall_clock_days": value}]}))
        code, _, err = run_cli(capsys, "report", good, "--out", str(tmp_path / "o"), "--whatif", str(tmp_path / "w.json"))
        assert code == 2 and f"rows[0].wall_clock_days: {value!r} is not a non-negative number or null" in err, err
    for row, needle in (({"cost_usd_min": 1e308}, "rows[0].cost_usd_min: 1e+308 is above 1e+15"),   # numpy overflowed
                        ({"cost_usd_min": 1.0, "cost_usd_max": 0.5}, "rows[0]: cost_usd_min 1.0 is above cost_usd_max 0.5")):
        (tmp_path / "w.json").write_text(json.dumps({"rows": [{"value": "a", **row}]}))
        code, _, err = run_cli(capsys, "report", good, "--out", str(tmp_path / "o"), "--whatif", str(tmp_path / "w.json"))
        assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    (tmp_path / "bad.json").write_text("[]")
    code, _, err = run_cli(capsys, "report", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o"))
    assert code == 2 and err.splitlines() == [f"costbench report: error: {tmp_path / 'bad.json'}: expected a JSON "
                                              "object at the top, got list"], err
    edited = synthetic.result("lambda/y")
    edited["summary"]["collectives"] = "fast"      # a hand edit: once a crash (exit 70) in report's reader
    path = synthetic.write(tmp_path, "edited.json", edited)
    code, _, err = run_cli(capsys, "report", path, "--out", str(tmp_path / "o2"))
    assert code == 2 and "summary.collectives: expected an object or null, got 'fast'" in err


def test_step_parts_are_the_step_models_and_add_up_to_the_step():
    from bench.charts import step_parts
    from cost_models.cost import plan_training

    plan = plan_training("llama3-8b", "H100-SXM", gpus=1024)
    parts, origin = step_parts(plan)
    assert origin.startswith("step model") and set(parts) >= {"gemm", "attention", "dp_comm"}
    assert sum(parts.values()) == pytest.approx(plan.step["seconds"])
    assert step_parts(plan_training("llama3-8b", "H100-SXM", gpus=1024, gpu_hours=1e6))[0] == {}

def test_whatif_chart_keeps_a_value_that_cannot_run_on_its_axis():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from bench import charts

    frame = pd.DataFrame({"value": ["8", "64", "2048"], "cost": [float("nan"), 7.0e6, 7.5e6],
                          "days": [float("nan"), 2527.0, 85.0]})
    frame.attrs["vary"] = "gpus"
    fig = charts.whatif_chart(frame)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "64", "2048"]
    lo, hi = ax.get_xlim()
    assert lo < 0 < 2 < hi                                   # the first tick is inside the axes
    assert [t.get_text() for t in ax.texts] == ["no layout fits"] and ax.texts[0].get_position()[0] == 0


def test_report_with_a_users_cpu_price_row(tmp_path, capsys):
    """A --prices file with a gpu "cpu" row (how the README prices a CPU run) once made `report`
    look "cpu" up in the GPU catalog and exit 2; the catalog lines skip it, the runs use it."""
    paths = [synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))]
    prices = synthetic.write_text(tmp_path, "mine.csv", "provider,gpu,pricing,region,usd_per_gpu_hour,as_of,source\n"
                                  "me,cpu,on-demand,home,0.05,2026-11,my bill\n"
                                  "me,H100-SXM,on-demand,home,2.00,2026-11,my bill\n")
    code, stdout, err = run_cli(capsys, "report", *paths, "--out", str(tmp_path / "r"), "--model", "llama3-8b",
                                "--prices", prices)
    assert code == 0 and "index.html" in stdout, err


def test_the_cost_chart_prices_each_provider_on_its_own_run_as_the_table_does(tmp_path):
    """aws's bar was priced on coreweave's throughput (the representative run), so chart and
    table on the same page disagreed; a run with no price of its own got one invented in days_vs_cost."""
    from bench import charts
    from bench.compare import compare

    prices = synthetic.prices(tmp_path)
    df = compare(synthetic.two_providers(tmp_path), model="llama3-8b", prices=prices)
    table = {r["provider"]: r["cost_usd"] for r in df.to_dict("records") if r["cost_usd"] == r["cost_usd"]}
    fig = charts.cost_by_provider(df, "llama3-8b", prices)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    bars = {label: patch.get_width() for label, patch in zip(labels, ax.patches)}
    for provider, cost in table.items():
        mine = [w for label, w in bars.items() if label.startswith(f"{provider} on-demand")]
        assert any(w == pytest.approx(cost, rel=1e-9) for w in mine), (provider, cost, bars)


def test_control_characters_in_a_tag_are_visible_escapes_on_the_page(tmp_path):
    """A tag holding a newline and an ESC (a file made by hand or by an older run) reached the page raw."""
    tag = "lambda/x\nFAKE\x1b[31m<b>"
    paths = [synthetic.write(tmp_path, "a.json", synthetic.result(tag))]
    cmd_report.build(paths, str(tmp_path / "r"), model="llama3-8b", dpi=30, scale=0.5)
    page = (tmp_path / "r" / "index.html").read_text()
    assert "\x1b" not in page and "lambda/x\\nFAKE\\x1b[31m&lt;b&gt;" in page


def test_days_vs_cost_prices_a_cluster_at_a_whole_node_offer(tmp_path):
    """The catalog line took the cheapest row of any kind: 16,384 H100s at a 1-GPU marketplace listing."""
    from bench import charts
    from bench.compare import compare

    header = "provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source,instance_gpus,marketplace\n"
    path = tmp_path / "p.csv"
    path.write_text(header + "m,H100-SXM,on-demand,1.0,x,2026-11,t,1,yes\n"    # beside the catalog's rows
                             "n,H100-SXM,on-demand,1.5,y,2026-11,t,8,no\n")
    df = compare([synthetic.write(tmp_path, "a.json", synthetic.result("n/y"))], model="llama3-8b", prices=str(path))
    fig = charts.days_vs_cost(df, "llama3-8b", str(path), sizes=(256, 1024))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "H100-SXM (catalog, n \\$1.50/GPU-h)" in labels and not any("m \\$1.00" in x for x in labels), labels
    # a GPU whose cheapest offer is still no whole node says so: the catalog's H100 PCIe (1-GPU instances)
    assert any(x.startswith("H100-PCIe (catalog, ") and x.endswith("1-GPU instances)") for x in labels), labels


def test_cost_bars_carry_a_terms_commitment_and_the_spot_caveat(tmp_path):
    """A reserved-3y bar drew at the run's hours only ($12.4M) beside a $829M commitment."""
    from bench import charts
    from bench.compare import compare

    df = compare([synthetic.write(tmp_path, "a.json", synthetic.result("aws/us-east-1"))], model="llama3-8b")
    fig = charts.cost_by_provider(df, "llama3-8b")
    texts = [t.get_text() for t in fig.axes[0].texts]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    reserved = [t for t, label in zip(texts, labels) if "reserved-3y" in label]
    assert reserved and all("term commitment \\$" in t for t in reserved), (texts, labels)   # \$: not mathtext
    on_demand = [t for t, label in zip(texts, labels) if " on-demand" in label]
    assert on_demand and not any("term commitment" in t for t in on_demand)
    assert any("interruptions not modelled" in " ".join(t.get_text().split()) for t in fig.texts)


def test_a_dollar_in_a_tag_is_text_not_mathtext(tmp_path):
    """A tag "aws/$\\frac x" beside a "$2.00" price in a legend stopped the report (ValueError)."""
    paths = [synthetic.write(tmp_path, "a.json", synthetic.result("aws/$\\frac x"))]
    cmd_report.build(paths, str(tmp_path / "r"), model="llama3-8b", dpi=30, scale=0.5)
    assert "aws/$\\frac x" in (tmp_path / "r" / "index.html").read_text()


def test_run_notes_are_numbered_under_the_side_by_side_table():
    """A note in its own column was squeezed to a word a line and scrolled off the page's right edge."""
    from bench.compare import compare, load_usable_runs

    paths = [os.path.join("results", "reference")]
    df = compare(paths, model="llama3-70b")
    notes = list(dict.fromkeys(n for n in df["note"] if isinstance(n, str)))
    assert notes, "the reference CPU runs carry notes (catalog parts, no price)"
    page = cmd_report._page(df, load_usable_runs(paths), "llama3-70b", [])
    for n, note in enumerate(notes, 1):
        assert f'<p class="note">[{n}] {cmd_report.report_page.escape(note)}</p>' in page
        assert f'<td class="word">[{n}]</td>' in page   # the run's row points at it


def test_a_ctrl_c_during_the_writes_lands_after_the_last(monkeypatch, tmp_path):
    """A SIGINT between two of report's file writes left a new chart beside the old page: the
    writes run with SIGINT/SIGTERM held, and the interrupt is raised once they are done."""
    import os
    import signal

    from bench.results import signals_deferred

    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("first")
            done.append("second")   # still reached: the interrupt waits for the block's end
    assert done == ["first", "second"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored
    with signals_deferred():   # nothing caught: nothing raised
        pass


def test_a_disk_that_fills_mid_report_leaves_the_old_report_whole(tmp_path, capsys, monkeypatch):
    """A full disk between two of report's files left the new matmul chart beside the old page (and
    the old chart lost): every file is staged before any is renamed, and a failure removes the
    staged ones. Exit 4, one line naming the folder."""
    import errno

    from bench import results

    paths = [synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))]
    out = tmp_path / "r"
    assert run_cli(capsys, "report", *paths, "--out", str(out))[0] == 0
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    paths.append(synthetic.write(tmp_path, "b.json", synthetic.result("aws/y", bf16=600.0, run_id="r2")))
    real, calls = results._write_temp, []

    def filling(folder, base, data):
        calls.append(base)
        if len(calls) == 4:   # the transitional manifest and two charts fit; the third does not
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(folder, base, data)

    monkeypatch.setattr(results, "_write_temp", filling)
    code, _, err = run_cli(capsys, "report", *paths, "--out", str(out))
    assert code == 4 and len(calls) == 4
    assert err.splitlines() == [f"costbench report: error: --out {out}: cannot write the report: No space left "
                                "on device; the folder is as it was"]
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before   # no temp left, nothing changed
    calls.clear()   # a first report into new folders: none is left behind
    assert run_cli(capsys, "report", *paths, "--out", str(tmp_path / "new" / "a" / "b"))[0] == 4
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr(results, "_write_temp", real)
    assert run_cli(capsys, "report", *paths, "--out", str(out))[0] == 0 and "aws/y" in (out / "index.html").read_text()


def test_killed_before_the_final_manifest_a_stale_chart_is_still_reports_own(tmp_path, capsys, monkeypatch):
    """The final manifest (which no longer names whatif.png) is renamed only after the stale chart
    is removed: a crash at the removal left whatif.png unnamed, and every later report refused the
    folder as holding a user's file (code review)."""
    from bench import cmd_report as report

    paths, out = _report_with_whatif(tmp_path, capsys)

    def crash(path):
        raise OSError(5, "Input/output error", path)

    monkeypatch.setattr(report.os, "remove", crash)
    code, _, err = run_cli(capsys, "report", *paths, "--out", str(out))
    assert code == 4 and "cannot finish the report: Input/output error" in err and len(err.splitlines()) == 1
    assert "whatif.png" in json.loads((out / report.MANIFEST).read_text())["files"]   # still report's own
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]
    monkeypatch.undo()
    assert run_cli(capsys, "report", *paths, "--out", str(out))[0] == 0 and not (out / "whatif.png").exists()


def test_report_whatif_reads_only_what_it_draws(tmp_path):
    """The chart draws value, cost and days: a hand edit of a row's nested parts (step, parallelism,
    fabric_rows: the table's) once crashed report (exit 70) in the flattening it did not need; a
    meaningless vary or value is refused by name."""
    row = {"value": 1024, "gpu_hours": 6e6, "wall_clock_days": 16.0, "cost_usd_min": 2e7,
           "step": {"seconds": 1.3, "parts": {"gemm": 1.3}}, "parallelism": {"tp": 8}, "fabric_rows": {}}
    path = tmp_path / "w.json"
    for field, junk in (("step", "x"), ("step", {"parts": None}), ("parallelism", [1]), ("fabric_rows", {"a": 1})):
        path.write_text(json.dumps({"vary": "gpus", "rows": [{**row, field: junk}, {**row, "value": 2048}]}))
        frame = cmd_report.whatif_frame(str(path))
        assert list(frame["value"]) == ["1024", "2048"] and list(frame["cost"]) == [2e7, 2e7]
        assert frame.attrs["vary"] == "gpus"
    for doc, needle in (({"vary": None, "rows": [row]}, "vary: None is not the name of the varied flag"),
                        ({"vary": "gpus", "rows": [{**row, "value": {"a": 1}}]}, "rows[0].value: {'a': 1} is not"),
                        ({"vary": "gpus", "rows": [{**row, "value": True}]}, "rows[0].value: True is not"),
                        ({"vary": "gpus", "rows": [{**row, "value": []}]}, "rows[0].value: [] is not")):
        path.write_text(json.dumps(doc))
        with pytest.raises(InputError, match=re.escape(needle)):
            cmd_report.whatif_frame(str(path))
