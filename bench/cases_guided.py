"""bench/run.py case for layout guidance's cost per guidance path (issue 16: the first guided preview
no slower than the first unguided one). `--tiny` runs the same code on the demo model on a CPU
(compile through dynamo's "eager" backend there, so the graph counts are real).

    guided      per path ("mask": additive mask + a second attention call for the maps; "folded":
                one maskless call, engine/guidance.py `folded_attention`; "lse": the unguided call with
                its log-sum-exp and an exact correction of the prompt's row, `lse_attention`):
                - the cross-attention call alone at the preview's shape (CFG batch of 2 x 1,950 video
                  tokens against 512 text tokens, 24 heads of 128), compiled, beside the unguided call,
                  and which of PyTorch's kernels take the folded call's head size;
                - 480x832x17, 25 steps, whole call, compiled, after the app's warm-up (mask; folded;
                  folded with the text K/V cache, engine/text_kv.py; lse; lse with the cache): first and later
                  previews with no layout / layout guidance 1.0 / strength 0, the first guided and the
                  first strength-0 preview against the first unguided one (target <= 1.0x), graphs
                  compiled after the warm-up (target 0);
                - the 704x1280x121 step (4 steps, prompt cached), guided and strength 0 against
                  unguided (target <= 1.03x), graphs compiled after the first job of each kind.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import time

import torch
from run import _step_times, add  # noqa: I001

from cases_more import _compiled, _fresh_compile_state, _graphs, _sizes, _sketch_requests, _sketch_rounds, _stock_again
from models import seconds_per_call, sync
from shotsketch.engine.guidance import FOLDED, LSE, MASK, GuidanceSettings

PATHS = (MASK, FOLDED, LSE)
# (guidance path, text K/V cache)
PREVIEWS = ((MASK, False), (FOLDED, False), (FOLDED, True), (LSE, False), (LSE, True))


def _attention_calls(args) -> None:
    """The cross-attention's attention part (after the projections and norms) per path, compiled as
    the blocks are: stock (no mask), mask path (masked call + recording call + sums), folded (with
    8 and 16 extra head dims), lse (the unguided call with its log-sum-exp, 64 token slots)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from shotsketch.engine.guidance import cudnn_lse_works, folded_attention, lse_attention, record_shares

    b, n, heads, d, length = (2, 30, 2, 16, 512) if args.tiny else (2, 1950, 24, 128, 512)
    dev = args.device
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    torch.manual_seed(0)
    q = torch.randn(b, n, heads, d, device=dev, dtype=dtype)
    k, v = (torch.randn(b, length, heads, d, device=dev, dtype=dtype) for _ in range(2))
    subjects = 2
    ind = torch.zeros(length, 16, device=dev)
    ind[3:6, 0] = 1
    ind[8:10, 1] = 1
    columns = torch.rand(n, subjects, device=dev) * 1.5 - 0.5
    bias = (columns @ ind[:, :subjects].T * 4.0).to(dtype)
    mask = torch.stack([bias, torch.zeros_like(bias)])[:, None]  # [2, 1, N, L]
    values = torch.nn.functional.pad(ind[:, :subjects], (0, d - subjects)).to(dtype)[None, None].expand(
        1, heads, length, d).contiguous()
    sums = torch.zeros(d, n, device=dev)

    def extras(slots: int) -> tuple:
        q_extra = torch.zeros(2, n, 1, slots, device=dev, dtype=dtype)
        q_extra[0, :, 0, :subjects] = (columns * 4.0).to(dtype)
        return (q_extra, (ind[:, :slots] * math.sqrt(d)).to(dtype)[None, :, None, :],
                ind[:, :slots].to(dtype)[None, :, None, :], torch.zeros(slots, n, device=dev))

    folded_inputs = {slots: extras(slots) for slots in (16, 8)}
    lse_slots = 64  # GuidanceSettings.lse_slots: the distinct subject tokens, padded with token 0
    used = torch.nonzero(ind[:, :subjects].sum(1) > 0).flatten()
    lse_index = torch.zeros(lse_slots, dtype=torch.long, device=dev)
    lse_index[:len(used)] = used
    lse_ind = torch.zeros(lse_slots, lse_slots, device=dev)
    lse_ind[:len(used), :subjects] = ind[used, :subjects]
    lse_c = columns @ lse_ind[:, :subjects].T * 4.0  # [N, slots] float32
    lse_sums = torch.zeros(lse_slots, n, device=dev)
    cudnn = dev == "cuda" and cudnn_lse_works(torch.device(dev), dtype, heads, n, length, d)

    def sdpa(qq, kk, vv, m=None, scale=None):  # noqa: ANN001, ANN202 - as diffusers' native backend calls it
        out = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (qq, kk, vv)),
                                                               attn_mask=m, scale=scale)
        return out.transpose(1, 2).flatten(2, 3)

    def stock():  # noqa: ANN202
        return sdpa(q, k, v)

    def masked():  # noqa: ANN202
        record_shares(q, k, mask, values, sums)
        return sdpa(q, k, v, mask)

    def folded_with(slots: int):  # noqa: ANN202
        return lambda: folded_attention(q, k, v, *folded_inputs[slots]).flatten(2, 3)

    def lse():  # noqa: ANN202
        return lse_attention(q, k, v, lse_index, lse_ind, lse_c, lse_sums, cudnn).flatten(2, 3)

    # where the folded call's time goes: its text side (key and value with the extra dims) made once
    # per job instead of in every call, and the attention alone on inputs already widened
    q_extra16, k_extra16, v_extra16, sums16 = folded_inputs[16]
    k_wide = torch.cat([k, k_extra16.expand(b, length, heads, 16)], dim=-1)
    v_wide = torch.cat([v, v_extra16.expand(b, length, heads, 16)], dim=-1)
    q_wide = torch.cat([q, q_extra16[:b].expand(b, n, heads, 16)], dim=-1)

    def folded_text_ready():  # noqa: ANN202
        qq = torch.cat([q, q_extra16[:b].expand(b, n, heads, 16)], dim=-1)
        out = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (qq, k_wide, v_wide)),
                                                               scale=1.0 / math.sqrt(d)).transpose(1, 2)
        sums16.add_(out[0, :, :, d:].float().mean(1).transpose(0, 1))
        return out[..., :d].flatten(2, 3)

    def folded_prompt_row_only():  # noqa: ANN202 - the negative's row (never biased or recorded) at head size d
        first = folded_attention(q[:1], k[:1], v[:1], q_extra16[:1], k_extra16, v_extra16, sums16)
        return torch.cat([first, sdpa(q[1:], k[1:], v[1:]).unflatten(2, (heads, d))]).flatten(2, 3)

    def folded_kernel_only():  # noqa: ANN202
        return torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q_wide, k_wide, v_wide)),
                                                                scale=1.0 / math.sqrt(d)).transpose(1, 2)

    kernel = "cuDNN" if cudnn else "flash" if dev == "cuda" else "CPU flash"
    lse_name = f"lse path, {lse_slots} token slots ({kernel} with log-sum-exp, head size {d})"

    backend = "inductor" if dev == "cuda" else "eager"
    label = "guided: cross-attention call" + (" tiny" if args.tiny else f" (2x{n} video x {length} text tokens)")
    with torch.inference_mode():
        ref = masked().float()
        err = {slots: float((folded_with(slots)().float() - ref).abs().max()) for slots in folded_inputs}
        err[LSE] = float((lse().float() - ref).abs().max())
        err_row = float((folded_prompt_row_only().float() - ref).abs().max())
        times = {}
        variants = [("stock (no layout)", stock), ("mask path", masked)]
        variants += [(f"folded path, {slots} extra dims (head size {d + slots})", folded_with(slots))
                     for slots in folded_inputs]
        variants += [(lse_name, lse)]
        variants += [("folded path, 16 extra dims, key and value widened once per job", folded_text_ready),
                     ("folded path, 16 extra dims, the attention kernel alone on widened inputs", folded_kernel_only),
                     ("folded path, 16 extra dims, on the prompt's row only (the negative's row a plain call)",
                      folded_prompt_row_only)]
        for name, fn in variants:
            compiled = torch.compile(fn, fullgraph=True, backend=backend)
            times[name] = seconds_per_call(compiled, 50 if dev == "cuda" else 3)
        for name, t in times.items():
            note = f"{t / times['stock (no layout)']:.2f}x the unguided call"
            if name.startswith(("folded", "lse")) and "widened" not in name and "row only" not in name:
                key = LSE if name.startswith("lse") else int(name.split(", ")[1].split(" ")[0])
                note += (f"; max abs diff vs the mask path's output {err[key]:.4f} "
                         f"({str(dtype).removeprefix('torch.')})")
            if "row only" in name:
                note += f"; max abs diff vs the mask path's output {err_row:.4f}"
            what = "attention only" if "alone" in name else "attention + recording"
            add(label, f"{name}: {what}, compiled", None, t * 1e6, unit="us", note=note)
        if dev == "cuda":  # which of PyTorch's kernels take the folded call (head size d + slots)
            for name, kernel in (("cuDNN", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                                 ("memory-efficient", SDPBackend.EFFICIENT_ATTENTION)):
                try:
                    with sdpa_kernel(kernel):
                        t = seconds_per_call(folded_with(16), 50)
                        t_stock = seconds_per_call(stock, 50)
                    add(label, f"folded path (16 extra dims), eager, {name} kernel only", None, t * 1e6, unit="us",
                        note=f"head size {d + 16}; the unguided call on this kernel {t_stock * 1e6:.1f} us")
                except RuntimeError as exc:
                    add(label, f"folded path (16 extra dims), eager, {name} kernel only", None, None,
                        note=f"not available for head size {d + 16}: {str(exc)[:120]}")


def _cross_attention_module(comps, args) -> None:
    """One block's whole cross-attention (projections, norms, attention, output), compiled: diffusers'
    processor against ours reading the text's keys and values from the cache (engine/text_kv.py)."""
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    from shotsketch.engine.guidance import LayoutAttnProcessor
    from shotsketch.engine.text_kv import KVSlot, text_kv

    attn = comps["transformer"].blocks[0].attn2
    n = 30 if args.tiny else 1950
    dim = attn.inner_dim
    param = next(attn.parameters())
    torch.manual_seed(1)
    hidden = torch.randn(2, n, dim, device=param.device, dtype=param.dtype)
    text = torch.randn(2, 512, dim, device=param.device, dtype=param.dtype)
    backend = "inductor" if args.device == "cuda" else "eager"
    with torch.inference_mode():
        slot = KVSlot()
        slot.key, slot.value = text_kv(attn, text)
        stock, cached = WanAttnProcessor(), LayoutAttnProcessor(kv=slot)
        expected = stock(attn, hidden, text)
        diff = float((cached(attn, hidden, text).float() - expected.float()).abs().max())
        times = {}
        for name, proc in (("diffusers' processor", stock), ("text keys and values cached", cached)):
            fn = torch.compile(lambda p=proc: p(attn, hidden, text), fullgraph=True, backend=backend)
            times[name] = seconds_per_call(fn, 50 if args.device == "cuda" else 3)
    label = "guided: one block's cross-attention" + (" tiny" if args.tiny else f" (CFG batch, 2x{n} video tokens)")
    base = times["diffusers' processor"]
    for name, t in times.items():
        add(label, f"{name}, compiled", None, t * 1e6, unit="us",
            note=f"{t / base:.2f}x diffusers'; x30 blocks per step" + ("" if t == base else f"; max abs diff {diff:.4f}"))


def _text_kv(gen, on: bool) -> None:  # noqa: ANN001
    """The text K/V cache (engine/text_kv.py) on or off for this generator, whatever its load did."""
    from shotsketch.engine import text_kv

    if on:
        os.environ[text_kv.ENV] = "1"  # whatever the environment says: this case measures it
        if text_kv.install_for(gen) is None:
            raise RuntimeError("the text K/V cache did not install (memory plan or SHOTSKETCH_TEXT_KV)")
    else:
        text_kv.uninstall(gen.pipeline.transformer)
        gen.attention_hooks[:] = [h for h in gen.attention_hooks if not isinstance(h, text_kv.TextKV)]


def _stock_cross_attention(comps) -> None:
    """diffusers' own processor back on every cross-attention (for the cases that follow)."""
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    from shotsketch.engine import text_kv

    transformer = comps["transformer"]
    text_kv.uninstall(transformer)
    for block in transformer.blocks:
        block.attn2.set_processor(WanAttnProcessor())


def _preview(comps, args, path: str, kv: bool, negative_plain: bool = False) -> None:
    """Whole previews after the app's warm-up, per kind; the first of each kind against the first unguided."""
    h, w, f = _sizes(args)["preview"]
    steps = 4 if args.tiny else 25
    _fresh_compile_state(comps)
    _stock_cross_attention(comps)
    gen = _compiled(comps, args)
    gen.layout_guidance.settings = dataclasses.replace(GuidanceSettings(), path=path, fold_negative_plain=negative_plain)
    gen.load()
    _text_kv(gen, kv)
    sync(); t0 = time.perf_counter()
    gen.warm_up(width=w, height=h, frames=f)
    sync(); t_warm = time.perf_counter() - t0
    graphs_warm = _graphs()
    label = (f"guided: preview {w}x{h}x{f}x{steps}, {path} path" + (", the negative's row plain" if negative_plain else "")
             + (", text K/V cached" if kv else ""))
    add(label, "warm_up() after loading (unguided forward + one guided preview step)", None, t_warm,
        note=f"{graphs_warm} graphs compiled")
    taken: dict[str, str] = {}

    def note_path(kind, req) -> None:  # noqa: ANN001
        if req.layout_json:
            taken[kind] = gen.layout_guidance.last_state.path

    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))  # more rounds: the ratio beside its run-to-run spread
    results = _sketch_rounds(gen, (h, w, f), steps, 20, note_path, rounds)
    plain = results["no layout"][0]
    for kind, ts in results.items():
        used = "" if kind not in taken else f"; path taken: {taken[kind]}"
        add(label, f"{kind}: first preview after the warm-up (new prompt)", plain if kind != "no layout" else None,
            ts[0], note=f"later ones {[round(t, 3) for t in ts[1:]]}{used}")
    add(label, "first guided preview / first unguided preview", plain, results["layout, guidance 1.0"][0],
        target=1.0, note="target <= 1.0x")
    add(label, "first strength-0 preview / first unguided preview", plain,
        results["layout, guidance 0 (maps recorded)"][0], target=1.0, note="target <= 1.0x")
    pairs = sorted(g / u for g, u in zip(results["layout, guidance 1.0"], results["no layout"]))
    add(label, f"guided / unguided preview, each round's pair (median of {rounds})", None, pairs[len(pairs) // 2],
        unit="x", note=f"all rounds {[round(r, 3) for r in pairs]}; unguided previews "
                       f"{min(results['no layout']):.3f}-{max(results['no layout']):.3f} s")
    later = {kind: min(ts[1:]) for kind, ts in results.items()}
    add(label, f"later guided previews / later unguided (best of rounds 2-{rounds} each)", later["no layout"],
        later["layout, guidance 1.0"])
    add(label, "graphs compiled by the previews after the warm-up", None, _graphs() - graphs_warm, unit="graphs",
        note="target 0")
    if kv:
        cache = next(hk for hk in gen.attention_hooks if type(hk).__name__ == "TextKV")
        add(label, "text K/V cache: computed / reused (all jobs)", None, cache.stats["computed"], unit="times",
            note=f"reused {cache.stats['reused']}, skipped {cache.stats['skipped']}")
    del gen
    gc.collect()
    _stock_cross_attention(comps)


def _full_step(comps, args, path: str) -> None:
    """The 704x1280x121 step (prompt cached): guided and strength 0 against unguided, 3 rounds."""
    h, w, f = _sizes(args)["full"]
    steps = 4
    _fresh_compile_state(comps)
    _stock_cross_attention(comps)
    gen = _compiled(comps, args)
    gen.layout_guidance.settings = dataclasses.replace(GuidanceSettings(), path=path)
    gen.load()
    _text_kv(gen, False)  # it skips jobs this size anyway (engine/text_kv.py MIN_TOKENS)
    gen.decode = lambda lat: None  # denoising only
    first: dict[str, float] = {}
    best: dict[str, float] = {}
    graphs_after_first = 0
    for round_no in range(3):
        if round_no == 1:
            graphs_after_first = _graphs()
        for kind, req in _sketch_requests((h, w, f), steps, round_no):
            gen.encode_prompts(req.prompt, req.negative_prompt)  # prompt cached: the steps alone
            times, final = _step_times(gen, req)
            if round_no == 0:
                first[kind] = times[0]
            else:
                best[kind] = min(best.get(kind, 1e9), min(times[1:] or times))
    label = f"guided: step {w}x{h}x{f}, {path} path"
    plain = best["no layout"]
    for kind, t in best.items():
        add(label, f"{kind}: step (best of rounds 2-3, steps 2-4)", plain if kind != "no layout" else None, t,
            target=None if kind == "no layout" else 1.03,
            note=f"first job's first step {first[kind]:.2f} s (with its compile, if it had one)"
                 + ("" if kind == "no layout" else "; target <= 1.03x the unguided step"))
    add(label, "graphs compiled after the first job of each kind (6 more jobs)", None, _graphs() - graphs_after_first,
        unit="graphs", note="target 0")
    del gen
    gc.collect()
    _stock_cross_attention(comps)


def case_guided_preview(comps, args) -> None:
    """The attention call per path and the preview after the warm-up (also with the text K/V cache)."""
    if not os.environ.get("BENCH_PREVIEWS"):  # (a chosen few previews: the calls are in guided_calls)
        _attention_calls(args)
        _cross_attention_module(comps, args)
    for path, kv, negative_plain in _previews():
        _preview(comps, args, path, kv, negative_plain)


def _previews() -> tuple:
    """PREVIEWS, or those named in BENCH_PREVIEWS ("folded+kv,lse+kv": a path, +kv with the text K/V
    cache; "folded-negplain+kv": the folded path with the CFG batch's negative row in a plain call)."""
    wanted = [w.strip() for w in os.environ.get("BENCH_PREVIEWS", "").split(",") if w.strip()]
    named = [(p, kv, False) for p, kv in PREVIEWS] + [(FOLDED, True, True)]
    return tuple((p, kv, neg) for p, kv, neg in named
                 if (not wanted and not neg) or f"{p}{'-negplain' if neg else ''}{'+kv' if kv else ''}" in wanted)


def case_guided_calls(comps, args) -> None:
    """The guided cross-attention call per path and one block's cross-attention (no previews)."""
    _attention_calls(args)
    _cross_attention_module(comps, args)


def case_guided_step(comps, args) -> None:
    """The 720p step per path: lse, folded, then mask (the mask path's was measured in run 24)."""
    for path in reversed(PATHS):
        _full_step(comps, args, path)
    _stock_again(comps)


def case_guided(comps, args) -> None:
    """Layout guidance's cost per path: the attention call, the preview after the warm-up (also with
    the text K/V cache), the 720p step."""
    case_guided_preview(comps, args)
    case_guided_step(comps, args)


def case_kernels(comps, args) -> None:
    """Which of PyTorch's attention kernels the compiled blocks get at each of the model's attention
    shapes (preview and 720p, self and cross, CFG batch of 2), against cuDNN's and flash's kernels
    called directly on the same strided [B, S, H, D] views, compiled; and cuDNN with its log-sum-exp."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    aten = torch.ops.aten
    shapes = [("preview self-attention", 1950, 1950), ("preview cross-attention", 1950, 512),
              ("720p self-attention", 27280, 27280), ("720p cross-attention", 27280, 512)]
    if args.tiny:
        shapes = [("tiny self-attention", 60, 60), ("tiny cross-attention", 60, 16)]
    heads, d = (2, 16) if args.tiny else (24, 128)
    dev = args.device
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32

    def views(q, k, v):  # noqa: ANN001, ANN202
        return (t.transpose(1, 2) for t in (q, k, v))

    def default(q, k, v):  # noqa: ANN001, ANN202 - as diffusers' native backend calls it
        return torch.nn.functional.scaled_dot_product_attention(*views(q, k, v)).transpose(1, 2)

    def cudnn(q, k, v):  # noqa: ANN001, ANN202
        return aten._scaled_dot_product_cudnn_attention(*views(q, k, v), None, False, 0.0, False, False)[0].transpose(1, 2)

    def cudnn_lse(q, k, v):  # noqa: ANN001, ANN202
        out, lse = aten._scaled_dot_product_cudnn_attention(*views(q, k, v), None, True, 0.0, False, False)[:2]
        return out.transpose(1, 2), lse

    def opaque(q, k, v):  # noqa: ANN001, ANN202 - SHOTSKETCH_ATTENTION=cudnn's kernel
        from shotsketch.engine.attention import cudnn_bshd

        return cudnn_bshd(q, k, v)

    def flash(q, k, v):  # noqa: ANN001, ANN202
        return aten._scaled_dot_product_flash_attention(*views(q, k, v))[0].transpose(1, 2)

    backend = "inductor" if dev == "cuda" else "eager"
    for label, n, length in shapes:
        torch.manual_seed(0)
        q = torch.randn(2, n, heads, d, device=dev, dtype=dtype)
        k, v = (torch.randn(2, length, heads, d, device=dev, dtype=dtype) for _ in range(2))
        ref = default(q, k, v).float()
        reps = 20 if dev == "cuda" else 2
        t_default = None
        for name, fn in (("PyTorch's choice (as diffusers calls it)", default), ("cuDNN, called directly", cudnn),
                         ("cuDNN with log-sum-exp", cudnn_lse), ("flash, called directly", flash),
                         ("cuDNN first, one opaque op (SHOTSKETCH_ATTENTION=cudnn)", opaque)):
            try:
                compiled = torch.compile(fn, fullgraph=True, backend=backend)
                with torch.inference_mode():
                    got = compiled(q, k, v)
                    err = float(((got[0] if isinstance(got, tuple) else got).float() - ref).abs().max())
                    t = seconds_per_call(lambda: compiled(q, k, v), reps)
            except Exception as exc:  # noqa: BLE001 - a kernel this GPU or size lacks: say so and go on
                add(f"kernels: {label}", name, None, None, note=f"not available: {str(exc)[:120]}")
                continue
            t_default = t_default or t
            add(f"kernels: {label}", f"{name}, compiled", t_default, t, unit="s",
                note=f"{t * 1e6:.1f} us; max abs diff vs PyTorch's choice {err:.4f}")
        if dev == "cuda":  # which kernel PyTorch's choice is: eager, one kernel allowed at a time
            for name, kernel in (("cuDNN", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                                 ("memory-efficient", SDPBackend.EFFICIENT_ATTENTION)):
                try:
                    with sdpa_kernel(kernel), torch.inference_mode():
                        t = seconds_per_call(lambda: default(q, k, v), reps)
                    add(f"kernels: {label}", f"eager, {name} kernel only", t_default, t, note=f"{t * 1e6:.1f} us")
                except RuntimeError as exc:
                    add(f"kernels: {label}", f"eager, {name} kernel only", None, None, note=f"not available: {str(exc)[:100]}")
        del q, k, v, ref
        gc.collect()
        if dev == "cuda":
            torch.cuda.empty_cache()


CASES = {"guided": case_guided, "guided_preview": case_guided_preview, "guided_step": case_guided_step, "guided_calls": case_guided_calls,
         "kernels": case_kernels}
