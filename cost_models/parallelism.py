"""Parallel layouts (Megatron-LM's): tensor (TP, with sequence parallelism), pipeline (PP, 1F1B,
optionally interleaved), data (DP, distributed optimizer), micro-batch, global batch, recompute.

A `Layouts` holds many candidate layouts as parallel numpy arrays so that memory and step time
are computed for all of them at once (Narayanan et al. 2021, sec. 3: the layout is what a
practitioner searches; here the search is exhaustive over the feasible ones).

Feasible (candidates()): TP in 1, 2, 4, 8 within a node (GPUS_PER_NODE) and dividing the heads
and KV heads; PP at most the layers, each stage but the last ceil(L/PP) layers and the last the
rest (at least one) plus the LM head, documented as Megatron's uneven last stage (Llama 3 405B:
126 layers on 16 stages); DP dividing the global batch / micro-batch (the batch is the recipe's:
never changed to suit the cluster); TP*CP*PP*DP at most the cluster's GPUs: a layout may leave GPUs
idle, as a practitioner with 1,032 GPUs and a 2,048-sequence batch runs 1,024 of them (spares)
rather than change the batch. So every layout of a cluster is also one of any larger cluster, and
more GPUs never make the fastest layout slower (the search's sets of PP and DP values do not
depend on the cluster size). Interleaving (v virtual stages per GPU) only with PP > 1, v dividing
the layers of the full stages and the micro-batch count a multiple of PP (Megatron's rule). The lighter last
stage may hold fewer chunks than v: it never sets the pipeline's pace (the bubble is (PP-1)/v of
the slowest stage's time), as Megatron-LM's flexible asymmetric VPP (MR 2795,
--pipeline-model-parallel-layout) allows and as Llama 3 405B ran (126 layers on 16 interleaved
stages, the first and last one layer lighter: "The Llama 3 Herd of Models" sec. 3.3.2). Memory
is checked by memory.py, speed by step_time.py.

Expert parallelism (EP, mixture-of-experts models only), as Megatron-Core runs it
(megatron/core/transformer/moe/README.md, --expert-model-parallel-size): the experts of each MoE
layer are sharded over EP ranks taken from the data-parallel group, so EP divides DP (and the
experts, whole experts per rank); attention and everything else stays data-parallel over DP, the
expert weights are data-parallel over DP/EP. EP is 1 for a dense model. Expert-tensor parallelism
is not modelled separately: the experts are split over TP like the dense MLP (Megatron's default
--expert-tensor-parallel-size = TP), and MoE parallel folding (EP across TP ranks) is not searched.

Context parallelism (CP), as Llama 3 ran its 131K-token stage ("The Llama 3 Herd of Models" sec.
3.3.2; Megatron-Core --context-parallel-size): each sequence is cut into 2 x CP chunks and CP rank
i holds chunks i and 2CP-1-i (so each rank's share of the causal attention is the same), so CP
divides the sequence into 2 x CP equal chunks. Ranks are ordered TP, then CP (Llama 3's
[TP, CP, PP, DP], Megatron's tp-cp-ep-dp-pp): a CP group stays in a node while TP x CP <= 8. The
weights are replicated over CP like over DP, and gradients and the distributed optimizer's shards
run over the DP x CP ranks (Megatron's data-parallel group with context parallelism); the number
of micro-batches is unchanged (every CP rank works on the same sequences). The search tries CP
while each rank keeps at least CP_MIN_TOKENS of the sequence: Llama 3 kept 8,192 (its 8K stage at
CP 1, its 131K stage at CP 16); shorter chunks thin every GEMM and the per-layer K/V all-gathers
stop being small beside the attention. So CP is 1 at 8K tokens and below, and the set searched
depends on the sequence alone, never on the cluster.
"""

import dataclasses

import numpy as np

from cost_models.errors import InputError, NoLayoutError

GPUS_PER_NODE = 8      # HGX/DGX: 8 GPUs on one NVLink switch; TP stays inside it
RECOMPUTE = ("none", "selective", "full")
TP_CHOICES = (1, 2, 4, 8)
MICRO_BATCHES = (1, 2, 4, 8)
VIRTUAL_STAGES = (1, 2, 4, 8)
CP_MIN_TOKENS = 8192     # the least of a sequence one CP rank keeps, as the search tries CP (docstring)


@dataclasses.dataclass(frozen=True)
class Layouts:
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    micro_batch: np.ndarray
    global_batch: np.ndarray    # sequences per step
    recompute: np.ndarray       # index into RECOMPUTE
    vpp: np.ndarray             # virtual pipeline stages per GPU (1: plain 1F1B)
    recompute_layers: np.ndarray | None = None   # full: layers per stage recomputed (memory.fit_recompute)
    ep: np.ndarray | None = None                 # expert-parallel degree (None: 1, a dense model)
    cp: np.ndarray | None = None                 # context-parallel degree (None: 1)

    def __len__(self):
        return len(self.tp)

    @property
    def ep_degrees(self) -> np.ndarray:
        """EP of each layout (1 where not given)."""
        return self.ep if self.ep is not None else np.ones_like(self.tp)

    @property
    def cp_degrees(self) -> np.ndarray:
        """CP of each layout (1 where not given)."""
        return self.cp if self.cp is not None else np.ones_like(self.tp)

    def recompute_share(self, layers):
        """Share of each stage's layers whose forward runs twice (full recompute), 0..1."""
        per_stage, _ = stage_layers(layers, self.pp)
        done = self.recompute_layers if self.recompute_layers is not None else np.where(
            self.recompute == RECOMPUTE.index("full"), per_stage, 0)
        return done / per_stage

    @property
    def micro_batches(self):
        """Micro-batches per step per pipeline: global batch / (DP * micro-batch)."""
        return self.global_batch // (self.dp * self.micro_batch)

    def pick(self, i: int, chosen: str) -> dict:
        """Layout i as the cost output's `parallelism` dict, with `flags`: the cost flags that give
        this very layout back (a searched layout pinned, to vary something else around it)."""
        out = {"tp": int(self.tp[i]), "pp": int(self.pp[i]), "dp": int(self.dp[i]),
               "micro_batch": int(self.micro_batch[i]), "global_batch": int(self.global_batch[i]),
               "ep": int(self.ep_degrees[i]), "cp": int(self.cp_degrees[i]),
               "recompute": RECOMPUTE[int(self.recompute[i])], "virtual_stages": int(self.vpp[i]),
               "recompute_layers": int(self.recompute_layers[i]) if self.recompute_layers is not None else 0,
               "sequence_parallel": bool(self.tp[i] > 1), "gpus_used": int(self.gpus_used[i]), "chosen": chosen}
        out["flags"] = layout_flags(out)
        return out

    @property
    def gpus_used(self) -> np.ndarray:
        """GPUs each layout runs on: TP x CP x PP x DP (the cluster's others idle)."""
        return self.tp * self.cp_degrees * self.pp * self.dp


def _divisors(n: int) -> np.ndarray:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return np.array(sorted(set(small) | {n // d for d in small}))


def pipeline_depths(layers: int) -> np.ndarray:
    """The PP values searched, the same for every cluster size: for each stage size c = ceil(L/PP),
    the smallest PP giving it (a larger PP with the same stage size adds bubble and takes GPUs from
    DP), plus the powers of two and the divisors of L (even stages; interleaving needs the
    micro-batch count, a power of two with the default batch, to be a multiple of PP)."""
    smallest = {-(-layers // c) for c in range(1, layers + 1)}
    powers = {2**k for k in range(layers.bit_length()) if 2**k <= layers}
    return np.array(sorted(smallest | powers | set(_divisors(layers).tolist())))


def stage_layers(layers, pp):
    """(layers on each of the first PP-1 stages, layers on the last stage); both are all the layers
    at PP = 1, so the first is also the layers of the fullest stage."""
    first = -(-np.asarray(layers) // np.asarray(pp))
    return first, np.asarray(layers) - (np.asarray(pp) - 1) * first


def context_degrees(seq_len: int) -> np.ndarray:
    """The CP values searched for sequences of `seq_len` tokens: powers of two that cut it into
    2 x CP equal chunks and leave each rank at least CP_MIN_TOKENS (module docstring); 1 always."""
    cps = [c for c in (2**k for k in range(1, 21)) if seq_len % (2 * c) == 0 and seq_len // c >= CP_MIN_TOKENS]
    return np.array([1, *cps])


def check_context(spec, cp) -> None:
    """InputError for a --cp that cannot cut the model's sequence into 2 x CP equal chunks."""
    if cp is None:
        return
    if not (isinstance(cp, int) and not isinstance(cp, bool) and cp > 0):
        raise InputError(f"--cp {cp!r}: context parallelism must be a positive whole number")
    if cp > 1 and spec.seq_len % (2 * cp):
        raise InputError(f"--cp {cp}: context parallelism cuts each sequence into 2 x CP = {2 * cp} equal chunks, "
                         f"and {spec.name}'s sequence of {spec.seq_len:,} tokens does not divide into them")


def check_given(spec, tp=None, pp=None, recompute=None, ep=None, micro_batch=None, global_batch=None,
                cp=None) -> None:
    """InputError for a given degree no cluster can use: TP beyond a node or not dividing the
    heads, PP beyond the layers, an unknown recompute, EP on a dense model or not dividing the
    experts, a CP that does not cut the sequence, a micro-batch the global batch cannot be cut into
    (named as such, not left to the layout search's "no layout fits")."""
    check_context(spec, cp)
    if ep is not None:
        _positive_whole("--ep", ep, "expert parallelism")
        if not spec.moe and ep > 1:
            raise InputError(f"--ep {ep}: {spec.name} is a dense model (no experts); give --experts and --top-k")
        if spec.moe and spec.experts % ep:
            raise InputError(f"--ep {ep}: expert parallelism must divide the {spec.experts} experts")
    if recompute is not None and recompute not in RECOMPUTE:
        from cost_models.errors import unknown_name
        raise unknown_name("recompute", recompute, RECOMPUTE)
    if tp is not None and tp > GPUS_PER_NODE:
        raise InputError(f"--tp {tp}: tensor parallelism must stay within a node of {GPUS_PER_NODE} GPUs")
    if tp is not None and not tp_divides(spec, tp):
        fits = [t for t in TP_CHOICES if tp_divides(spec, t)]
        width = f"expert width {spec.expert_ffn}" if spec.moe else f"FFN width {spec.ffn}"
        raise InputError(f"--tp {tp}: tensor parallelism must divide the {spec.heads} heads, {spec.kv_heads} KV "
                         f"heads and {width} of {spec.name} (--tp {', '.join(map(str, fits))} {'do' if len(fits) > 1 else 'does'})")
    if pp is not None and pp > spec.layers:
        raise InputError(f"--pp {pp}: more pipeline stages than the model's {spec.layers} layers")
    if pp is not None and stage_layers(spec.layers, pp)[1] < 1:
        first = int(stage_layers(spec.layers, pp)[0])
        ok = [p for p in range(1, spec.layers + 1) if stage_layers(spec.layers, p)[1] >= 1]
        below, above = max(p for p in ok if p < pp), min((p for p in ok if p > pp), default=None)
        raise InputError(f"--pp {pp}: {spec.layers} layers do not cut into {pp} pipeline stages (each stage but the "
                         f"last holds ceil({spec.layers}/{pp}) = {first} layers, leaving none for the last); "
                         f"--pp {below}{f' or {above}' if above else ''} do")
    if micro_batch and global_batch:
        if micro_batch > global_batch:
            raise InputError(f"--micro-batch {micro_batch}: more sequences than the whole step's "
                             f"--global-batch {global_batch}")
        if global_batch % micro_batch:
            raise InputError(f"--global-batch {global_batch}: not a whole number of --micro-batch {micro_batch} "
                             f"micro-batches")


def tp_divides(spec, tp: int) -> bool:
    """TP shards the heads, the KV heads and the MLP (each expert's, for experts) in whole pieces,
    as Megatron and kernels.layer.shard do; the vocabulary is padded to fit, so it never blocks."""
    return not (spec.heads % tp or spec.kv_heads % tp or (spec.expert_ffn if spec.moe else spec.ffn) % tp)


def check_batch(spec, ep, micro_batch, batch: int, batch_given: bool) -> None:
    """InputError for an EP no data-parallel degree can carry at this global batch: EP divides DP,
    and DP x micro-batch divides the global batch, so some micro-batch size must leave a number of
    micro-batches that EP divides. Named by the flags at fault, whatever the cluster."""
    if not ep or ep == 1 or not spec.moe:
        return
    mbs = [micro_batch] if micro_batch else list(MICRO_BATCHES)
    if any(batch % (ep * mb) == 0 for mb in mbs):
        return
    what = f"--global-batch {batch:,}" if batch_given else f"the default global batch of {batch:,} sequences"
    if micro_batch:
        what += f" / --micro-batch {micro_batch} = {batch / micro_batch:g} micro-batches"
    raise InputError(f"--ep {ep}: expert parallelism runs over data-parallel ranks (EP divides DP, and DP x "
                     f"micro-batch divides the global batch), but {what} is not a multiple of {ep} "
                     f"(change --ep{', --global-batch or --micro-batch' if micro_batch else ' or --global-batch'})")


def check_cluster(gpus: int, tp=None, pp=None, ep=None, cp=None) -> None:
    """NoLayoutError when the degrees given need more GPUs than the cluster has: one model replica
    is TP x PP GPUs, CP ranks share its sequences and EP takes DP ranks, so TP x CP x PP x EP of
    those given must fit in --gpus."""
    given = [(f"--{k} {v}", v) for k, v in (("tp", tp), ("cp", cp), ("pp", pp), ("ep", ep)) if v and v > 1]
    need = int(np.prod([v for _, v in given])) if given else 1
    if need > gpus:
        why = (["TP x PP GPUs hold one model replica"] if tp and tp > 1 or pp and pp > 1 else []) + \
              ([f"CP splits each sequence over {cp} of them"] if cp and cp > 1 else []) + \
              ([f"EP spreads the experts over {ep} data-parallel replicas"] if ep and ep > 1 else [])
        raise NoLayoutError(f"{' x '.join(n for n, _ in given)} needs {need:,} GPUs, more than --gpus {gpus:,} "
                            f"({'; '.join(why)})")


def layout_flags(p: dict) -> str:
    """`costbench cost` flags that fix every searched degree of the `parallelism` dict p."""
    flags = [f"--tp {p['tp']}", f"--pp {p['pp']}", f"--vpp {p['virtual_stages']}", f"--micro-batch {p['micro_batch']}",
             f"--global-batch {p['global_batch']}", f"--recompute {p['recompute']}"]
    if p["recompute"] == "full":
        flags.append(f"--recompute-layers {p['recompute_layers']}")
    flags += [f"--{k} {p[k]}" for k in ("cp", "ep") if p[k] > 1]
    return " ".join(flags)


def _positive_whole(flag: str, value, what: str) -> None:
    """InputError unless value is a whole number above 0 (the Python API takes what argparse would refuse)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{flag} {value!r}: {what} must be a positive whole number")


def check_recompute_layers(spec, recompute=None, n_layers=None, pp=None) -> None:
    """InputError for a --recompute-layers that means nothing: without --recompute full (the only
    recompute that picks layers), not a positive whole number, or more than a stage of --pp holds."""
    if n_layers is None:
        return
    _positive_whole("--recompute-layers", n_layers, "the layers per stage to recompute")
    if recompute != "full":
        raise InputError(f"--recompute-layers {n_layers}: only with --recompute full (it says how many of each "
                         f"stage's layers a full recompute re-runs){'' if recompute is None else f', not {recompute}'}")
    most = int(stage_layers(spec.layers, pp)[0]) if pp else spec.layers
    if n_layers > most:
        where = f"a stage of --pp {pp} holds only {most} layers" if pp else f"{spec.name} has only {most} layers"
        raise InputError(f"--recompute-layers {n_layers}: {where}")


def check_vpp(spec, vpp=None, pp=None) -> None:
    """InputError for a --vpp (virtual pipeline stages per GPU, Megatron's interleaved 1F1B) no
    layout can run: it needs PP > 1 and must divide each stage's layers."""
    if vpp is None:
        return
    _positive_whole("--vpp", vpp, "virtual pipeline stages")
    if vpp > 1 and pp == 1:
        raise InputError(f"--vpp {vpp}: interleaving needs a pipeline (--pp above 1)")
    stage = int(stage_layers(spec.layers, pp)[0]) if pp else None
    if vpp > 1 and stage and stage % vpp:
        raise InputError(f"--vpp {vpp}: must divide the {stage} layers of each stage of --pp {pp}")


def candidates(spec, gpus: int, batch: int, tp=None, pp=None, micro_batch=None,
               global_batch=None, recompute=None, vpp=None, ep=None, cp=None) -> Layouts:
    """Every feasible layout of `spec` on at most `gpus` GPUs (memory not yet checked), with any
    given degree fixed, at a global batch of `global_batch` (else `batch`) sequences; EP runs over
    the divisors of the experts that divide DP, CP over context_degrees. InputError if a given
    value is infeasible."""
    check_given(spec, tp, pp, recompute, ep, micro_batch, global_batch, cp)
    batch = int(global_batch or batch)
    tps = np.array([tp] if tp else [t for t in TP_CHOICES if tp_divides(spec, t)])
    pps = np.array([pp]) if pp else pipeline_depths(spec.layers)
    mbs = np.array([micro_batch] if micro_batch else MICRO_BATCHES)
    # With FlashAttention selective recompute saves no memory over none and re-runs the core attention
    # (memory.py, step_time.py): never faster, so the search tries none and full (as many layers as needed)
    rcs = np.array([RECOMPUTE.index(recompute)] if recompute else [0, 2])
    vs = np.array([vpp] if vpp else VIRTUAL_STAGES)
    eps = np.array([ep] if ep else _divisors(spec.experts) if spec.moe else [1])
    dps = _divisors(batch)
    cps = np.array([cp]) if cp else context_degrees(spec.seq_len)
    # TP x CP x PP x DP first: most combinations exceed the cluster, so the full grid is built on the rest
    t4, c4, p4, d4 = (a.ravel() for a in np.meshgrid(tps, cps, pps, dps, indexing="ij"))
    small = (t4 * c4 * p4 * d4 <= gpus) & (stage_layers(spec.layers, p4)[1] >= 1)
    idx = np.flatnonzero(small)
    grid = [a.ravel() for a in np.meshgrid(idx, mbs, rcs, vs, eps, indexing="ij")]
    k, mb, rc, v, e = grid
    t, c, p, dp = t4[k], c4[k], p4[k], d4[k]
    ok = (dp % e == 0) & (batch % (dp * mb) == 0)
    first, _ = stage_layers(spec.layers, p)
    m = np.where(ok, batch // (dp * mb), 0)
    ok &= (v == 1) | ((p > 1) & (first % v == 0) & (m % p == 0))  # the last stage may hold fewer chunks
    if not ok.any():
        given = {k_: val for k_, val in (("tp", tp), ("pp", pp), ("vpp", vpp), ("micro-batch", micro_batch),
                                        ("global-batch", global_batch), ("ep", ep), ("cp", cp)) if val}
        what = ", ".join(f"--{k_} {val}" for k_, val in given.items()) or "any layout"
        raise NoLayoutError(f"{what}: no layout of {spec.name} fits {gpus:,} GPUs (need TP*CP*PP*DP <= GPUs, DP "
                            f"dividing the global batch of {batch:,} sequences / micro-batch"
                            f"{' and divisible by EP' if spec.moe else ''}, at least one layer per pipeline stage"
                            f"{'; with --vpp, PP above 1, --vpp dividing each stage and the micro-batches a multiple of PP' if vpp and vpp > 1 else ''})")
    return Layouts(tp=t[ok], pp=p[ok], dp=dp[ok], micro_batch=mb[ok], global_batch=np.full(int(ok.sum()), batch),
                   recompute=rc[ok], vpp=v[ok], ep=e[ok] if spec.moe else None,
                   cp=c[ok])
