"""Mixture of experts and expert parallelism in the step model: hand-computed small cases."""

import dataclasses
import json

import numpy as np
import pytest

from conftest import run_cli as run
from cost_models import flops, memory, parallelism, step_time
from cost_models.cost import plan_training
from cost_models.errors import InputError
from cost_models.hardware import find_gpu
from cost_models.models import custom_model, find_model
from cost_models.networks import find_network
from cost_models.rates import catalog_rates
from cost_models.throughput import Throughput

H100 = find_gpu("H100-SXM")


def tiny_moe(**kw):
    shape = dict(layers=2, hidden=64, heads=4, kv_heads=4, ffn=256, vocab=100, seq_len=16, experts=4, top_k=2)
    return custom_model(None, 1e9, **(shape | kw))


def one_layout(ep, tp=2, dp=4, micro_batch=2, global_batch=16):
    a = lambda x: np.array([x])  # noqa: E731
    return parallelism.Layouts(tp=a(tp), pp=a(1), dp=a(dp), micro_batch=a(micro_batch), global_batch=a(global_batch),
                               recompute=a(1), vpp=a(1), ep=a(ep))


def test_alltoall_bytes_and_time_by_hand():
    spec, lay = tiny_moe(), one_layout(ep=2)
    # each GPU holds 2*16/TP2 = 16 tokens; x top-2 x hidden 64 x 2 bytes = 4096 bytes sent per all-to-all
    assert step_time.alltoall_send_bytes(spec, lay)[0] == 16 * 2 * 64 * 2 == 4096
    rates = catalog_rates(H100, find_network("ib-ndr-400"))
    parts = step_time.step_parts(spec, lay, rates)
    # (EP-1)/EP = half of it leaves the GPU; EP x TP = 4 GPUs fit in a node: NVLink rate, one latency hop.
    one = 2048 / (rates.tp_gbps * 1e9) + 1 * rates.tp_latency_us * 1e-6
    # 4 all-to-alls per MoE layer (dispatch + combine, forward and backward) x 2 layers x 2 micro-batches
    assert parts["ep_comm"][0] == pytest.approx(2 * 2 * 4 * one, rel=1e-12)
    assert step_time.step_parts(spec, one_layout(ep=1), rates)["ep_comm"][0] == 0   # no peers, no all-to-all
    assert step_time.alltoall_send_bytes(find_model("llama3-70b"), lay)[0] == 0


def test_full_recompute_repeats_the_forward_all_to_alls_and_permutation():
    """Full recompute runs the MoE layer's forward again: its 2 all-to-alls (dispatch, combine) and
    its sort and unsort, beside the backward's: 6 all-to-alls instead of 4, 3 permutation passes of 2."""
    spec, rates = tiny_moe(), catalog_rates(H100, find_network("ib-ndr-400"))
    full = parallelism.RECOMPUTE.index("full")
    def parts(ep, recompute):
        return step_time.step_parts(spec, dataclasses.replace(one_layout(ep=ep), recompute=np.array([recompute])), rates)
    assert parts(2, full)["ep_comm"][0] == pytest.approx(6 / 4 * parts(2, 0)["ep_comm"][0])
    # the sort bytes alone: EP 2 (2 local experts, sorted) less EP 4 (1 each, no sort), both full
    sort = 2 * 16 * 8 * 2 * 64 * 2 * 2 * 2 / (rates.membw_gbps * 1e9)   # test_second_permutation_bytes_by_hand's
    assert parts(2, full)["memory_bound"][0] - parts(4, full)["memory_bound"][0] == pytest.approx(3 / 2 * sort, rel=1e-9)


def test_second_permutation_bytes_by_hand():
    """Megatron's sort_chunks_by_idxs: where a GPU holds more than one expert it reads and writes
    its t*k routed rows (after the TP all-gather: not / TP) to sort them by expert and again to
    undo it, forward and backward; with one expert per GPU (EP = E) it does not run."""
    spec, rates = tiny_moe(), catalog_rates(H100, find_network("ib-ndr-400"))
    shared = step_time.step_parts(spec, one_layout(ep=4), rates)["memory_bound"][0]   # 4 experts / EP 4 = 1
    sorted_ = step_time.step_parts(spec, one_layout(ep=2), rates)["memory_bound"][0]  # 2 local experts
    t = 2 * 16                                      # micro-batch 2 x seq 16, the whole micro-batch
    per_layer = t * 8 * 2 * 64                      # 8 k h bytes per token: sort + unsort, read + write, bf16
    micro_batches = 16 // 4 // 2                    # global 16 / DP 4 / micro-batch 2
    expected = per_layer * 2 * 2 * micro_batches    # forward + backward, 2 layers
    assert sorted_ - shared == pytest.approx(expected / (rates.membw_gbps * 1e9), rel=1e-9)


def test_expert_gemms_have_the_flops_of_top_k_mlps_and_thinner_shapes_are_slower():
    spec = tiny_moe(hidden=1024, heads=8, kv_heads=8, ffn=2048, seq_len=1024, experts=8, top_k=2)
    dense = dataclasses.replace(spec, experts=0, top_k=0, ffn=2 * 2048)     # two experts' width, one MLP
    rates = catalog_rates(H100, find_network("ib-ndr-400"))
    flat = dataclasses.replace(rates, gemm_shaped=False)                  # time = FLOPs / rate
    lay = one_layout(ep=1, tp=1, dp=8, micro_batch=1, global_batch=8)
    t = 1024
    router = 3 * 2 * t * 8 * 1024 / (flat.gemm_tflops * 1e12)              # t x h x E, forward + 2 backward
    moe_gemm = step_time.step_parts(spec, lay, flat)["gemm"][0]
    dense_gemm = step_time.step_parts(dense, dataclasses.replace(lay, ep=None), flat)["gemm"][0]
    assert moe_gemm == pytest.approx(dense_gemm + 2 * router, rel=1e-9)   # 2 layers, 1 micro-batch
    # EP spreads the experts, not the work: E/EP local experts of t*k*EP/E tokens each, t*k in all
    for ep in (2, 4, 8):
        spread = one_layout(ep=ep, tp=1, dp=8, micro_batch=1, global_batch=8)
        assert step_time.step_parts(spec, spread, flat)["gemm"][0] == pytest.approx(moe_gemm, rel=1e-9), ep
    # with the roofline, 8 experts of t*k/E = 256 tokens each are slower than EP 8's 1 expert of 2048
    thin = step_time.step_parts(spec, lay, rates)["gemm"][0]
    fat = step_time.step_parts(spec, one_layout(ep=8, tp=1, dp=8, micro_batch=1, global_batch=8), rates)["gemm"][0]
    assert thin > fat


def test_ep_1_on_a_dense_model_changes_nothing():
    base = plan_training("llama3-70b", "H100-SXM", gpus=1024)
    given = plan_training("llama3-70b", "H100-SXM", gpus=1024, ep=1)
    assert given.step == base.step and given.parallelism == base.parallelism
    assert base.parallelism["ep"] == 1 and base.step["parts"]["ep_comm"] == 0
    assert "ep_comm" not in base.assumptions["catalog_parts"] and "moe" not in base.assumptions


def test_larger_ep_never_increases_memory_and_shrinks_expert_dp_traffic():
    spec = find_model("mixtral-8x7b")
    lays = [one_layout(ep=e, tp=4, dp=32, micro_batch=1, global_batch=256) for e in (1, 2, 4, 8)]
    need = [memory.gpu_bytes(spec, dataclasses.replace(lay, recompute_layers=np.array([0])))[0] for lay in lays]
    assert all(a > b for a, b in zip(need, need[1:]))
    (_, e1), _ = memory.stage_param_split(spec, lays[0])
    (_, e8), _ = memory.stage_param_split(spec, lays[3])
    assert e1[0] == pytest.approx(8 * e8[0])                              # expert weights / EP
    # per-GPU stage parameters sum back to the model: (dense + expert x EP) x TP
    (d, e), _ = memory.stage_param_split(spec, lays[1])
    assert (d[0] + 2 * e[0]) * 4 == pytest.approx(spec.params)
    rates = catalog_rates(H100, find_network("ib-ndr-400"))
    totals = [step_time.step_parts(spec, lay, rates)["dp_comm_total"][0] for lay in lays]
    assert all(a > b for a, b in zip(totals, totals[1:]))


def test_ep_comm_grows_when_the_fabric_is_slower_or_the_measured_alltoall_is():
    kw = dict(gpus=1024, tp=8, pp=1, ep=2, micro_batch=1, global_batch=512, recompute="full")   # EP x TP = 16: fabric
    fast = plan_training("mixtral-8x7b", "H100-SXM", network="ib-ndr-400", **kw)
    slow = plan_training("mixtral-8x7b", "H100-SXM", network="ib-hdr-200", **kw)
    assert slow.step["parts"]["ep_comm"] > 1.5 * fast.step["parts"]["ep_comm"] > 0
    for plan in (fast, slow):
        assert sum(plan.step["parts"].values()) == pytest.approx(plan.step["seconds"], rel=1e-12)
    doc = {"schema_version": 1, "machine": {"gpu": {"normalized": "H100-SXM"}, "nodes": 2, "world_size": 16},
           "summary": {"collectives": {"alltoall": {"busbw_gbps_max": 10.0}}}}
    measured = plan_training("mixtral-8x7b", "H100-SXM", throughput=Throughput.from_result(doc, "a2a.json"), **kw)
    assert "ep_comm" in measured.assumptions["measured_parts"]
    assert measured.step["parts"]["ep_comm"] > fast.step["parts"]["ep_comm"]


def test_mixtral_catalog_row_matches_its_shape():
    spec = find_model("mixtral-8x7b")
    assert (spec.experts, spec.top_k, spec.expert_ffn) == (8, 2, 14336)
    dims = (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.ffn, spec.vocab)
    assert flops.params_from_shape(*dims, experts=8) == pytest.approx(spec.params, rel=1e-3)
    assert flops.params_from_shape(*dims, experts=8, top_k=2) == pytest.approx(spec.active_params, rel=1e-3)
    by_shape = custom_model(None, 1e12, layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=32000,
                            experts=8, top_k=2)
    assert by_shape.params == pytest.approx(46.70e9, rel=1e-3) and by_shape.active_params == pytest.approx(12.88e9, rel=1e-3)
    # --params beside the shape sets the total; the shape's top-k share of it is what a token uses
    # (never the total: that billed a top-2-of-8 model 3.6x its FLOPs, an MFU of 194%)
    counted = custom_model(47e9, 1e12, layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=32000,
                           experts=8, top_k=2)
    assert counted.params == 47e9
    assert counted.active_params == pytest.approx(47e9 * by_shape.active_params / by_shape.params, rel=1e-9)
    # a total with no shape cannot say how much a token uses
    with pytest.raises(InputError, match=r"--params 47B with --experts 8 --top-k 2 but no --layers/--hidden: "
                                         r"give --active-params"):
        custom_model(47e9, 1e12, experts=8, top_k=2)


def test_searched_moe_layout_divides_dp_and_experts():
    plan = plan_training("mixtral-8x7b", "H100-SXM", gpus=1024)
    p = plan.parallelism
    assert p["dp"] % p["ep"] == 0 and 8 % p["ep"] == 0 and p["tp"] * p["cp"] * p["pp"] * p["dp"] == 1024
    with pytest.raises(InputError, match="--ep 3: expert parallelism must divide the 8 experts"):
        plan_training("mixtral-8x7b", "H100-SXM", gpus=1024, ep=3)


def test_cli_moe_by_shape_and_ep(capsys):
    code, out, err = run(capsys, "cost", "--layers", "8", "--hidden", "1024", "--heads", "8", "--ffn", "2048",
                         "--experts", "8", "--top-k", "2", "--tokens", "100B", "--gpus", "64", "--ep", "4",
                         "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["parallelism"]["ep"] == 4 and doc["step"]["parts"]["ep_comm"] > 0
    assert doc["model"]["active_params"] < doc["model"]["params"]


@pytest.mark.parametrize("argv, needle", [
    (["--experts", "4", "--top-k", "8"], "--top-k 8 exceeds --experts 4"),
    (["--experts", "4"], "--experts and --top-k go together"),
    (["--experts", "0", "--top-k", "1"], "--experts: '0' must be positive"),
    (["--experts", "8", "--top-k", "2", "--ep", "3"], "--ep 3: expert parallelism must divide the 8 experts"),
    (["--ep", "0"], "--ep: '0' must be positive"),
    (["--ep", "2"], "is a dense model"),
])
def test_bad_moe_input_is_one_line_exit_2(capsys, argv, needle):
    shape = ["--layers", "4", "--hidden", "512", "--heads", "8", "--tokens", "1B", "--gpus", "16"]
    code, out, err = run(capsys, "cost", *shape, *argv)
    assert code == 2, (out, err)
    assert needle in err and err.count("\n") == 1, err
