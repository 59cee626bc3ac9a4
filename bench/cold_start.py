"""Cold start: from process start to the first preview step, with full-size weights on disk.

    PYTHONPATH=desktop python bench/cold_start.py write DIR      # random weights -> safetensors
    PYTHONPATH=desktop python bench/cold_start.py stock DIR      # WanPipeline.from_pretrained(...).to("cuda")
    PYTHONPATH=desktop python bench/cold_start.py ours DIR       # Generator(ModelSource(folder)) through the real loader
    PYTHONPATH=desktop python bench/cold_start.py ours-compiled DIR   # + regional compile; run it twice:
                                                                        # the second start reads the inductor cache

Each timing runs in its own process and counts from the interpreter's start (imports included) to
the end of the first denoising step of a 480x832x17 preview. The files were just written, so both
read them from the page cache: this measures load and set-up work, not the disk.
"""

from __future__ import annotations

import json
import sys
import time

T_START = time.perf_counter()

import torch  # noqa: E402

sys.path.insert(0, "desktop")
sys.path.insert(0, "bench")

PROMPT = "a yellow ball rolls from the left edge to the center of the screen"


def main() -> None:
    what, folder = sys.argv[1], sys.argv[2]
    if what == "write":
        from models import build_components, stock_pipeline

        comps = build_components(False, "cuda")
        comps["transformer"].to(torch.bfloat16)
        t0 = time.perf_counter()
        stock_pipeline(comps).save_pretrained(folder, safe_serialization=True)
        print(f"RESULT {json.dumps({'write_s': time.perf_counter() - t0})}", flush=True)
        return
    first_step = {}
    if what == "stock":
        from diffusers import WanPipeline

        pipe = WanPipeline.from_pretrained(folder, torch_dtype=torch.bfloat16, use_safetensors=True).to("cuda")
        t_loaded = time.perf_counter()

        def cb(_p, i, _t, _kw):
            if i == 0:
                torch.cuda.synchronize()
                first_step["t"] = time.perf_counter()
                _p._interrupt = True
            return {}

        pipe.set_progress_bar_config(disable=True)
        pipe(prompt=PROMPT, negative_prompt="blurry", height=480, width=832, num_frames=17, num_inference_steps=25,
             output_type="latent", callback_on_step_end=cb)
    else:
        from shotsketch.engine.events import CancelToken, JobStep
        from shotsketch.engine.generator import Generator
        from shotsketch.engine.requests import GenerationRequest
        from shotsketch.engine.sources import ModelSource

        from shotsketch.engine.speed import SpeedOptions

        gen = Generator(ModelSource.parse(folder), device="cuda", speed=SpeedOptions(compile=what == "ours-compiled"))
        gen.load()
        t_loaded = time.perf_counter()
        token = CancelToken()

        def on_event(ev):
            if isinstance(ev, JobStep) and "t" not in first_step:
                torch.cuda.synchronize()
                first_step["t"] = time.perf_counter()
                token.cancel()

        gen.generate(GenerationRequest(PROMPT, "blurry", width=832, height=480, frames=17, steps=25), on_event, token)
    extra = {} if what in ("stock", "write") else {"attention": gen.attention, "compiled": gen.compiled}
    print("RESULT " + json.dumps({"who": what, "load_s": t_loaded - T_START, "first_step_s": first_step["t"] - T_START,
                                  **extra}),
          flush=True)


if __name__ == "__main__":
    main()
