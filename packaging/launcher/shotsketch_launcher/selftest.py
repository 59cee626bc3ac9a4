"""The environment check, run by the new environment's Python before the launcher switches to it.

It prints one JSON line per check: imports, ffmpeg, a small computation on the chosen device, and
the window (Qt's platform plugin) last, because a missing plugin library aborts the process. It does
not load the model: a model's problems never undo an install.
"""

SELF_TEST = r'''
import json, os, subprocess, sys

backend = sys.argv[1] if len(sys.argv) > 1 else "cpu"


def report(check, ok, detail=""):
    print(json.dumps({"check": check, "ok": ok, "detail": str(detail)[:400]}), flush=True)
    if not ok:
        sys.exit(1)


try:
    import torch, diffusers, transformers, shotsketch
    import shotsketch.engine.generator
    report("imports", True, f"torch {torch.__version__}, diffusers {diffusers.__version__}, shotsketch {shotsketch.__version__}")
except Exception as exc:
    report("imports", False, f"{type(exc).__name__}: {exc}")

try:
    import imageio_ffmpeg
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([exe, "-hide_banner", "-version"], check=True, capture_output=True, timeout=60)
    report("ffmpeg", True, os.path.basename(exe))
except Exception as exc:
    report("ffmpeg", False, f"{type(exc).__name__}: {exc}")

try:
    device = {"cpu": "cpu", "mps": "mps"}.get(backend, "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("torch sees no GPU: check the driver (nvidia-smi / rocminfo), or choose another backend")
    if device == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("Metal (MPS) is not available on this Mac")
    x = torch.randn(64, 64, device=device)
    value = float((x @ x.T).trace().cpu())
    if not value > 0:
        raise RuntimeError("a small matrix product gave a wrong result")
    name = torch.cuda.get_device_name(0) if device == "cuda" else device
    report("kernel", True, f"a matrix product on {name}")
except Exception as exc:
    report("kernel", False, f"{type(exc).__name__}: {exc}")

try:
    from shotsketch.qtcheck import window_problem
    problem = window_problem()
    if problem:
        report("window", False, problem)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("win32", "darwin")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication
    app = QApplication([sys.argv[0]])
    report("window", True, f"Qt platform {app.platformName()}")
except SystemExit:
    raise
except Exception as exc:
    report("window", False, f"{type(exc).__name__}: {exc}")
'''
