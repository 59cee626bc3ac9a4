"""From "edit prompt" to "take saved in the library" with Qt made unimportable.

The flow runs in a fresh Python whose ``PySide6`` (and ``shotsketch.ui``, ``qasync``) cannot be
imported at all: an import hook refuses them before anything of Shotsketch is loaded. (In this
test process pytest-qt has already imported PySide6, so the check needs a clean interpreter.)"""

import json
import subprocess
import sys
import textwrap

from shotsketch.core.lint import DEFAULT_NEGATIVE

FLOW = textwrap.dedent('''
    import importlib.abc, json, sys

    class NoQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("PySide6", "shiboken6", "qasync") or name.startswith("shotsketch.ui"):
                raise ImportError(f"{name} is blocked: the application layer must run without Qt")
            return None

    sys.meta_path.insert(0, NoQt())

    from shotsketch.app.jobs import run_queued
    from shotsketch.app.session import AppSession
    from shotsketch.core.layout import Box, Layout, Subject
    from shotsketch.core.library import Library
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.sources import ModelSource

    library = Library.open(sys.argv[1])
    session = AppSession(library, call_later=lambda delay, fn: None)  # autosave: flushed by generate
    session.new_project("Car chase")
    shot = session.shot
    shot.set_prompt("A red car drives along a coast road")
    shot.set_layout(Layout(subjects=(Subject.moving("red car", Box(0.02, 0.4, 0.25, 0.7),
                                                    Box(0.75, 0.4, 0.98, 0.7)),)))
    shot.update_settings(width=96, height=64, frames=5, steps=2, seed=11)
    [job] = session.generate(1)
    engine = Generator(ModelSource.parse("demo"), device="cpu")
    engine.load()
    [ended] = run_queued(session.queue, engine)
    take = ended.take
    print(json.dumps({
        "take": take.id, "file": str(take.file), "thumbnail": str(take.thumbnail),
        "takes_of_variant": [t.id for t in library.list_takes(job.variant_id)],
        "request": take.recipe["request"], "output": take.recipe["output"],
        "jobs_left": len(library.list_jobs()),
        "saved_prompt": library.load_shot_state(shot.shot_id)["prompt"],
        "qt_loaded": sorted(m for m in sys.modules if m.startswith(("PySide6", "shotsketch.ui"))),
    }))
''')


def test_edit_prompt_to_take_in_the_library_without_qt(tmp_path):
    done = subprocess.run([sys.executable, "-c", FLOW, str(tmp_path / "library.sqlite3")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["qt_loaded"] == []
    from pathlib import Path

    clip = Path(result["file"])
    assert clip.is_file() and Path(result["thumbnail"]).is_file() and clip.with_name(clip.name + ".json").is_file()
    assert result["takes_of_variant"] == [result["take"]] and result["jobs_left"] == 0
    request = result["request"]
    assert request["prompt_as_written"] == "A red car drives along a coast road"
    assert request["prompt"].startswith("A red car drives along a coast road. The red car")  # the clause added
    assert request["negative_prompt"] == DEFAULT_NEGATIVE and request["seed"] == 11
    assert result["output"]["frames"] == 5
    assert result["saved_prompt"] == "A red car drives along a coast road"
