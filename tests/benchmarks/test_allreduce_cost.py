"""pytest-benchmark suite for the all-reduce path (a one-process gloo group on CPU: the code path
a torchrun job takes, timing and exact check included, though one process measures no link) and
for the cost estimate (`costbench cost`'s model and pricing, torch-free).

CI saves every run's figures with `--benchmark-json .benchmarks/ci.json` (README); two such files
compare with `pytest-benchmark compare a.json b.json`.
"""

from cost_models.cost import estimate, plan_training

ROUNDS = 3  # fixed rounds rather than 1 s per test: CI has 2 cores


def test_allreduce_sweep_one_size(benchmark):
    import torch.distributed as dist

    from kernels import collectives

    cfg = collectives.SweepConfig([1 << 20], budget_ms=5.0, warmup_ms=2.0, min_iters=3, max_iters=50)
    collectives.init_distributed("cpu", env_rendezvous=False)  # a group of one, as `costbench run` makes
    try:
        records = benchmark.pedantic(lambda: list(collectives.sweep("allreduce", "cpu", cfg)),
                                     rounds=ROUNDS, warmup_rounds=1)
    finally:
        dist.destroy_process_group()
    (rec,) = records
    assert rec["wrong"] == 0 and rec["bytes"] == 1 << 20 and rec["world_size"] == 1
    benchmark.extra_info["algbw_gbps"] = rec["algbw_gbps"]


def test_cost_estimate_llama3_70b(benchmark):
    df = benchmark.pedantic(lambda: estimate("llama3-70b", "H100-SXM"), rounds=ROUNDS * 4, warmup_rounds=1)
    assert len(df) > 0 and (df["cost_usd"] > 0).all()


def test_cost_plan_sized_by_search(benchmark):
    # no --gpus: the default-size search over powers of two is the slower path
    plan = benchmark.pedantic(lambda: plan_training("llama3.1-405b", "H200-SXM"), rounds=ROUNDS * 4, warmup_rounds=1)
    assert plan.gpus >= plan.min_gpus and plan.gpu_hours > 0
