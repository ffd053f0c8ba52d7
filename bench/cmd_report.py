"""`costbench report RESULT_FILES_OR_DIRS... --out DIR`: PNG charts and one self-contained HTML page.

    costbench report results/reference --out out/report [--model NAME] [--whatif JSON_FILE]

Writes into DIR, under fixed names (REPORT_FILES), every file staged on disk before any is renamed
into place (bench.results.staged_writes): the charts of bench.charts and index.html (bench.report_page), which embeds
them, the compare table (bench.compare) and the list of runs. A file of one of those names that
costbench did not write is never replaced: exit 2 naming it. What report wrote is known from its
manifest (MANIFEST in DIR: each file's name and SHA-256 as written), so a user's own index.html, or
a report they copied and annotated, differs from it and is kept; a chart a re-run no longer draws
(whatif.png without --whatif) is removed, being report's own unchanged file. Other files in DIR are
left alone. Unreadable result files are warned about as in `compare`.
"""

import contextlib
import io
import json
import os
import time
import warnings

from bench import report_page
from bench.table import warn
from bench.compare import DEFAULT_MODEL, gpu_name
from cost_models.errors import InputError, OutputError
from cost_models.files import read_bytes, read_json

CHARTS = {  # name -> (title, how to read it)
    "cost_by_provider": ("Cost to train, per provider and pricing kind",
                         "Each bar is the cost of training the model at one provider's list price for the "
                         "GPU type measured (shortest bar: cheapest). Colours are pricing kinds; the whisker spans "
                         "the published low and high price where a provider publishes a range. The time side "
                         "(GPU-hours) comes from the best-ranked run's measured throughput, stated under the chart."),
    "matmul_shapes": ("Matmul throughput per shape",
                      "Each point is one matrix shape from the MAMF search, placed by its work (2·m·n·k) and the "
                      "TFLOP/s it reached; one colour per run, one marker per dtype. The dashed line is the "
                      "datasheet peak: the gap to it is what the GPU does not deliver. The highest point per "
                      "dtype is the MAMF quoted in the table."),
    "busbw_by_size": ("Collective bandwidth against message size",
                      "Bus bandwidth (nccl-tests' busbw, comparable with link speed) for each message size, one "
                      "panel per collective and a line per run. Small messages are latency-bound; the plateau on "
                      "the right is what gradients see. The dashed line is the link the run crossed (NVLink inside "
                      "a node, the fabric across nodes): a plateau far below it means a slow or misconfigured link."),
    "days_vs_cost": ("Days against cost as the cluster grows",
                     "Each line is one GPU type at its cheapest on-demand price for a cluster (whole 8-GPU nodes before a "
                     "cheaper 1-GPU or marketplace listing, as `costbench cost` prices; the legend names such an offer "
                     "where it is the only one), from 256 GPUs (right: slow) to "
                     "16,384 (left: fast); cost rises as communication and failures eat into larger clusters. "
                     "Solid lines use catalog throughput, dashed lines a measured run's own figures. Further left "
                     "is faster, lower is cheaper."),
    "step_breakdown": ("Training step time by part",
                       "One bar per run: the wall time of one optimizer step of the model on the planned cluster, "
                       "split into parts. A long communication part says the network, not the GPUs, sets the "
                       "pace. The note under the chart names parts the current time model does not split out."),
    "whatif": ("What if",
               "One input varied, everything else fixed (from `costbench whatif --format json`): cost bars on "
               "the left axis, days on the right."),
}
REPORT_FILES = [f"{name}.png" for name in CHARTS] + ["index.html"]
MARKER = report_page.GENERATOR.encode()  # in every file report writes: the PNGs' Software field, the page's generator
# name -> SHA-256 of each file report wrote in DIR. A marker in the file alone is not proof: a user's
# note that mentions "costbench report" was once replaced (hostile tester).
MANIFEST = ".costbench-report.json"


def add_arguments(parser, command) -> None:
    parser.add_argument("paths", nargs="+", metavar="RESULT_FILES_OR_DIRS",
                        help="result files, or directories whose *.json files are read (not recursive)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG charts and index.html")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model to price training of (default {DEFAULT_MODEL})")
    parser.add_argument("--whatif", metavar="JSON_FILE", help="a `costbench whatif --format json` output to chart")
    parser.add_argument("--prices", metavar="FILE", help="CSV with prices.csv's columns: overrides or adds rows")


def check_out(out: str) -> None:
    """Refuse before any work if DIR is a file, or holds a report-named file costbench did not
    write (a FIFO or a directory of that name too: it is read without blocking). Creates nothing:
    make_out does, once the inputs have been read (a refusal leaves no empty folder behind)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out}: exists and is not a directory")
    manifest = _manifest(out)
    for name in REPORT_FILES:
        if os.path.lexists(os.path.join(out, name)) and not _ours(out, name, manifest):
            raise InputError(f"--out {out}: {name} exists and was not written by costbench report (or was "
                             "changed since); choose another folder or move it")
    path = os.path.join(out, MANIFEST)
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
        raise InputError(f"--out {out}: {MANIFEST} exists and is not report's manifest; choose another folder or move it")
    target = os.path.abspath(out)  # the folder, or the nearest existing folder make_out would create it in
    while not os.path.exists(target):
        target = os.path.dirname(target)
    if not os.path.isdir(target):
        raise InputError(f"--out {out}: {target} is not a directory")
    if not os.access(target, os.W_OK):
        raise InputError(f"--out {out}: not writable")


def _manifest(out: str) -> dict:
    """MANIFEST's {name: [sha256, ...]} (the bytes report wrote there; two while a write is under
    way); {} when it is missing or not one (then nothing counts as ours)."""
    path = os.path.join(out, MANIFEST)
    if not os.path.isfile(path) or os.path.islink(path):
        return {}
    try:
        files = read_json(path, "report manifest").get("files")
    except (InputError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _ours(out: str, name: str, manifest: dict) -> str | None:
    """The SHA-256 of DIR/name when it is a regular file (not a link) whose bytes are what report
    wrote there (`manifest`, _manifest's, says so, and the marker is in it); else None."""
    path = os.path.join(out, name)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        data = read_bytes(path, "report file")
    except InputError:
        return None
    known, digest = manifest.get(name), _digest(data)
    return digest if isinstance(known, list) and digest in known and MARKER in data[:1 << 16] else None


def _missing_folders(out: str) -> list[str]:
    """out and each parent of it that does not exist yet, deepest first (os.makedirs creates them)."""
    missing, folder = [], os.path.abspath(out)
    while not os.path.isdir(folder) and folder != os.path.dirname(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def make_out(out: str) -> None:
    """Create the --out folder (check_out has vetted it)."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create: {e.strerror}") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"--out {out}: not writable")


WHATIF_MAX = 1e15   # dollars, days or GPU-hours: a thousand times the world's GDP in dollars


def whatif_frame(path: str):
    """`costbench whatif --format json` ({"vary": KEY, "rows": [{"value", "cost_usd_min", "wall_clock_days",
    ...}]}) as a DataFrame with columns value (as typed: cost_models.whatif.value_label), cost (the
    cheapest price row's, US$), days; attrs["vary"]. Only those fields are read, and checked: the
    rows' nested parts (step, parallelism, fabric_rows) are the table's, not the chart's."""
    import pandas as pd

    try:
        doc = read_json(path, "what-if file")
    except InputError as e:
        raise InputError(f"--whatif {e}") from None
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and "value" in r for r in rows):
        raise InputError(f"--whatif {path}: expected costbench whatif JSON: {{\"vary\": KEY, \"rows\": [{{\"value\": ...}}]}}")
    if "vary" in doc and (not isinstance(doc["vary"], str) or not doc["vary"].strip()):   # absent: "input"
        raise InputError(f"--whatif {path}: vary: {doc.get('vary')!r} is not the name of the varied flag")
    for i, r in enumerate(rows):
        if not _label_value(r["value"]):   # the chart's axis label: what the user typed after --vary KEY=
            raise InputError(f"--whatif {path}: rows[{i}].value: {r['value']!r} is not a varied value "
                             "(a string, a number or a list of them)")
        # what the chart draws: a number at least 0, or null (no price, no fit)
        for key in ("cost_usd_min", "cost_usd_max", "cost_usd", "wall_clock_days", "gpu_hours"):
            v = r.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0
                                  or v == float("inf")):
                raise InputError(f"--whatif {path}: rows[{i}].{key}: {v!r} is not a non-negative number or null")
            if v is not None and v > WHATIF_MAX:   # 1e308 overflowed the chart's scaling (numpy warned)
                raise InputError(f"--whatif {path}: rows[{i}].{key}: {v!r} is above {WHATIF_MAX:g}: not a "
                                 "training run's figure")
        low, high = r.get("cost_usd_min"), r.get("cost_usd_max")
        if low is not None and high is not None and low > high:
            raise InputError(f"--whatif {path}: rows[{i}]: cost_usd_min {low!r} is above cost_usd_max {high!r}")
    if not any(isinstance(r.get("cost_usd_min", r.get("cost_usd")), (int, float)) for r in rows):
        raise InputError(f"--whatif {path}: no row has a numeric cost_usd_min (no prices for any value?)")
    from cost_models.whatif import value_label

    frame = pd.DataFrame({"value": [value_label(r["value"]) for r in rows],
                          "cost": [r.get("cost_usd_min", r.get("cost_usd")) for r in rows],
                          "days": [r.get("wall_clock_days") for r in rows]}).astype({"cost": float, "days": float})
    frame.attrs["vary"] = doc.get("vary", "input")
    return frame


def _label_value(value) -> bool:
    """A varied value as `whatif` writes one: a string or number (not a bool), or a non-empty list
    of them (--providers aws,gcp)."""
    scalar = (str, int, float)
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, scalar) and not isinstance(v, bool) for v in value)
    return isinstance(value, scalar) and not isinstance(value, bool)


def _png(fig, dpi) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": MARKER.decode()})
    plt.close(fig)
    return buf.getvalue()


def build(paths, out: str, model: str = DEFAULT_MODEL, whatif: str | None = None, prices=None,
          dpi: int = 110, scale: float = 1.0, warn=None) -> list[str]:
    """Make the charts and the page in `out`; returns the paths written. scale shrinks the figures
    (tests draw small ones)."""
    from bench import charts
    from bench.compare import compare_runs, load_usable_runs
    from bench.results import fsync_dir, put_staged, signals_deferred, staged_writes
    from cost_models.prices import load_prices

    check_out(out)
    frame = whatif_frame(whatif) if whatif else None
    runs = load_usable_runs(paths, warn)
    table = load_prices(prices)
    df = compare_runs(runs, model, table, warn=warn)
    created = _missing_folders(out)   # deepest first: what make_out creates, removed if nothing is written
    make_out(out)
    # legends name a run by tag and the end of its run id (the page's run table has the full id)
    # a tag's ESC or tab drew as a missing glyph (matplotlib warned): the legend gets it escaped
    labelled = [(charts.chart_text(f"{doc.get('tag') or '(no tag)'} #{str(doc.get('run_id'))[-4:]}"), doc)
                for _, doc in runs]

    def size(w, h):
        return (w * scale, h * scale)

    makers = {
        "cost_by_provider": lambda: charts.cost_by_provider(df, model, table, size=size(10, 6)),
        "matmul_shapes": lambda: charts.matmul_shapes(df, labelled, size=size(10, 6)),
        "busbw_by_size": lambda: charts.busbw_by_size(df, labelled, size=size(11, 7)),
        "days_vs_cost": lambda: charts.days_vs_cost(df, model, table, size=size(10, 6)),
        "step_breakdown": lambda: charts.step_breakdown(df, model, size=size(10, 5.5)),
    }
    if frame is not None:
        makers["whatif"] = lambda: charts.whatif_chart(frame, size=size(10, 5))
    # Every chart is rendered before anything is written, so an interrupt (the slow part is here)
    # leaves the folder as it was rather than half old, half new; matplotlib's warnings (a layout it
    # could not tighten) become one line each under this command's name, not two raw lines.
    rendered, seen = {}, set()
    for name, make in makers.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rendered[name] = _png(make(), dpi)
        for w in caught:
            line = f"chart {name}: {str(w.message).splitlines()[0]}"
            if line not in seen and warn is not None:
                seen.add(line)
                warn(line)
    pngs = [(CHARTS[name][0], png, CHARTS[name][1]) for name, png in rendered.items()]
    html = _page(df, runs, model, pngs)
    files = {f"{name}.png": png for name, png in rendered.items()} | {"index.html": html.encode()}
    known = _manifest(out)
    current = {n: _ours(out, n, known) for n in REPORT_FILES}   # report's own files there now: their digests
    stale = [n for n in REPORT_FILES if n not in files and current[n]]   # e.g. whatif.png of an earlier --whatif
    written = []
    # the manifest first names the old and the new bytes of every file, so that an interrupt
    # between writes leaves each file, old or new, recognised as report's own; then only the new
    manifest = {name: [d for d in (current[name], _digest(data)) if d] for name, data in files.items()}
    manifest |= {name: [current[name]] for name in stale}
    final = {name: [_digest(data)] for name, data in files.items()}
    items = [(MANIFEST, _manifest_bytes(manifest)), *files.items(), (MANIFEST, _manifest_bytes(final))]
    with signals_deferred():   # a Ctrl-C here lands after the last write: the folder is all old or all new
        try:   # every byte on disk before the first rename: a full disk leaves the old report whole
            staged = staged_writes(out, items)
        except OSError as e:
            for folder in created:   # a first report that could not be written leaves no folders either
                with contextlib.suppress(OSError):   # not empty: someone else's file went in meanwhile
                    os.rmdir(folder)
            raise OutputError(f"--out {out}: cannot write the report: {e.strerror or e}; the folder is as it "
                              "was") from None
        # the final manifest last, after the stale charts are gone: killed between the two, the
        # union manifest still names a stale chart as report's own, so the next run removes it
        renamed = 0
        try:
            for (name, _), tmp in zip(items[:-1], staged):
                put_staged(tmp, os.path.join(out, name))
                renamed += 1
                if name != MANIFEST:
                    written.append(os.path.join(out, name))
            for name in stale:
                with contextlib.suppress(FileNotFoundError):   # already gone: nothing to remove
                    os.remove(os.path.join(out, name))
            put_staged(staged[-1], os.path.join(out, MANIFEST))
        except OSError as e:   # a rename or removal refused midway: no temp file left, one line
            for tmp in staged[renamed:]:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
            raise OutputError(f"--out {out}: cannot finish the report: {e.strerror or e} ({e.filename or out})") \
                from None
        fsync_dir(out)
    return written


def _manifest_bytes(files: dict) -> bytes:
    return json.dumps({"generator": MARKER.decode(), "files": files}, indent=1, sort_keys=True).encode()


def _page(df, runs, model, pngs) -> str:
    from bench.cmd_compare import footer, table_rows

    rows, columns = table_rows(df)
    numeric = {k for k, _, _ in columns} - {"tag", "gpu", "pflop_dtype", "note"}
    cells = [_formatted(r, columns) for r in rows]
    notes = list(dict.fromkeys(c["note"] for c in cells if c.get("note") not in (None, "-")))
    for c in cells:   # a run's note, numbered under the table: in its column it was squeezed off the page
        c["note"] = f"[{notes.index(c['note']) + 1}]" if c.get("note") in notes else c.get("note")
    compare_html = (report_page.table_html(cells, [(k, h) for k, h, _ in columns], numeric)
                    + "".join(f"<p class=\"note\">[{n}] {report_page.escape(text)}</p>" for n, text in enumerate(notes, 1))
                    + "<p>" + "<br>".join(report_page.escape(x) for x in footer(df, model, "on-demand").splitlines())
                    + "</p>")
    run_rows = [{"tag": d.get("tag") or "(no tag)", "gpu": gpu_name(d), "ranks": d["machine"].get("world_size"),
                 "nodes": d["machine"].get("nodes") or 1, "host": d["machine"].get("hostname"),
                 "created": d.get("created_at"), "run_id": d.get("run_id"),
                 "complete": "yes" if d["summary"].get("complete", True) is not False else "no (interrupted)",
                 "file": p} for p, d in runs]
    runs_html = report_page.table_html(run_rows, [("tag", "tag"), ("gpu", "GPU"), ("nodes", "nodes"),
                                                  ("ranks", "ranks"), ("host", "host"), ("created", "created (UTC)"),
                                                  ("run_id", "run id"), ("complete", "complete"), ("file", "file")],
                                       {"nodes", "ranks"})
    tags = sorted({r["tag"] for r in run_rows})
    intro = (f"{len(runs)} result file(s), {len(df)} setup(s): {', '.join(tags)}. Cost to train {model}, "
             "on-demand list prices unless stated. Generated " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + ".")
    return report_page.page(
        f"costbench report: {model}", intro,
        [("Runs", runs_html), ("Side by side (costbench compare)", compare_html)], pngs,
        "Prices are list prices from costbench's catalog (cost_models/data/prices.csv, each row with its source and "
        "date), not re-verified. Measured figures are medians over iterations; see the README for the method.")


def _formatted(row, columns) -> dict:
    """Cells as the terminal table shows them (format_table's formats applied)."""
    from bench.table import cell

    return {k: cell(row.get(k), fmt) for k, _, fmt in columns}


def main(args) -> int:
    t0 = time.perf_counter()
    paths = build(args.paths, args.out, args.model, args.whatif, args.prices,
                  warn=lambda line: warn("report", line))
    print(f"wrote {len(paths)} files to {args.out} in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(os.path.basename(p) for p in paths))
    print(f"open {os.path.join(args.out, 'index.html')}")
    return 0
