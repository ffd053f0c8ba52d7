"""kernels.layer and `costbench run --ops layer`: shapes per TP degree and FLOPs by hand, the
float64 attention reference, a real quick CPU run, bad input, a wrong kernel failing its check."""

import json
import os

import pytest
import torch

from bench import results
from bench.runner import layer_shape
from cost_models.errors import InputError
from kernels import layer
from tests.test_run_cli import cli_main

# a small model that runs in well under a second per dtype on 2 cores
TINY = ["--hidden", "128", "--heads", "4", "--kv-heads", "2", "--ffn", "256", "--vocab", "500", "--seq", "64"]


def rank_of(model: str, tp: int) -> layer.RankShape:
    return layer.shard(layer_shape(model, {}, tp), tp)


def by_name(rank):
    return {(g.name, g.pass_): g for g in rank.gemms()}


def test_llama3_70b_tp8_gemm_shapes_by_hand():
    # Llama 3 70B: hidden 8192, 64 heads, 8 KV heads, head size 128, FFN 28672, vocab 128256, seq 8192
    rank = rank_of("llama3-70b", 8)
    assert (rank.heads, rank.kv_heads, rank.head_dim, rank.tokens, rank.sp_tokens) == (8, 1, 128, 8192, 1024)
    g = by_name(rank)
    m = 8192
    assert (g["qkv", "fwd"].n, g["qkv", "fwd"].k) == ((64 + 16) * 128 // 8, 8192) == (1280, 8192)
    assert (g["attn_out", "fwd"].n, g["attn_out", "fwd"].k) == (8192, 1024)
    assert (g["gate_up", "fwd"].n, g["gate_up", "fwd"].k) == (2 * 28672 // 8, 8192) == (7168, 8192)
    assert (g["down", "fwd"].n, g["down", "fwd"].k) == (8192, 3584)
    # Megatron pads 128256 up to a multiple of 128 x 8 = 1024: 126 x 1024 = 129024, 16128 per rank
    assert (g["lm_head", "fwd"].n, g["lm_head", "fwd"].per) == (16128, "model")
    for name in ("qkv", "attn_out", "gate_up", "down", "lm_head"):
        fwd, dgrad, wgrad = g[name, "fwd"], g[name, "dgrad"], g[name, "wgrad"]
        assert fwd.m == m and (fwd.layout, dgrad.layout, wgrad.layout) == ("TN", "NN", "NT")
        assert (dgrad.m, dgrad.n, dgrad.k) == (m, fwd.k, fwd.n)  # dX = dY W
        assert (wgrad.m, wgrad.n, wgrad.k) == (fwd.n, fwd.k, m)  # dW = dY^T X
        assert fwd.flops == dgrad.flops == wgrad.flops == 2 * fwd.m * fwd.n * fwd.k
    assert g["qkv", "fwd"].flops == 2 * 8192 * 1280 * 8192


def test_other_tp_degrees_by_hand():
    g = by_name(rank_of("llama3-8b", 1))  # fused QKV 4096 + 2*8*128 = 6144; vocab 128256 = 128 x 1002
    assert [(g[n, "fwd"].n, g[n, "fwd"].k) for n in layer.GEMMS] == [
        (6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (128256, 4096)]
    g = by_name(rank_of("llama3-8b", 2))
    assert [(g[n, "fwd"].n, g[n, "fwd"].k) for n in layer.GEMMS] == [
        (3072, 4096), (4096, 2048), (14336, 4096), (4096, 7168), (64128, 4096)]
    # 405B at TP 8: 128 / 8 = 16 query heads, 8 KV heads / 8 = 1 per rank
    rank = rank_of("llama3.1-405b", 8)
    assert (rank.heads, rank.kv_heads) == (16, 1)
    assert by_name(rank)["qkv", "fwd"].n == (16 + 2) * 128


@pytest.mark.parametrize("model, flags, tp, expect", [
    ("llama3-8b", {}, 3, "--tp 3: does not divide llama3-8b's 32 attention heads"),
    ("llama3-70b", {}, 128, "--tp 128: does not divide llama3-70b's 64 attention heads"),
    (None, {"hidden": 384, "heads": 24, "kv_heads": 3, "ffn": 512}, 2,
     "--tp 2: does not divide custom's 3 KV heads (Megatron splits the KV heads over TP"),
    ("llama3.1-405b", {}, 16, "--tp 16: does not divide llama3.1-405b's 8 KV heads"),
    (None, {"hidden": 256, "heads": 4, "ffn": 1000}, 16, "does not divide custom's 4 attention heads"),
    (None, {"hidden": 256, "heads": 4, "ffn": 1001}, 2, "--tp 2: does not divide custom's FFN width 1001"),
    (None, {"hidden": 256, "heads": 3, "ffn": 512}, 1, "--hidden 256 is not a multiple of --heads 3"),
    (None, {"hidden": 256}, 1, "--ops layer without --model needs --heads, --ffn"),
    ("lama3-8b", {}, 1, "unknown model 'lama3-8b'; did you mean llama3-8b"),
    (None, {"hidden": 256, "heads": 4, "ffn": 512, "experts": 8}, 1, "--experts and --top-k go together"),
    ("llama3-8b", {"top_k": 2}, 1, "--experts and --top-k go together"),
    (None, {"hidden": 256, "heads": 4, "ffn": 512, "experts": 2, "top_k": 4}, 1, "top_k 4 exceeds the 2 experts"),
    ("mixtral-8x7b", {"moe_ffn": 1000}, 16, "--tp 16: does not divide"),
    # divides gpt3-175b's 96 heads, but no priced layout runs TP beyond a node (cost --tp refuses it too)
    ("gpt3-175b", {}, 16, "--tp 16: tensor parallelism must stay within a node of 8 GPUs"),
])
def test_bad_shapes_are_input_errors(model, flags, tp, expect):
    with pytest.raises(InputError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        layer_shape(model, flags, tp)


def test_shape_flags_over_a_catalog_model_rename_it():
    assert layer_shape("llama3-8b", {"seq": 8192}, 1).name == "llama3-8b"  # same value: same model
    shape = layer_shape("llama3-8b", {"seq": 4096, "vocab": None}, 1)
    assert (shape.name, shape.seq, shape.hidden) == ("custom (llama3-8b with seq=4096)", 4096, 4096)
    moe = layer_shape("mixtral-8x7b", {"top_k": 1}, 1)   # a catalog MoE: one expert flag changes it
    assert (moe.name, moe.experts, moe.top_k, moe.mlp) == ("custom (mixtral-8x7b with top_k=1)", 8, 1, "swiglu")
    assert layer_shape("gpt3-175b", {}, 8).mlp == "gelu"


def test_gemm_operands_have_the_strides_autograd_gives_them():
    fwd, dgrad, wgrad = (layer.gemm_problem(layer.Gemm("qkv", p, 8, 6, 4), "fp32", "cpu") for p in layer.PASSES)
    assert fwd.a.is_contiguous() and fwd.b.t().is_contiguous()  # X @ W.t(): TN
    assert dgrad.a.is_contiguous() and dgrad.b.is_contiguous()  # dY @ W: NN
    assert wgrad.a.t().is_contiguous() and wgrad.b.is_contiguous()  # dY.t() @ X: NT
    for p in (fwd, dgrad, wgrad):
        assert p.a.shape == (8, 4) and p.b.shape == (4, 6) and p.out.shape == (8, 6)
        p.run()
        assert p.max_rel_err() < 1e-6


def test_bad_tp_on_the_command_line_is_one_line_exit_2(capsys, tmp_path):
    for tp in ("5", "0", "x"):
        assert cli_main(["run", "--device", "cpu", "--ops", "layer", "--model", "llama3-8b", "--tp", tp,
                         "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "--tp" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flags, what", [
    (["--hidden", "1e7", "--heads", "2", "--kv-heads", "2"], "for attention (1 head of 5,000,000"),  # was the OOM killer
    (["--vocab", "1e9"], "for the lm_head"),                                          # was exit 70, a failed allocation
])
def test_a_layer_too_big_for_the_device_is_refused_before_anything_runs(capsys, tmp_path, flags, what):
    assert cli_main(["run", "--device", "cpu", "--quick", "--ops", "layer", "--model", "llama3-8b", *flags,
                     "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and what in err and "GiB free" in err
    assert os.listdir(tmp_path) == []


def test_peak_bytes_by_hand():
    # TP 1, one sequence of 16 tokens, hidden 64 = 4 heads of 16, ffn 128 SwiGLU, vocab 128 x 4 = 512:
    # the largest op is the LM head's: 16 x 64 + 64 x 512 + 16 x 512 fp32 elements, x 3
    rank = layer.shard(layer.LayerShape("t", hidden=64, heads=4, kv_heads=4, ffn=128, seq=16, vocab=512), 1)
    need, what = layer.peak_bytes(rank, "cuda")
    assert need == 3 * 4 * (16 * 64 + 64 * 512 + 16 * 512) and "lm_head" in what
    layer.check_fits(rank, "cuda", free=need)              # exactly fits
    with pytest.raises(InputError, match=r"needs about 0\.0 GiB for the lm_head .* more than the 0\.0 GiB free"):
        layer.check_fits(rank, "cuda", free=need - 1)
    # on a CPU the math attention kernel holds the b x h x s x s scores too
    assert layer.peak_bytes(rank, "cpu")[0] >= layer.peak_bytes(rank, "cuda")[0]


@pytest.mark.parametrize("argv, needle", [
    (["--model", "llama3-8b"], "add layer to --ops"),
    (["--ops", "matmul", "--tp", "4"], "--model, --tp and the shape flags describe the layer op"),   # was ignored
    (["--ops", "layer"], "--ops layer without --model"),    # a run that would measure nothing
])
def test_layer_flags_without_the_layer_op_or_the_op_alone_without_a_model(capsys, tmp_path, argv, needle):
    assert cli_main(["run", "--device", "cpu", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and os.listdir(tmp_path) == []


def test_flops_and_bytes_by_hand():
    # model FLOPs: QK^T and PV at 2*s^2*d per head each, half of them masked; backward 4 GEMMs = 2x
    assert layer.attention_flops(1, 8, 8192, 128, "fwd") == 2 * 8192**2 * 8 * 128 == 137438953472
    assert layer.attention_flops(2, 4, 256, 64, "bwd") == 2 * (2 * 2 * 256**2 * 4 * 64)  # b=2, h=4, d=64
    rank = layer.RankShape("t", tp=2, batch=1, seq=8, hidden=16, heads=2, kv_heads=1, head_dim=8, ffn=12,
                           vocab=None)
    ops = {op.name: op for op in layer.elementwise_ops(rank, "bf16", "cpu")}  # 2 bytes an element
    sp = 4  # 8 tokens over TP 2
    assert (ops["rmsnorm"].fwd_bytes, ops["rmsnorm"].bwd_bytes) == ((2 * sp * 16 + 16) * 2, (3 * sp * 16 + 32) * 2)
    assert (ops["swiglu"].fwd_bytes, ops["swiglu"].bwd_bytes) == (3 * 8 * 12 * 2, 5 * 8 * 12 * 2)
    assert ops["residual"].fwd_bytes == 3 * sp * 16 * 2 and ops["residual"].count == ops["rmsnorm"].count == 2
    # q (8 tokens x 2 heads x 8) and k (8 x 1 x 8) read and written, cos and sin (8 x 8) read
    assert ops["rotary"].fwd_bytes == (2 * 8 * 3 * 8 + 2 * 8 * 8) * 2


def test_quick_shrink_keeps_the_form_and_says_so():
    shape = layer_shape("llama3-70b", {}, 8)
    rank = layer.plan_shape(shape, 8, "cpu", True)
    assert (rank.tokens, rank.hidden, rank.width_divisor, rank.head_dim) == (256, 512, 16, 128)
    assert (rank.heads, rank.kv_heads, rank.ffn, rank.vocab) == (1, 1, 224, 1008)
    assert "256 tokens instead of 8192, widths / 16" in layer.describe_shrink(shape, rank)
    short = layer_shape("llama3-8b", {"seq": 2}, 1)    # only the widths shrink: no "2 tokens instead of 2"
    assert layer.describe_shrink(short, layer.plan_shape(short, 1, "cpu", True)).startswith("widths / 8 (hidden 512")
    assert layer.plan_shape(shape, 8, "cuda", True) == layer.shard(shape, 8)  # GPUs run the real shapes


def test_attention_skip_reasons_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert layer.attention_skip_reason("bf16", "cuda", 128) is None
    assert "bf16/fp16 only" in layer.attention_skip_reason("fp32", "cuda", 128)
    assert "multiple of 8, at most 256; got 100" in layer.attention_skip_reason("bf16", "cuda", 100)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))
    assert "compute capability >= 8.0" in layer.attention_skip_reason("fp16", "cuda", 128)
    assert layer.attention_skip_reason("fp32", "cpu", 100) is None  # torch picks a CPU kernel


def test_attention_skip_reasons_follow_flash_attentions_own_gates(monkeypatch):
    """sdp_utils.cpp: flash runs on sm 8.0-12.1 only, and not for training with a head size in
    (192, 224] on sm 8.6-8.9 and 12.x; the forced backend would raise "No available kernel"."""
    for cc, head_dim, skipped in [((9, 0), 208, False), ((8, 0), 224, False), ((8, 9), 208, True),
                                  ((8, 6), 224, True), ((12, 0), 200, True), ((8, 9), 256, False),
                                  ((8, 9), 192, False), ((12, 1), 128, False), ((13, 0), 128, True)]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, cc=cc: cc)
        reason = layer.attention_skip_reason("bf16", "cuda", head_dim)
        assert (reason is not None) == skipped, (cc, head_dim, reason)
    assert "<= 12.1; this GPU has 13.0" in reason


def test_attention_reference_matches_torch_math_in_float64():
    g = torch.Generator().manual_seed(0)
    q, dout = torch.randn(3, 70, 16, generator=g, dtype=torch.float64), torch.randn(3, 70, 16, generator=g, dtype=torch.float64)
    k, v = torch.randn(70, 16, generator=g, dtype=torch.float64), torch.randn(70, 16, generator=g, dtype=torch.float64)
    ins = [t.clone().requires_grad_() for t in (q, k, v)]
    out = torch.nn.functional.scaled_dot_product_attention(ins[0], ins[1].expand(3, 70, 16),
                                                           ins[2].expand(3, 70, 16), is_causal=True)
    grads = torch.autograd.grad(out, ins, dout)
    ref = layer.attention_reference(q, k, v, dout, chunk=32)  # chunks that do not divide 70
    for a, b in zip((out, *grads), ref):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def run_tiny(tmp_path, *extra) -> tuple[int, dict | None]:
    code = cli_main(["run", "--device", "cpu", "--quick", "--ops", "layer", *TINY, *extra, "--out", str(tmp_path)])
    files = os.listdir(tmp_path)
    return code, results.load(str(tmp_path / files[0])) if files else None


def test_quick_cpu_layer_run_writes_every_record_kind_and_a_consistent_summary(tmp_path, capsys):
    code, doc = run_tiny(tmp_path)
    assert code == 0, capsys.readouterr().err
    recs = doc["records"]
    assert all(r["correct"] and r["model"] == "custom" and r["tp"] == 1 and r["tokens"] == 64 for r in recs)
    for dtype in ("fp32", "bf16"):
        mine = [r for r in recs if r["dtype"] == dtype]
        assert len(mine) == layer.count(layer.plan_shape(layer_shape(None, dict(
            hidden=128, heads=4, kv_heads=2, ffn=256, vocab=500, seq=64), 1), 1, "cpu", True), dtype, "cpu")
        assert {(r["name"], r["pass"]) for r in mine if r["op"] == "gemm"} == {
            (n, p) for n in layer.GEMMS for p in layer.PASSES}
        assert {r["pass"] for r in mine if r["op"] == "attention"} == {"fwd", "bwd"}
        assert {(r["name"], r["pass"]) for r in mine if r["op"] == "elementwise"} == {
            (n, p) for n in layer.ELEMENTWISE for p in ("fwd", "bwd")}
    s = doc["summary"]["layer"]
    assert (s["model"], s["tp"], s["tokens"], s["dtype"], s["failed_checks"]) == ("custom", 1, 64, "bf16", 0)
    assert set(s["by_dtype"]) == {"fp32", "bf16"}
    bf16 = [r for r in recs if r["dtype"] == "bf16"]

    def of(op):
        return [r for r in bf16 if r["op"] == op]

    def total_ms(rs):
        return sum(r["count"] * r["time_ms"]["median"] for r in rs)

    gemm = of("gemm")
    assert s["gemm_tflops"] == pytest.approx(sum(r["flops"] for r in gemm) / total_ms(gemm) / 1e9)
    assert s["attention_tflops"] == pytest.approx(sum(r["flops"] for r in of("attention")) / total_ms(of("attention")) / 1e9)
    ew = of("elementwise")
    assert s["elementwise_gbps"] == pytest.approx(sum(r["count"] * r["bytes"] for r in ew) / total_ms(ew) / 1e6)
    assert s["layer_ms"]["gemm"] == pytest.approx(total_ms([r for r in gemm if r["name"] != "lm_head"]))
    assert s["lm_head_ms"] == pytest.approx(total_ms([r for r in gemm if r["name"] == "lm_head"]))
    assert s["layer_ms"]["attention"] == pytest.approx(total_ms(of("attention")))
    assert s["layer_ms"]["elementwise"] == pytest.approx(total_ms(ew))
    out = capsys.readouterr().out
    assert "layer custom TP1 bf16 (64 tokens): GEMMs" in out and "one layer fwd+bwd" in out


def test_no_model_skips_the_layer_with_a_note(tmp_path, capsys):
    """Beside other ops the layer op is skipped with a note (alone it would measure nothing: refused,
    test_layer_flags_without_the_layer_op_or_the_op_alone_without_a_model)."""
    assert cli_main(["run", "--device", "cpu", "--quick", "--ops", "membw,layer", "--out", str(tmp_path)]) == 0
    (name,) = os.listdir(tmp_path)
    doc = results.load(str(tmp_path / name))
    assert {r["op"] for r in doc["records"]} == {"membw"} and "layer" not in doc["summary"]
    assert any(n.startswith("layer: skipped, no --model") for n in doc["config"]["notes"])


def test_a_wrong_gemm_fails_its_check_and_the_run(tmp_path, capsys, monkeypatch):
    from kernels import matmul

    # 5% off everywhere: far beyond bf16's 1e-2 (a real fault, e.g. a lost scale, looks like this)
    monkeypatch.setattr(matmul, "_mm", lambda a, b, out: torch.mm(a, b, out=out).mul_(1.05))
    code, doc = run_tiny(tmp_path, "--dtypes", "bf16")
    assert code == 1
    bad = [r for r in doc["records"] if not r["correct"]]
    assert {r["op"] for r in bad} == {"gemm"} and len(bad) == 15 and all(r["max_rel_err"] > 0.04 for r in bad)
    assert doc["summary"]["failed_checks"] == 15 == doc["summary"]["layer"]["failed_checks"]
    assert doc["summary"]["layer"]["gemm_tflops"] is None  # no correct GEMM to quote
    assert "CHECK FAILED: layer bf16 gemm qkv fwd: max_rel_err" in capsys.readouterr().err


SMALL = layer.RankShape("t", tp=1, batch=1, seq=48, hidden=64, heads=4, kv_heads=2, head_dim=16, ffn=96, vocab=None)
FAST = layer.Plan(None, None, budget_ms=1.0, warmup_ms=0.0, min_iters=1)


def test_attention_without_its_causal_mask_fails_its_check(monkeypatch):
    assert all(r["correct"] for r in layer.measure_attention(SMALL, "fp32", "cpu", FAST))
    monkeypatch.setattr(layer, "sdpa", lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
        q, k, v, enable_gqa=True))
    recs = list(layer.measure_attention(SMALL, "fp32", "cpu", FAST))
    assert [r["correct"] for r in recs] == [False, False] and min(r["max_rel_err"] for r in recs) > 0.1


def test_a_wrong_elementwise_formula_fails_its_check(monkeypatch):
    # the references are written apart from the timed functions: swapping SwiGLU's halves shows
    monkeypatch.setattr(layer, "swiglu", lambda gu: torch.nn.functional.silu(gu.chunk(2, -1)[1]) * gu.chunk(2, -1)[0])
    recs = {(r["name"], r["pass"]): r for r in layer.measure_elementwise(SMALL, "bf16", "cpu", FAST)}
    assert not recs["swiglu", "fwd"]["correct"] and not recs["swiglu", "bwd"]["correct"]
    assert all(r["correct"] for key, r in recs.items() if key[0] != "swiglu")


def test_rotary_matches_its_complex_reference_and_inverts():
    cos, sin = layer.rope_tables(seq=5, batch=2, head_dim=8, device="cpu")
    x = torch.randn(10, 3, 8, dtype=torch.float64)
    y = layer.rotary(x, cos, sin)
    assert torch.allclose(y, layer.rotary_ref(x, cos, sin))
    assert torch.allclose(layer.rotary(y, cos, -sin), x)  # the backward is the inverse rotation
    assert torch.allclose(y[:5], layer.rotary(x[:5], cos[:5], sin[:5])) and torch.allclose(cos[:5], cos[5:])


def test_summary_layer_by_hand():
    def rec(op, dtype, ms, count=1, **kw):
        return {"op": op, "dtype": dtype, "time_ms": {"median": ms}, "count": count, "correct": True,
                "model": "m", "tp": 2, "tokens": 64, **kw}

    recs = [rec("gemm", "bf16", 2.0, flops=4e9, per="layer"), rec("gemm", "bf16", 1.0, flops=2e9, per="model"),
            rec("attention", "bf16", 0.5, flops=1e9), rec("elementwise", "bf16", 0.25, count=2, bytes=1e6),
            rec("elementwise", "bf16", 1.0, bytes=3e6), rec("gemm", "fp32", 9.0, flops=1e9, per="layer"),
            {**rec("attention", "bf16", 0.1, flops=1e12), "correct": False}]
    s = results.summarize_layer(recs)
    assert s["dtype"] == "bf16" and s["gemm_tflops"] == pytest.approx(6e9 / 3e-3 / 1e12)
    assert s["attention_tflops"] == pytest.approx(1e9 / 0.5e-3 / 1e12)  # the failed record left out
    assert s["elementwise_gbps"] == pytest.approx(5e6 / 1.5e-3 / 1e9)  # 2 x 1 MB in 2 x 0.25 ms, 3 MB in 1 ms
    assert s["layer_ms"] == {"gemm": 2.0, "attention": 0.5, "elementwise": 1.5} and s["lm_head_ms"] == 1.0
    assert s["failed_checks"] == 1 and s["by_dtype"]["fp32"]["attention_tflops"] is None
    assert results.summarize_layer([rec("matmul", "bf16", 1.0)]) is None


def test_validate_knows_the_layer_records(tmp_path):
    rec = {"op": "gemm", "dtype": "bf16", "time_ms": {"min": 1, "median": 1, "mean": 1, "p10": 1, "p90": 1,
                                                       "stdev": 0, "n": 1},
           "model": "m", "tp": 1, "tokens": 8, "name": "qkv", "pass": "fwd", "m": 8, "n": 8, "k": 8,
           "layout": "TN", "flops": 1024, "per": "layer", "tflops": 1.0, "correct": True, "max_rel_err": 0.0}
    doc = {"schema_version": 1, "run_id": "r", "created_at": "t", "costbench_version": "0", "tag": None,
           "machine": {"device": "cpu", "gpu": None, "world_size": 1}, "config": {}, "records": [rec],
           "summary": {}}
    results.validate(doc)
    del rec["flops"]
    with pytest.raises(InputError, match=r"records\[0\].flops: missing"):
        results.validate(json.loads(json.dumps(doc)))


@pytest.mark.gpu
def test_llama3_8b_layer_on_a_gpu_runs_flash_attention_and_passes_its_checks():
    rank = layer.plan_shape(layer_shape("llama3-8b", {}, 1), 1, "cuda", True)
    recs = list(layer.measure(rank, "bf16", "cuda", quick=True))
    assert all(r["correct"] for r in recs), [r for r in recs if not r["correct"]]
    assert {r["kernel"] for r in recs if r["op"] == "attention"} == {"ScaledDotProductFlashAttention"}


@pytest.mark.gpu
def test_gpu_layer_run_for_llama3_70b_at_tp8(tmp_path):
    assert cli_main(["run", "--device", "cuda", "--quick", "--ops", "layer", "--model", "llama3-70b", "--tp", "8",
                     "--out", str(tmp_path)]) == 0
    (name,) = os.listdir(tmp_path)
    s = results.load(str(tmp_path / name))["summary"]["layer"]
    assert (s["model"], s["tp"], s["dtype"], s["tokens"], s["width_divisor"]) == ("llama3-70b", 8, "bf16", 8192, 1)
    assert s["gemm_tflops"] > 0 and s["attention_tflops"] > 0 and s["elementwise_gbps"] > 0


def test_a_gelu_model_runs_one_up_gemm_and_gelu():
    """GPT-3's plain MLP: up (ffn / TP) and down, no gate; its activation is GeLU."""
    rank = rank_of("gpt3-175b", 8)
    g = by_name(rank)
    assert ("gate_up", "fwd") not in g
    assert (g["up", "fwd"].n, g["up", "fwd"].k) == (49152 // 8, 12288)
    assert (g["down", "fwd"].n, g["down", "fwd"].k) == (12288, 49152 // 8)
    assert layer.elementwise_names(rank) == ["rmsnorm", "gelu", "residual", "rotary"]


def test_a_mixture_of_experts_runs_the_router_and_every_expert_at_its_tokens():
    """Mixtral 8x7B at TP 2: 32,768 tokens, top-2 of 8 experts, balanced: 8,192 tokens per expert,
    each expert 14,336 / 2 wide on this rank; the router on the 16,384-token sequence-parallel slice."""
    rank = rank_of("mixtral-8x7b", 2)
    g = by_name(rank)
    assert ("gate_up", "fwd") not in g and ("down", "fwd") not in g
    assert rank.expert_tokens == 32768 * 2 // 8 == 8192
    up, down, router = g["expert_gate_up", "fwd"], g["expert_down", "fwd"], g["router", "fwd"]
    assert (up.m, up.n, up.k, up.count) == (8192, 2 * 7168, 4096, 8)
    assert (down.m, down.n, down.k, down.count) == (8192, 4096, 7168, 8)
    assert (router.m, router.n, router.k, router.count) == (16384, 8, 4096, 1)
    # balanced routing: the experts' FLOPs are top_k dense MLPs' of the expert width
    dense_mlp = 2 * 32768 * 3 * 4096 * 7168
    assert sum(x.count * x.flops for x in (up, down)) == 2 * dense_mlp
    assert layer.elementwise_names(rank) == ["rmsnorm", "swiglu", "residual", "rotary", "permute", "sort_chunks"]
    # after the TP all-gather: [TP rank][expert] chunks sorted by expert
    assert layer.chunk_order(8, 2, 2).tolist() == [0, 1, 4, 5, 2, 3, 6, 7]


def test_a_tp_that_does_not_split_the_experts_is_refused():
    shape = layer.LayerShape("moe", hidden=512, heads=8, kv_heads=8, ffn=1024, seq=64, experts=4, top_k=2,
                             moe_ffn=300)
    with pytest.raises(InputError, match="--tp 8: does not divide moe's expert width 300"):
        layer.shard(shape, 8)
    with pytest.raises(InputError, match="moe_ffn needs experts"):
        layer.LayerShape("dense", hidden=512, heads=8, kv_heads=8, ffn=1024, seq=64, moe_ffn=300)
    with pytest.raises(InputError, match="mlp must be one of swiglu, gelu"):
        layer.LayerShape("x", hidden=512, heads=8, kv_heads=8, ffn=1024, seq=64, mlp="relu")


def test_a_tiny_moe_and_gelu_layer_run_and_pass_their_checks():
    """Every record of a small MoE (GeLU experts) layer correct on CPU, counts as the layer runs them,
    and the record stream carries the model's shape for the cost model to match."""
    shape = layer.LayerShape("moe", hidden=128, heads=4, kv_heads=2, ffn=256, seq=64, vocab=500, mlp="gelu",
                             experts=4, top_k=2, moe_ffn=96)
    rank = layer.shard(shape, 2)
    recs = list(layer.measure(rank, "fp32", "cpu", quick=True))
    assert len(recs) == layer.count(rank, "fp32", "cpu") and all(r["correct"] for r in recs)
    counts = {(r.get("name"), r["pass"]): r["count"] for r in recs if r["op"] in ("gemm", "elementwise")}
    assert counts["expert_up", "fwd"] == counts["expert_down", "wgrad"] == 4 and counts["router", "fwd"] == 1
    assert counts["permute", "fwd"] == counts["permute", "bwd"] == 2 and counts["gelu", "fwd"] == 1
    assert counts["sort_chunks", "fwd"] == 2
    assert {tuple(sorted(r["shape"].items())) for r in recs} == {tuple(sorted(shape.key().items()))}
    summary = results.summarize_layer(recs)
    assert summary["shape"] == shape.key()


@pytest.mark.parametrize("wrong_row", ["copy", "swap"])
def test_a_wrong_permutation_fails_its_check(monkeypatch, wrong_row):
    """The gathers' checks are real ones, over every row: a kernel that routes one copy to the
    wrong token fails, and so does one that swaps two output rows (a sampled check could miss it)."""
    def wrong(x, index):
        out = x.index_select(0, index)
        if wrong_row == "copy":
            return torch.cat((out[1:2], out[1:]), dim=0)   # row 0 holds row 1's token
        order = torch.arange(out.shape[0])
        order[5], order[6] = 6, 5
        return out[order]

    monkeypatch.setattr(layer, "permute", wrong)
    shape = layer.LayerShape("moe", hidden=128, heads=4, kv_heads=4, ffn=128, seq=32, experts=2, top_k=1)
    rank = layer.shard(shape, 1)
    recs = [r for r in layer.measure_elementwise(rank, "fp32", "cpu", layer.PLANS["cpu", True])
            if r["name"] in layer.GATHERS]
    assert [r["name"] for r in recs] == ["permute", "permute", "sort_chunks", "sort_chunks"]
    assert recs[0]["correct"] is False and recs[2]["correct"] is False   # forward, every row checked


def test_a_shrunk_layer_run_says_so_once_in_the_plural_it_means(capsys, tmp_path):
    """The shrink note printed as it happened and again in the summary (twice on one screen), and
    read '1 heads, 1 KV heads' at TP 8 of Llama 3 70B widths / 16."""
    assert cli_main(["run", "--device", "cpu", "--quick", "--ops", "layer", "--model", "llama3-70b", "--tp", "8",
                     "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert both.count("note: layer: ") == 1 and "note: layer: " in captured.out   # in the summary
    doc = json.load(open(os.path.join(tmp_path, os.listdir(tmp_path)[0])))
    note = next(n for n in doc["config"]["notes"] if n.startswith("layer: "))
    assert "(hidden 512, 1 head, 1 KV head, ffn 224 per rank)" in note
