"""Context parallelism (CP): Llama 3's all-gather-based attention over 2 x CP sequence chunks.
Each part by hand on a tiny model, the memory it shards, the search's CP choice, the CLI and its
bad inputs."""

import json

import numpy as np
import pytest

from cost_models import memory, parallelism, step_time
from cost_models.cost import plan_training
from cost_models.errors import InputError, NoLayoutError
from cost_models.models import custom_model, find_model, reshaped
from tests.conftest import run_cli
from tests.test_step_model import _layout, _rates

# 2 layers, h = 1024, 8 heads of 128, 8 KV heads, sequence 4096: one micro-batch of one sequence
SPEC = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, ffn=4096, vocab=1000, seq_len=4096)
KV_BYTES = 4096 * 2 * 8 * 128 * 2          # K and V of the whole sequence, bf16, TP 1: 16 MiB


def _parts(gpus, recompute="none", tp=1, rates=None, **kw):
    lay = _layout(SPEC, gpus, tp=tp, pp=1, micro_batch=1, global_batch=1, recompute=recompute, vpp=1, **kw)
    return lay, step_time.step_parts(SPEC, lay, _rates(**(rates or {})))


def test_context_degrees_keep_at_least_8k_tokens_per_rank():
    assert parallelism.context_degrees(8192).tolist() == [1]
    assert parallelism.context_degrees(4096).tolist() == [1]
    assert parallelism.context_degrees(16384).tolist() == [1, 2]
    assert parallelism.context_degrees(24576).tolist() == [1, 2]     # 3 x 8K: CP 4 would leave 6K
    assert parallelism.context_degrees(131072).tolist() == [1, 2, 4, 8, 16]


def test_cp_all_gathers_kv_three_times_per_layer_by_hand():
    # 4 ranks inside a node at 100 GB/s: each all-gather moves 3/4 of the 16 MiB buffer
    lay, parts = _parts(4, cp=4)
    assert lay.gpus_used[0] == 4 and lay.cp[0] == 4 and lay.dp[0] == 1
    assert memory.gathered_kv_bytes(SPEC, lay)[0] == KV_BYTES
    one = 3 / 4 * KV_BYTES / 100e9
    assert parts["cp_comm"][0] == pytest.approx(2 * 3 * one)            # forward, backward re-gather, grad RS
    _, full = _parts(4, "full", cp=4)
    assert full["cp_comm"][0] == pytest.approx(2 * 4 * one)             # the recomputed forward gathers again
    _, none = _parts(1, cp=1)
    assert none["cp_comm"][0] == 0


def test_cp_beyond_a_node_uses_the_fabric():
    # TP 2 x CP 8 = 16 GPUs: the K/V all-gathers leave the node (10 GB/s + 3 us a hop); at TP 2
    # each GPU gathers its 4 KV heads only
    lay, parts = _parts(16, tp=2, cp=8, rates={"fabric_latency_us": 3.0})
    one = 7 / 8 * (KV_BYTES / 2) / 10e9 + 7 * 3e-6
    assert parts["cp_comm"][0] == pytest.approx(2 * 3 * one)


def test_cp_divides_every_per_token_part_and_the_causal_attention():
    _, one = _parts(1, cp=1)
    _, four = _parts(4, cp=4)
    # attention: t/CP queries against the whole sequence: 2 * (4096/4) * 4096 * 1024 FLOPs forward, 3x, 2 layers
    assert four["attention"][0] == pytest.approx(2 * 3 * 2 * 1024 * 4096 * 1024 / 50e12)
    assert four["attention"][0] == pytest.approx(one["attention"][0] / 4)
    assert four["memory_bound"][0] == pytest.approx(one["memory_bound"][0] / 4)
    assert four["gemm"][0] < one["gemm"][0] / 3           # thinner GEMMs: a bit further from the peak
    assert sum(four[p] for p in step_time.PARTS) == pytest.approx(four["seconds"][0])


def test_cp_ranks_share_the_gradients_and_the_optimizer_not_the_weights():
    lay1 = _layout(SPEC, 4, tp=1, pp=1, micro_batch=1, global_batch=4, recompute="none", vpp=1, cp=1)
    lay4 = _layout(SPEC, 4, tp=1, pp=1, micro_batch=1, global_batch=1, recompute="none", vpp=1, cp=4)
    (dense, experts), _ = memory.stage_param_split(SPEC, lay1)
    # DP 4 x CP 1 and DP 1 x CP 4 shard the 12 optimizer bytes over the same 4 ranks; 6 B replicated
    states = memory.model_state_bytes(dense, experts, lay1)
    assert memory.model_state_bytes(dense, experts, lay4) == pytest.approx(states)
    assert states[0] == pytest.approx(dense[0] * (6 + 12 / 4))
    p1 = step_time.step_parts(SPEC, lay1, _rates())
    p4 = step_time.step_parts(SPEC, lay4, _rates())
    assert p4["optimizer"][0] == pytest.approx(p1["optimizer"][0])
    # a quarter of the activations (1,024 of the 4,096 tokens), plus the gathered K and V and,
    # in the backward, their gradient
    acts1 = memory.gpu_bytes(SPEC, lay1) - states
    acts4 = memory.gpu_bytes(SPEC, lay4) - states
    assert acts4[0] == pytest.approx(acts1[0] / 4 + 2 * KV_BYTES)


def test_the_search_picks_cp16_for_the_131k_stage_and_cp1_at_8k():
    spec = reshaped(find_model("llama3.1-405b"), {"seq_len": 131072}, {"seq_len": "seq"})
    plan = plan_training(spec, "H100-SXM", gpus=16384, global_batch=128)
    lay = plan.parallelism
    assert (lay["tp"], lay["cp"], lay["pp"], lay["dp"]) == (8, 16, 16, 8)      # Llama 3 Table 4's layout
    assert lay["gpus_used"] == 8 * 16 * 16 * 8
    assert plan.step["parts"]["cp_comm"] > 0 and "cp_comm" in plan.assumptions["rates"]
    assert plan.step["parts"]["cp_comm"] < plan.step["parts"]["attention"] / 3   # small beside it, as in the paper
    at_8k = plan_training("llama3.1-405b", "H100-SXM", gpus=16384)
    assert at_8k.parallelism["cp"] == 1 and at_8k.step["parts"]["cp_comm"] == 0
    assert "cp_comm" not in at_8k.assumptions["rates"]


def test_searching_cp_is_never_slower_than_cp_1():
    # Mixtral's 32K sequence lets the search try CP 2 and 4: what it picks beats forcing CP 1 or ties it
    searched = plan_training("mixtral-8x7b", "H100-SXM", gpus=1024)
    forced = plan_training("mixtral-8x7b", "H100-SXM", gpus=1024, cp=1)
    assert searched.wall_clock_days <= forced.wall_clock_days * (1 + 1e-12)


@pytest.mark.parametrize("cp, message", [
    (3, "--cp 3: context parallelism cuts each sequence into 2 x CP = 6 equal chunks"),
    (0, "--cp 0: context parallelism must be a positive whole number"),
    (2.0, "must be a positive whole number"),
])
def test_bad_cp_is_refused(cp, message):
    with pytest.raises(InputError, match=message.replace("+", r"\+")):
        plan_training("llama3-8b", "H100-SXM", cp=cp)


def test_cp_beyond_the_cluster_is_refused():
    with pytest.raises(NoLayoutError, match="--tp 8 x --cp 2 needs 16 GPUs, more than --gpus 8"):
        plan_training("llama3-8b", "H100-SXM", gpus=8, tp=8, cp=2)


def _cli(capsys, *args):
    return run_cli(capsys, "cost", *args)


def test_cli_cp_reports_the_layout_and_its_part(capsys):
    code, out, err = _cli(capsys, "--model", "llama3-8b", "--seq", "32768", "--gpus", "64", "--tp", "4", "--cp", "2",
                          "--format", "json")
    doc = json.loads(out)
    assert code == 0, err
    p = doc["parallelism"]
    assert p["cp"] == 2 and p["tp"] * p["cp"] * p["pp"] * p["dp"] == 64
    assert doc["step"]["parts"]["cp_comm"] > 0
    assert sum(doc["step"]["parts"].values()) == pytest.approx(doc["step"]["seconds"])
    code, table, _ = _cli(capsys, "--model", "llama3-8b", "--seq", "32768", "--gpus", "64", "--tp", "4", "--cp", "2")
    assert code == 0 and "TP 4 (+SP) x CP 2 x PP" in table and "cp_comm" in table


@pytest.mark.parametrize("args, message", [
    (("--cp", "0"), "argument --cp: '0' must be positive"),
    (("--cp", "3"), "--cp 3: context parallelism cuts each sequence into 2 x CP = 6 equal chunks"),
    (("--cp", "2", "--gpus", "8", "--tp", "8"), "--tp 8 x --cp 2 needs 16 GPUs, more than --gpus 8"),
])
def test_cli_bad_cp_is_one_line_exit_2(capsys, args, message):
    code, out, err = _cli(capsys, "--model", "llama3-8b", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
