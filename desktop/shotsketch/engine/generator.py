"""The Generator: owns the loaded Wan2.2 TI2V-5B pipeline and runs immutable requests.

It is used from one long-lived worker thread (the UI's GPU worker, or the CLI's main thread);
it never touches Qt. Events go to a callback; the final event is also returned.
"""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from shotsketch import DEMO_LABEL, __version__
from shotsketch.engine.cancel import Interrupted, cancel_points
from shotsketch.engine.events import (
    CancelToken, FinalEvent, JobCancelled, JobEvent, JobFailed, JobFinished, JobStarted, JobStep,
)
from shotsketch.engine.memory import (
    DeviceChoice, JobShape, MemoryPlan, ModelFootprint, PeakPrediction, choose_plan, pick_device,
)
from shotsketch.engine.requests import GenerationRequest, RequestError, load_first_frame, validate_request
from shotsketch.engine.sources import (
    ModelError, ModelSource, SourceKind, folder_revision, quiet_loading_bars, resolve_folder,
)
from shotsketch.engine.speed import SpeedOptions

log = logging.getLogger(__name__)

RECIPE_SCHEMA_VERSION = 1
MAX_SEQUENCE_LENGTH = 512
EventSink = Callable[[JobEvent], None]


def _null_context():  # noqa: ANN202
    import contextlib

    return contextlib.nullcontext()


def file_sha256(path: str) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def library_versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "diffusers": diffusers.__version__, "transformers": transformers.__version__,
    }


class Generator:
    """Loads the pipeline once; `generate` runs one request at a time (not thread-safe by design)."""

    def __init__(
        self,
        source: ModelSource,
        *,
        device: str | None = None,
        memory_plan: MemoryPlan | None = None,
        embed_cache_size: int = 32,
        components: dict[str, Any] | None = None,
        speed: SpeedOptions | None = None,
        distilled: bool | None = None,
    ) -> None:
        self.source = source
        # a step-distilled checkpoint (FastWan2.2-TI2V-5B, DMD): None = as its folder says, True/False = as
        # the person chose; `schedule` holds its timesteps once loaded (engine/schedulers.py DistilledSteps)
        self.distilled = distilled
        self.schedule: tuple[int, ...] | None = None
        from shotsketch.engine.lora import FusedLoras

        self._loras = FusedLoras()
        self._components = components  # prebuilt pipeline parts (benchmarks); else loaded from the source
        self.speed = speed or SpeedOptions()
        self.compiled = False  # the transformer blocks run through torch.compile
        self._eager_job = False  # this job runs uncompiled after its compile failed (later jobs compile again)
        self._loose_job = False  # this job's blocks compile with graph breaks allowed (offloading hooks on them)
        self.attention = "sdpa"  # self-attention kernel: "sdpa" (PyTorch's choice), "cudnn" or "flash4" (engine/attention.py)
        self._warmed = False
        self.device: DeviceChoice = pick_device(device)
        # GPU memory held outside this process's PyTorch allocator at start (a display, other apps, our
        # CUDA context): what it grows by later is taken off what the planner may use (`_free_now`)
        self._others_at_start = _memory_held_by_others() if self.device.device == "cuda" else 0
        self._encoder_streamed = False  # the text encoder's blocks stream from system RAM (group offloading)
        self.footprint = self._footprint()  # what the models take on the GPU, for the memory planner
        self._prediction: PeakPrediction | None = None  # the running job's predicted peak
        self.memory_plan = memory_plan or choose_plan(self.device, demo=source.is_demo, model=self.footprint,
                                                      job=self._planning_job())
        self.auto_fallback = memory_plan is None  # a plan the user pinned is kept; an automatic one adapts
        if self.device.device == "cpu":
            self.memory_plan = MemoryPlan.CPU
        self._embed_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # one entry a text
        self._embed_cache_size = embed_cache_size
        self._pipe = None  # WanPipeline without its text encoder: every call passes embeddings
        self._text_pipe = None  # WanPipeline with tokenizer + text encoder, for encode_prompt
        self._i2v = None
        self._previewer = None
        self._fast_decoder = None
        self._fp8_swap = None
        self.revision: str | None = source.revision
        self.text_encoder_calls = 0
        self._lock = threading.Lock()
        from shotsketch.engine.guidance import LayoutGuidance

        self.layout_guidance = LayoutGuidance()
        self.attention_hooks: list[Any] = [self.layout_guidance]  # context managers around each call

    # ------------------------------------------------------------------ memory planning
    def _footprint(self) -> ModelFootprint | None:
        """The models' sizes: from the prebuilt parts, else the folder's safetensors headers, else the
        published 5B's; None for the demo model."""
        vae_bytes = 2 if self.speed.vae_bf16 and self.device.device == "cuda" else 4
        if self._components is not None:
            c = self._components
            return ModelFootprint.from_modules(c["transformer"], c["text_encoder"], c["vae"], vae_bytes_per_param=vae_bytes)
        if self.source.is_demo:
            return None
        from shotsketch.engine.sources import SourceKind, hf_cache_folder

        folder = (self.source.location if self.source.kind is SourceKind.FOLDER
                  else hf_cache_folder(self.source.location, self.source.revision))
        found = ModelFootprint.from_folder(folder, vae_bytes_per_param=vae_bytes) if folder else None
        return found or ModelFootprint.wan_ti2v_5b(vae_bytes)

    def _planning_job(self) -> JobShape:
        """The job the plan is chosen for at load: the official 704x1280x121 clip with a sketch."""
        from shotsketch.engine.speed import compile_wanted

        return JobShape(guided=True, compiled=compile_wanted(self.speed.compile, self.device.device,
                                                             self.speed.compile_backend))

    def job_shape(self, request: GenerationRequest) -> JobShape:
        from shotsketch.engine.text_kv import TextKV

        return JobShape(request.width, request.height, request.frames, compiled=self.compiled and not self._eager_job,
                        batched_cfg=self.batches_cfg(request), guided=bool(request.layout_json),
                        fp8=self.uses_fp8(request),
                        text_kv=any(isinstance(h, TextKV) for h in self.attention_hooks))

    def _free_now(self) -> int | None:
        """What the planner may use now: what was free for us at start, less what other programs (or
        our own CUDA context) have taken since."""
        if self.device.free_bytes is None:
            return None
        if self.device.device != "cuda" or not torch.cuda.is_available():
            return self.device.free_bytes
        grown = max(0, _memory_held_by_others() - self._others_at_start)
        return max(0, self.device.free_bytes - grown)

    def _fit_plan(self, request: GenerationRequest) -> PeakPrediction | None:
        """Before a job: the fastest plan, and decode, whose predicted peak fits what is free now
        (untiled where that fits, else in tiles). The models move when the job needs another plan
        than the last one: a leaner one for a 720p clip, a faster one again for the next preview (a
        16 GiB card keeps the transformer on the GPU and decodes a 720p clip in tiles, the next preview
        decodes whole). A plan the user pinned is kept, as is its decode."""
        free = self._free_now()
        if self.footprint is None or self.device.device != "cuda" or free is None:
            return None
        from shotsketch.engine.memory import PLAN_ORDER, best_fit, predict_peak

        job = self.job_shape(request)
        if not self.auto_fallback or self.memory_plan not in PLAN_ORDER:
            return predict_peak(self.memory_plan, job, self.footprint)
        best = best_fit(free, job, self.footprint, PLAN_ORDER)
        if best.plan is not self.memory_plan:
            current = predict_peak(self.memory_plan, job, self.footprint)
            log.info("this job needs about %.1f GiB with plan %s (%.1f GiB free); using %s",
                     current.needed / 2**30, self.memory_plan.value, free / 2**30, best.plan.value)
            self.replan(best.plan)
            best = predict_peak(best.plan, self.job_shape(request), self.footprint, tiled_decode=best.tiled_decode)
        return best

    def _memory_report(self, prediction: PeakPrediction | None) -> dict[str, Any]:
        """Predicted against measured peak for the recipe; a prediction below the measure is logged."""
        if prediction is None or not torch.cuda.is_available():
            return {}
        measured = torch.cuda.max_memory_allocated()
        if measured > prediction.peak:
            log.warning("memory prediction missed: plan %s predicted %.2f GiB (%s), measured %.2f GiB (%d MiB over)",
                        prediction.plan.value, prediction.peak / 2**30, prediction.phase, measured / 2**30,
                        -(-(measured - prediction.peak) // 2**20))
        return {"plan": prediction.plan.value, "predicted_peak_gib": round(prediction.peak / 2**30, 2),
                "predicted_phase": prediction.phase, "peak_gib": round(measured / 2**30, 2),
                "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
                "tiled_decode": prediction.tiled_decode}

    # ------------------------------------------------------------------ loading
    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    def load(self) -> None:
        if self._pipe is not None:
            return
        from diffusers import WanPipeline

        t0 = time.perf_counter()
        dtype = self.device.dtype
        folder = None
        if self._components is not None:
            components = dict(self._components)
            self._components = None
        elif self.source.kind is SourceKind.DEMO:
            from shotsketch.engine.demo import build_components

            components = build_components()
        else:
            folder = resolve_folder(self.source)
            self.revision = self.revision or folder_revision(folder)
            quiet_loading_bars()
            try:
                full = WanPipeline.from_pretrained(
                    folder, dtype={"default": dtype, "vae": torch.float32},
                    use_safetensors=True, local_files_only=True,
                )
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelError(f"the model at {folder} could not be loaded: {exc}") from exc
            components = dict(full.components)
            components.pop("transformer_2", None)
        # the same UniPC steps, with coefficients from the CPU: the loop never waits for the GPU
        from shotsketch.engine.schedulers import host_stepping

        components = dict(components)  # prebuilt parts stay as they were given
        if self.distilled is None and folder is not None:
            from shotsketch.engine.sources import distilled_schedule

            self.schedule = distilled_schedule(folder)
        elif self.distilled:
            from shotsketch.engine.schedulers import DMD_TIMESTEPS

            self.schedule = DMD_TIMESTEPS
        if self.schedule:
            from shotsketch.engine.schedulers import DistilledSteps

            components["scheduler"] = DistilledSteps(self.schedule)  # not the UniPC copied into its folder
        elif self.speed.host_scheduler:
            components["scheduler"] = host_stepping(components["scheduler"])
        # The VAE decodes in float32 unless asked otherwise (as the reference code does); the rest
        # runs in the device dtype.
        vae_dtype = dtype if self.speed.vae_bf16 and self.device.device != "cpu" else torch.float32
        for name, want in (("vae", vae_dtype), ("transformer", dtype), ("text_encoder", dtype)):
            if components[name].dtype != want:
                components[name].to(want)
        self._text_pipe = WanPipeline(
            tokenizer=components["tokenizer"], text_encoder=components["text_encoder"],
            vae=components["vae"], scheduler=components["scheduler"], transformer=None, expand_timesteps=True,
        )
        self._pipe = WanPipeline(
            tokenizer=components["tokenizer"], text_encoder=None, vae=components["vae"],
            scheduler=components["scheduler"], transformer=components["transformer"], expand_timesteps=True,
        )
        for pipe in (self._pipe, self._text_pipe):
            pipe.set_progress_bar_config(disable=True)
        while True:
            try:
                self._apply_memory_plan()
                break
            except torch.cuda.OutOfMemoryError:
                nxt = self.memory_plan.leaner()
                if not self.auto_fallback or nxt is None:
                    raise
                log.warning("out of GPU memory placing the model with plan %s; using %s", self.memory_plan.value, nxt.value)
                self.replan(nxt)
        self._apply_speed_options()
        log.info("loaded %s on %s (%s, plan %s) in %.1fs", self.source.describe(), self.device.name,
                 self.device.dtype, self.memory_plan.value, time.perf_counter() - t0)

    def _apply_memory_plan(self) -> None:
        dev = self.device.device
        pipe, text_encoder = self._pipe, self._text_pipe.text_encoder
        plan = self.memory_plan
        if plan is MemoryPlan.CPU:
            return
        self._stream_text_encoder(plan.streams_text_encoder)
        if plan is MemoryPlan.ALL_ON_GPU:
            pipe.to(dev)
            text_encoder.to(dev)
        elif plan is MemoryPlan.TEXT_ENCODER_OFFLOAD:
            pipe.to(dev)
        elif plan is MemoryPlan.MODEL_OFFLOAD:
            pipe.enable_model_cpu_offload(device=dev)
        elif plan is MemoryPlan.GROUP_OFFLOAD:
            pipe.vae.to(dev)
            pipe.transformer.enable_group_offload(
                onload_device=torch.device(dev), offload_device=torch.device("cpu"),
                offload_type="block_level", num_blocks_per_group=1, use_stream=True,
            )
        if plan.vae_tiling:
            pipe.vae.enable_tiling()

    def _stream_text_encoder(self, on: bool) -> None:
        """The 11 GiB UMT5-XXL kept in system RAM, its blocks streamed to the GPU one ahead of the one
        that runs (diffusers' group offloading on a CUDA stream, from pinned memory): a new prompt
        needs two blocks on the GPU instead of the whole encoder, and copies no faster or slower than
        moving the encoder there and back. Block-level offloading groups the direct children that
        are ModuleLists, so it goes on the encoder stack (whose `block` list holds the layers)."""
        if on == self._encoder_streamed or self.device.device == "cpu":
            return
        text_encoder = self._text_pipe.text_encoder
        stack = getattr(text_encoder, "encoder", text_encoder)
        if on:
            from diffusers.hooks import apply_group_offloading

            text_encoder.to("cpu")
            apply_group_offloading(stack, onload_device=torch.device(self.device.device),
                                   offload_device=torch.device("cpu"), offload_type="block_level",
                                   num_blocks_per_group=1, use_stream=True)
        else:
            _remove_group_offloading(stack)
        self._encoder_streamed = on

    def _apply_speed_options(self) -> None:
        if self.device.device != "cuda":
            self._apply_text_kv()
            self._apply_compile()  # on a CPU only when asked for with the "eager" backend (tests)
            return
        # cuDNN autotuning pays off for the untiled decode; with VAE tiling every new tile shape
        # would be tuned again, so leaner plans leave it off.
        if self.speed.cudnn_benchmark and not self.memory_plan.vae_tiling:
            torch.backends.cudnn.benchmark = True
        if self.speed.vae_bf16:
            from shotsketch.engine.speed import channels_last_convs

            channels_last_convs(self._pipe.vae)
        if self.speed.fused_gelu:
            from shotsketch.engine.fused import fuse_feed_forward

            fuse_feed_forward(self._pipe.transformer)
        from shotsketch.engine.attention import CUDNN, FLASH4, SDPA, choose_attention

        choice = choose_attention(self.speed.attention, self.device.device)
        if choice != SDPA or self.speed.fused_rope:
            # our self-attention processor: the fused norm + rotary pass, then FlashAttention-4 or
            # PyTorch's attention
            from shotsketch.engine.attention import enable_kernel_cache, install, kernel_for

            if choice == FLASH4:
                enable_kernel_cache()
            install(self._pipe.transformer, kernel_for(choice))
            self.attention = choice
        self._apply_text_kv()
        if choice == CUDNN:
            from shotsketch.engine.attention import kernel_for, set_cross_kernel

            set_cross_kernel(self._pipe.transformer, kernel_for(choice))
        self._apply_compile()

    def _apply_text_kv(self) -> None:
        """The text's cross-attention keys and values computed once per job (engine/text_kv.py)."""
        from shotsketch.engine.text_kv import install_for

        install_for(self)

    def _apply_compile(self) -> None:
        from shotsketch.engine.speed import compile_wanted

        backend = self.speed.compile_backend
        if compile_wanted(self.speed.compile, self.device.device, backend):
            from shotsketch.engine.speed import enable_compile_cache

            if backend == "inductor":
                enable_compile_cache()
            # Each kind of job (with or without a sketch, FP8, preview or full size) keeps its own compiled
            # variant of the blocks: room for all of them, instead of dynamo's default of 8.
            import torch._dynamo

            config = torch._dynamo.config
            name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.7
            setattr(config, name, max(getattr(config, name), 64))
            self._pipe.transformer.compile_repeated_blocks(fullgraph=True, backend=backend)
            self.compiled = True

    @property
    def needs_warm_up(self) -> bool:
        """Whether `warm_up` has work to do (compiled blocks not yet run at the preview size; streamed
        blocks only where they compile around the offloading hooks, engine/speed.py streamed_compile)."""
        from shotsketch.engine.speed import streamed_compile

        if self.memory_plan.streams_blocks and not (self.compiled and streamed_compile()):
            return False
        return (self.compiled or self.attention == "flash4") and not self._warmed

    def warm_up(self, width: int = 832, height: int = 480, frames: int = 17) -> bool:
        """Compile the preview-size forward now (the app calls this on its worker thread right after
        loading, while the user is still writing the first prompt): with the persistent cache that
        is ~6 s at each start, ~20 s the very first time, otherwise paid by the first preview.
        Also builds the fast decoder's kernels. Returns whether there was anything to warm up."""
        self.load()
        if not self.needs_warm_up:
            return False
        from shotsketch.engine.guidance import TOKEN_STRIDE, latent_frame_count

        self._warmed = True
        t0 = time.perf_counter()
        tr = self._pipe.transformer
        dev, dtype = torch.device(self.device.device), self.device.dtype
        lat_f, lat_h, lat_w = latent_frame_count(frames), height // (TOKEN_STRIDE // 2), width // (TOKEN_STRIDE // 2)
        # a step-distilled model runs its jobs without CFG (_generate): a batch of one
        request = GenerationRequest("warm-up", "blurry", width=width, height=height, frames=frames, steps=1,
                                    guidance=1.0 if self.schedule else 5.0)
        batch = 2 if self.batches_cfg(request) else 1  # the shape the real call will have
        if self.memory_plan.streams_blocks:
            # streamed blocks compile around diffusers' offloading hooks in a job's own context
            # (_generate_with_fallback): one step of an unguided preview, then of a guided one
            self._warm_up_job(request)
            self._warm_up_guided(width, height, frames)
            log.info("warmed up the streamed %dx%dx%d forward in %.1fs", width, height, frames, time.perf_counter() - t0)
            return True
        with torch.inference_mode():
            x = torch.randn(batch, tr.config.in_channels, lat_f, lat_h, lat_w, device=dev, dtype=dtype)
            text = torch.zeros(batch, MAX_SEQUENCE_LENGTH, tr.config.text_dim, device=dev, dtype=dtype)
            tr(hidden_states=x, timestep=torch.full((batch,), 999.0, device=dev), encoder_hidden_states=text,
               return_dict=False)
            vae = self._pipe.vae
            decoder = self._decoder_for(dev)
            if decoder is not None:
                decoder.decode(torch.zeros(1, vae.config.z_dim, 2, lat_h, lat_w, device=dev, dtype=vae.dtype))
        if self.compiled:  # a sketch's preview runs its own compiled variant of the blocks: build it now too
            self._warm_up_guided(width, height, frames)
        log.info("warmed up the compiled %dx%dx%d forward in %.1fs", width, height, frames, time.perf_counter() - t0)
        return True

    def _warm_up_guided(self, width: int, height: int, frames: int) -> None:
        """One step of a preview with a sketch, so that the first guided preview finds its blocks compiled."""
        from shotsketch.core.layout import Box, Layout, Subject

        sketch = Layout(subjects=(Subject.static("ball", Box(0.25, 0.25, 0.75, 0.75)),)).to_json()
        self._warm_up_job(GenerationRequest("a ball", "blurry", width=width, height=height, frames=frames, steps=1,
                                            layout_json=sketch, guidance_strength=1.0))

    def _warm_up_job(self, request: GenerationRequest) -> None:
        final = self.generate(request)
        if not isinstance(final, JobFinished):
            log.warning("warming up the %s preview failed: %s", "guided" if request.layout_json else "unguided",
                        getattr(final, "message", final))

    def unload(self) -> None:
        self._pipe = self._text_pipe = self._i2v = self._previewer = self._fast_decoder = self._fp8_swap = None
        self._embed_cache.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def pipeline(self):  # noqa: ANN201 - the WanPipeline that denoises (no text encoder)
        self.load()
        return self._pipe

    @property
    def text_pipeline(self):  # noqa: ANN201
        self.load()
        return self._text_pipe

    # ------------------------------------------------------------------ prompts
    def encode_prompts(self, prompt: str, negative: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt and negative embeddings; each text from the LRU cache when it was seen before
        (a new prompt with the usual negative encodes one text, not two)."""
        self.load()
        texts = list(dict.fromkeys((prompt, negative)))
        missing = [t for t in texts if self._cache_key(t) not in self._embed_cache]
        for text in texts:  # mark the hits used first: encoding the other one must not evict them
            if text not in missing:
                self._embed_cache.move_to_end(self._cache_key(text))
        for text in missing:  # a streamed encoder (memory plans) brings its blocks to the GPU itself
            self._remember(self._cache_key(text), self._encode_text(text))
        # both are the newest entries now, and the cache holds at least two texts
        return self._cached(prompt), self._cached(negative)

    def _cache_key(self, text: str) -> tuple:
        return (self.source.model_id, text, MAX_SEQUENCE_LENGTH, str(self.device.dtype))

    def _cached(self, text: str) -> torch.Tensor:
        key = self._cache_key(text)
        self._embed_cache.move_to_end(key)
        return self._embed_cache[key]

    def _remember(self, key: tuple, value: torch.Tensor) -> None:
        self._embed_cache[key] = value
        while len(self._embed_cache) > max(2, self._embed_cache_size):
            self._embed_cache.popitem(last=False)

    def _encode_text(self, text: str) -> torch.Tensor:
        """What WanPipeline.encode_prompt gives for one text ([1, 512, dim], zeros after the text's
        tokens), with the encoder run over the text's tokens only instead of all 512 positions: the
        padding is masked out of every real token's attention and its outputs are zeroed anyway, so
        the result is the same (float rounding apart) for a fraction of the work."""
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        pipe = self._text_pipe
        self.text_encoder_calls += 1
        tokens = pipe.tokenizer([prompt_clean(text)], padding="max_length", max_length=MAX_SEQUENCE_LENGTH,
                                truncation=True, add_special_tokens=True, return_attention_mask=True,
                                return_tensors="pt")
        n = max(1, int(tokens.attention_mask.sum()))
        device = torch.device(self.device.device)
        with torch.inference_mode():
            hidden = pipe.text_encoder(tokens.input_ids[:, :n].to(device),
                                       tokens.attention_mask[:, :n].to(device)).last_hidden_state
            out = torch.zeros(1, MAX_SEQUENCE_LENGTH, hidden.shape[-1], device=device, dtype=self.device.dtype)
            out[:, :n] = hidden.to(self.device.dtype)
        return out

    # ------------------------------------------------------------------ generation
    def recipe(self, request: GenerationRequest) -> dict[str, Any]:
        model: dict[str, Any] = {"id": self.source.model_id, "kind": self.source.kind.value, "revision": self.revision}
        if self.source.is_demo:
            model["label"] = DEMO_LABEL
        inputs: dict[str, Any] = {}
        if request.image is not None:
            inputs["image_sha256"] = file_sha256(request.image)  # a replay can tell if the image changed
        return {
            **inputs,
            "schema_version": RECIPE_SCHEMA_VERSION,
            "app": "shotsketch",
            "app_version": __version__,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "request": request.to_dict(),
            "model": model,
            "device": {"name": self.device.name, "kind": self.device.device, "dtype": str(self.device.dtype).removeprefix("torch."),
                       "memory_plan": self.memory_plan.value},
            "libraries": library_versions(),
        }

    def generate(
        self,
        request: GenerationRequest,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        job_id: str | None = None,
    ) -> FinalEvent:
        """Run one request; emit events; return the final one. Expected failures become JobFailed."""
        job_id = job_id or uuid.uuid4().hex[:12]
        emit: EventSink = on_event or (lambda _e: None)
        cancel = cancel or CancelToken()
        with self._lock:
            try:
                final: FinalEvent = self._generate_with_fallback(request, emit, cancel, job_id)
            except RequestError as exc:
                final = JobFailed(job_id, str(exc))
            except Interrupted as stop:  # cancelled inside a step or the decode (engine/cancel.py)
                final = JobCancelled(job_id, stop.steps_done)
            except ModelError as exc:
                final = JobFailed(job_id, str(exc))
            except torch.cuda.OutOfMemoryError as exc:
                nxt = self.memory_plan.leaner()
                hint = (f"try the memory plan '{nxt.value}' ({nxt.label}), a smaller size or fewer frames"
                        if nxt else "try a smaller size or fewer frames")
                log.warning("out of GPU memory in job %s", job_id, exc_info=True)
                final = JobFailed(job_id, f"the GPU ran out of memory with the plan '{self.memory_plan.value}'; {hint}",
                                  detail=traceback.format_exc(), suggestion=nxt.value if nxt else None)
            except Exception as exc:  # noqa: BLE001 - a job must end in an event, never a dead worker
                log.exception("generation %s failed", job_id)
                final = JobFailed(job_id, f"generation failed: {exc.__class__.__name__}: {exc}",
                                  detail=traceback.format_exc())
            finally:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        emit(final)
        return final

    def _generate_with_fallback(self, request: GenerationRequest, emit: EventSink, cancel: CancelToken,
                                job_id: str) -> FinalEvent:
        """Run the job; on CUDA out-of-memory move to the next leaner memory plan and run it again
        (when `auto_fallback` is on and the user did not pin a plan), instead of failing the job.
        A failed compile runs this job again uncompiled; the next job compiles again."""
        from shotsketch.engine.speed import blocks_compiled_through_hooks, eager_blocks, streamed_compile

        self._eager_job = self._loose_job = False
        while True:
            try:
                if self._eager_job:
                    context = eager_blocks(self._pipe.transformer)
                elif self._loose_job:
                    context = blocks_compiled_through_hooks(self._pipe.transformer, self.speed.compile_backend)
                else:
                    context = _null_context()
                with context:
                    return self._generate(request, emit, cancel, job_id)
            except _RunUncompiled:
                self._loose_job = streamed_compile()
                self._eager_job = not self._loose_job
                log.info("plan %s streams the transformer's blocks: they run %s",
                         self.memory_plan.value, "compiled around the offloading hooks" if self._loose_job else "uncompiled")
            except torch.cuda.OutOfMemoryError:
                nxt = self.memory_plan.leaner()
                if self._prediction is not None:  # the planner missed: say by how much it thought it fit
                    log.warning("memory prediction missed: plan %s predicted %.2f GiB and ran out of memory",
                                self._prediction.plan.value, self._prediction.peak / 2**30)
                if not self.auto_fallback or nxt is None or cancel.cancelled:
                    raise
                log.warning("out of GPU memory with plan %s; retrying job %s with %s",
                            self.memory_plan.value, job_id, nxt.value)
                self.replan(nxt)
            except Exception as exc:
                from shotsketch.engine.attention import is_kernel_error, uninstall
                from shotsketch.engine.speed import is_compile_error, is_recompile_limit

                if self.attention in ("flash4", "cudnn") and is_kernel_error(exc) and not cancel.cancelled:
                    # FlashAttention-4 (or cuDNN's attention) could not build or run its kernel here:
                    # PyTorch's choice of attention from now on
                    log.warning("%s attention failed (%s); using PyTorch's attention from now on",
                                self.attention, exc.__class__.__name__, exc_info=True)
                    uninstall(self._pipe.transformer)
                    self.attention = "sdpa"
                    continue
                if not (self.compiled and is_compile_error(exc)) or self._eager_job or cancel.cancelled:
                    raise
                # no C compiler, no Triton, an op it cannot compile, too many recompiles: this job runs
                # again uncompiled; the next job compiles again
                log.warning("torch.compile failed (%s); running this job uncompiled", exc.__class__.__name__,
                            exc_info=True)
                if is_recompile_limit(exc):
                    torch._dynamo.reset()  # the next job compiles afresh instead of meeting the limit again
                self._eager_job, self._loose_job = True, False

    def replan(self, plan: MemoryPlan) -> None:
        """Move the loaded models to another memory plan (used on out-of-memory)."""
        self.memory_plan = plan
        if self._pipe is None:
            return
        self._pipe.remove_all_hooks()
        _remove_group_offloading(self._pipe.transformer)  # a leaner plan streamed its blocks
        self._i2v = None
        if self._fp8_swap is not None:  # the FP8 copies live on the GPU; leaner plans do without them
            self._fp8_swap.release()
            self._fp8_swap = None
        for module in (self._pipe.transformer, self._pipe.vae, self._text_pipe.text_encoder):
            module.to("cpu")
        self._embed_cache.clear()  # cached embeddings may live on the GPU
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self._apply_memory_plan()

    def _generate(self, request: GenerationRequest, emit: EventSink, cancel: CancelToken, job_id: str) -> FinalEvent:
        validate_request(request)
        self.load()
        if self.schedule:  # a distilled model runs its own few steps, without classifier-free guidance
            import dataclasses

            request = dataclasses.replace(request, steps=len(self.schedule), guidance=1.0)
            self._pipe.scheduler.generator = torch.Generator("cpu").manual_seed(request.seed + 1)
        from shotsketch.engine.lora import loras_of

        loras = self._apply_loras(loras_of(request))
        self._prediction = self._fit_plan(request)
        if self.compiled and not (self._eager_job or self._loose_job) and self.memory_plan.streams_blocks:
            raise _RunUncompiled  # before any work: no full-graph compile under this plan
        if self._prediction is not None:
            torch.cuda.reset_peak_memory_stats()
        emit(JobStarted(job_id, request, request.steps))
        if cancel.cancelled:
            return JobCancelled(job_id, 0)
        prompt_embeds, negative_embeds = self.encode_prompts(request.prompt, request.negative_prompt)
        pipe = self._pipe
        if self._previewer is None:
            from shotsketch.engine.preview import LatentPreviewer

            self._previewer = LatentPreviewer(pipe.vae)
        self._previewer.finish()  # nothing left in flight from a job that failed
        t0 = time.perf_counter()
        state = {"step": 0}

        def on_step_end(p, i, _t, kwargs):  # noqa: ANN001
            state["step"] = i + 1
            elapsed = time.perf_counter() - t0
            eta = elapsed / (i + 1) * (request.steps - i - 1)
            preview = None
            try:
                preview = self._previewer.latest(kwargs["latents"])  # no wait for the GPU on CUDA
            except Exception:  # noqa: BLE001 - a preview must never fail a job
                log.debug("preview failed", exc_info=True)
            emit(JobStep(job_id, i + 1, request.steps, elapsed, eta, preview))
            if cancel.cancelled:
                p._interrupt = True
            return {}

        generator = torch.Generator("cpu").manual_seed(request.seed)
        common = dict(
            prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds,
            height=request.height, width=request.width, num_frames=request.frames,
            num_inference_steps=request.steps, guidance_scale=request.guidance, generator=generator,
            output_type="latent", callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"],
            max_sequence_length=MAX_SEQUENCE_LENGTH,
        )
        extras: dict[str, Any] = {}
        fp8 = self.uses_fp8(request)
        with (torch.inference_mode(), self._attention_hooks(request, extras), self._uniform_timestep(request),
              self._fp8_context() if fp8 else _null_context(),
              self._batched_cfg(request, prompt_embeds, negative_embeds) as cfg_stats,
              cancel_points(pipe.transformer, pipe.vae, cancel, state)):
            if request.image is not None:
                image = load_first_frame(request.image, request.width, request.height)
                latents = self._image_pipe()(image=image, **common).frames
            else:
                latents = pipe(**common).frames
            self._previewer.finish()
            if cancel.cancelled:
                return JobCancelled(job_id, state["step"])
            self._steps_done()
            frames = self.decode(latents)
        recipe = self.recipe(request)
        recipe["speed"] = {"fp8_matmuls": fp8, "compiled": self.compiled and not self._eager_job, "attention": self.attention,
                           "batched_cfg_steps": cfg_stats["batched"]}
        if "guidance" in extras:
            recipe["layout_guidance"] = dict(extras["guidance"], adherence=extras.get("adherence", {}))
        memory = self._memory_report(self._prediction)
        if memory:
            recipe["memory"] = memory
        if loras:
            recipe["loras"] = loras
        if self.schedule:
            recipe["schedule"] = {"kind": "distilled (DMD)", "timesteps": list(self.schedule), "steps": len(self.schedule)}
        return JobFinished(job_id, frames, recipe, latents=latents, heatmaps=extras.get("heatmaps", {}),
                           adherence=extras.get("adherence", {}), guidance=extras.get("guidance", {}))

    def _apply_loras(self, choices: list) -> list[dict]:
        """Fuse the request's LoRAs into the transformer (nothing to do when they are fused already);
        FP8 copies of changed weights are made again."""
        before = self._loras.active
        entries = self._loras.apply(self._pipe, choices)
        if self._loras.active != before and self._fp8_swap is not None:
            self._fp8_swap.release()
            self._fp8_swap = None
        return entries

    def batches_cfg(self, request: GenerationRequest) -> bool:
        """CFG as one batch-2 forward: short forwards (previews), plans that keep the transformer on
        the GPU, and the plan that streams the blocks, where it copies each block once a step instead
        of once a forward (SHOTSKETCH_STREAMED_CFG_BATCH=0 turns that off). Layout
        guidance biases only the prompt's row of such a batch (engine/guidance.py)."""
        from shotsketch.engine.guidance import TOKEN_STRIDE, latent_frame_count
        from shotsketch.engine.speed import streamed_cfg_batch

        plans = (MemoryPlan.ALL_ON_GPU, MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.CPU)
        if self.memory_plan not in plans + ((MemoryPlan.GROUP_OFFLOAD,) if streamed_cfg_batch() else ()):
            return False
        if request.guidance <= 1.0:
            return False
        tokens = latent_frame_count(request.frames) * (request.height // TOKEN_STRIDE) * (request.width // TOKEN_STRIDE)
        return 0 < tokens <= self.speed.batch_cfg_max_tokens

    def _batched_cfg(self, request: GenerationRequest, cond: torch.Tensor, uncond: torch.Tensor):  # noqa: ANN202
        import contextlib

        from shotsketch.engine.speed import batched_cfg

        if not self.batches_cfg(request):
            return contextlib.nullcontext({"batched": 0})
        return batched_cfg(self._pipe.transformer, cond, uncond)

    def uses_fp8(self, request: GenerationRequest) -> bool:
        """Fast-mode requests run the transformer blocks' matrix products in FP8 where the GPU has FP8
        units and the plan keeps the whole model on it (the FP8 copy of the weights needs ~5 GB more)."""
        if not (request.is_fast and self.speed.fp8_fast_mode and self.device.device == "cuda"):
            return False
        if self.memory_plan is not MemoryPlan.ALL_ON_GPU:
            return False
        if self.footprint is not None and self.device.free_bytes is not None:  # the FP8 copy must fit too
            from shotsketch.engine.memory import predict_peak

            job = JobShape(request.width, request.height, request.frames, compiled=self.compiled,
                           batched_cfg=self.batches_cfg(request), guided=bool(request.layout_json), fp8=True)
            if predict_peak(MemoryPlan.ALL_ON_GPU, job, self.footprint).needed > self.device.free_bytes:
                return False
        from shotsketch.engine.fp8 import fp8_supported

        return fp8_supported(self.device.device)

    def _fp8_context(self):  # noqa: ANN202
        from shotsketch.engine.fp8 import FP8Swap

        if self._fp8_swap is None:
            self._fp8_swap = FP8Swap(self._pipe.transformer)
        return self._fp8_swap.active()

    def _image_pipe(self):  # noqa: ANN202
        if self._i2v is None:
            from diffusers import WanImageToVideoPipeline

            p = self._pipe
            self._i2v = WanImageToVideoPipeline(
                tokenizer=p.tokenizer, text_encoder=None, vae=p.vae, scheduler=p.scheduler,
                transformer=p.transformer, image_encoder=None, image_processor=None, expand_timesteps=True,
            )
            self._i2v.set_progress_bar_config(disable=True)
        return self._i2v

    def _uniform_timestep(self, request: GenerationRequest):  # noqa: ANN202
        from shotsketch.engine.speed import uniform_timestep

        on = self.speed.uniform_timestep and request.image is None
        return uniform_timestep(self._pipe.transformer) if on else _null_context()

    def _steps_done(self) -> None:
        """What only the steps need goes before the decode, the peak of a preview's memory on a card
        that keeps every model: the text's keys and values (0.35 GiB, engine/text_kv.py), which the
        planner counts in the steps only (bench/RESULTS.md session 9: each all-on-GPU preview peaked
        0.35 GiB over its prediction while they stayed)."""
        from shotsketch.engine.text_kv import TextKV

        for hook in self.attention_hooks:
            if isinstance(hook, TextKV):
                hook.clear()

    def _attention_hooks(self, request: GenerationRequest, extras: dict[str, Any]):  # noqa: ANN202
        """A context manager for whatever attention processors a request needs (layout guidance)."""
        import contextlib

        stack = contextlib.ExitStack()
        for hook in self.attention_hooks:
            stack.enter_context(hook(self, request, extras))
        return stack

    def _decoder_for(self, device: torch.device):  # noqa: ANN202 - FastDecoder | None
        """The fast decode where it applies: CUDA, untiled plans, the Wan 2.2 VAE."""
        from shotsketch.engine.vae_decode import FastDecoder, supports

        vae = self._pipe.vae
        wanted = self.speed.fast_decode if self.speed.fast_decode is not None else device.type == "cuda"
        if not wanted or getattr(vae, "use_tiling", False):
            return None
        if self._fast_decoder is None or self._fast_decoder.vae is not vae:
            if not supports(vae):
                return None
            self._fast_decoder = FastDecoder(vae)
        return self._fast_decoder

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalized latents -> uint8 frames [count, height, width, 3], as the pipeline decodes them."""
        vae = self._pipe.vae
        device = next(vae.parameters()).device if self.memory_plan is not MemoryPlan.MODEL_OFFLOAD else torch.device(self.device.device)
        lat = latents.to(device=device, dtype=vae.dtype)
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(lat.device, lat.dtype)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(lat.device, lat.dtype)
        lat = lat / inv_std + mean
        planned_tiles = (self._prediction is not None and self._prediction.tiled_decode
                         and not getattr(vae, "use_tiling", False))
        try:
            decoder = None if planned_tiles else self._decoder_for(lat.device)
            if decoder is not None:
                video = decoder.decode(lat)
            elif planned_tiles:  # the planner found no room for the untiled decode beside the transformer
                video = _tiled_decode(vae, lat)
            else:
                video = vae.decode(lat, return_dict=False)[0]  # [1, 3, F, H, W] in [-1, 1]
        except torch.cuda.OutOfMemoryError:
            if getattr(vae, "use_tiling", True) or planned_tiles:
                raise
            # The denoised latents are kept: only this decode moves to tiles (slower, far less memory).
            log.warning("memory prediction missed: out of GPU memory decoding untiled; decoding in tiles",
                        exc_info=True)
            torch.cuda.empty_cache()
            video = _tiled_decode(vae, lat)
        return frames_as_uint8(video)


class _RunUncompiled(Exception):  # noqa: N818 - a signal inside the engine, never seen outside it
    """The job's plan streams the transformer's blocks: run it again with them compiled around the
    offloading hooks (engine/speed.py streamed_compile) or uncompiled."""


def _remove_group_offloading(module: torch.nn.Module) -> None:
    """Take diffusers' group offloading off a module (its weights stay where they are: on the CPU)."""
    for sub in module.modules():
        registry = getattr(sub, "_diffusers_hook", None)
        if registry is not None:
            # the layer execution trackers are put on every block when the offloading goes on with a
            # CUDA stream and come off after its first forward: a plan changed before any forward
            # (a job planned leaner than the load) leaves them, and offloading again then fails
            for name in ("layer_execution_tracker", "lazy_prefetch_group_offloading", "group_offloading"):
                registry.remove_hook(name, recurse=False)


def _memory_held_by_others() -> int:
    """Bytes in use on the current GPU that this process's PyTorch allocator does not hold."""
    free, total = torch.cuda.mem_get_info()
    return max(0, total - free - torch.cuda.memory_reserved())


def _tiled_decode(vae, latents: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - AutoencoderKLWan
    """diffusers' tiled decode for this one call, the VAE's setting restored after."""
    was = getattr(vae, "use_tiling", False)
    vae.enable_tiling()
    try:
        return vae.decode(latents, return_dict=False)[0]
    finally:
        if not was:
            vae.disable_tiling()


def frames_as_uint8(video: torch.Tensor, chunk_bytes: int = 64 * 2**20) -> np.ndarray:
    """[1, 3, F, H, W] in [-1, 1] -> uint8 frames [F, H, W, 3] on the host, a few frames at a time: the
    float copy of a 720p clip (1.3 GB, and as much again for each operation) is never on the GPU whole.
    The same values as converting the whole clip at once."""
    v = video[0]
    c, count, h, w = v.shape
    out = torch.empty((count, h, w, c), dtype=torch.uint8)
    step = max(1, chunk_bytes // max(1, c * h * w * 4))
    for i in range(0, count, step):
        chunk = ((v[:, i:i + step].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        out[i:i + step] = chunk.permute(1, 2, 3, 0).cpu()
    return out.numpy()
