"""A step-distilled model in the window: the worker says what it loaded (engine.events.ModelLoaded,
the Generator's schedule), the generate bar shows the model's own steps and stands its steps and
guidance aside, and the Settings choice for a model folder reaches the Generator the worker builds."""

from __future__ import annotations

import pytest

from shotsketch.app.model_options import ModelOptions, load_model_options
from shotsketch.engine.events import ModelLoaded
from shotsketch.ui.worker import GpuWorker

DISTILLED_TEXT = "Distilled model: 3 steps (DMD 1000 / 757 / 522), no CFG"


@pytest.fixture
def distilled_engine(fake_engine_cls):
    engine = fake_engine_cls()
    engine.schedule = (1000, 757, 522)  # as Generator.schedule is after loading a distilled model
    return engine


def test_the_generate_bar_shows_a_distilled_models_own_schedule(make_window, qtbot, distilled_engine):
    window = make_window(engine=distilled_engine)
    bar = window.generate_bar
    assert bar.steps_box.isEnabled() and bar.distilled_label.text() == ""
    with qtbot.waitSignal(window.worker.modelLoaded, timeout=10_000) as loaded:
        window.worker.preload()
    assert loaded.args[0] == ModelLoaded(schedule=(1000, 757, 522))
    assert bar.distilled_label.text().strip() == DISTILLED_TEXT
    assert not bar.steps_box.isEnabled() and not bar.guidance_box.isEnabled()
    assert "runs its own 3 steps without classifier-free guidance" in bar.steps_box.toolTip()
    assert DISTILLED_TEXT in window.status_model.text()
    window.set_model("demo")  # another model: nothing is known of it until it loads
    assert bar.steps_box.isEnabled() and bar.distilled_label.text() == ""
    assert bar.steps_box.toolTip().startswith("Denoising steps")
    assert DISTILLED_TEXT not in window.status_model.text()


def test_an_ordinary_model_leaves_the_steps_and_guidance_to_the_shot(make_window, qtbot, fake_engine):
    window = make_window(engine=fake_engine)
    with qtbot.waitSignal(window.worker.modelLoaded, timeout=10_000) as loaded:
        window.worker.preload()
    assert loaded.args[0] == ModelLoaded(schedule=None)
    assert window.generate_bar.steps_box.isEnabled() and window.generate_bar.guidance_box.isEnabled()
    assert window.generate_bar.distilled_label.text() == ""


def test_the_settings_choice_reaches_the_generator_the_worker_builds(make_window, qtbot, monkeypatch, fake_engine_cls):
    """Settings ▸ Step-distilled model, per model: saved beside the settings, given to
    Generator(distilled=...) by the worker's factory, shown once the model is loaded."""
    import shotsketch.engine.generator as generator_module
    from shotsketch.ui.settings_dialog import SettingsDialog

    made = []

    class RecordingGenerator(fake_engine_cls):
        def __init__(self, source, *, device=None, memory_plan=None, distilled=None):  # noqa: ANN001
            super().__init__()
            made.append((source.describe(), distilled))
            self.schedule = (1000, 757, 522) if distilled else None

    monkeypatch.setattr(generator_module, "Generator", RecordingGenerator)
    window = make_window()
    assert window.model_options.distilled_for("demo") is None
    for index, wanted in ((1, True), (2, False)):
        dialog = SettingsDialog(window.settings, window, model=window.model, model_options=window.model_options)
        dialog.distilled_box.setCurrentIndex(index)
        dialog.save()
        assert dialog.saved_model_options.distilled_for("demo") is wanted
        assert load_model_options().distilled_for("demo") is wanted  # kept in the config folder
        with qtbot.waitSignal(window.worker.modelLoaded, timeout=30_000) as loaded:
            window.apply_settings(dialog.saved_settings, dialog.saved_model_options)
            window.worker.preload()
        assert made[-1][1] is wanted
        assert loaded.args[0].distilled is wanted
        assert window.generate_bar.steps_box.isEnabled() is (not wanted)
    assert make_window().model_options.distilled_for("demo") is False  # a new window reads the choice


def test_settings_offer_as_the_folder_says_by_default(qtbot):
    from shotsketch.core.settings import AppSettings
    from shotsketch.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(AppSettings(), model="/models/fastwan", model_options=ModelOptions())
    qtbot.addWidget(dialog)
    assert dialog.distilled_box.currentData() is None
    assert dialog.edited_model_options() == ModelOptions()
    dialog.distilled_box.setCurrentIndex(1)
    assert dialog.edited_model_options().distilled_for("/models/fastwan") is True
    assert dialog.edited_model_options().distilled_for("/models/other") is None


def test_the_worker_reports_the_demo_generators_distilled_schedule(qtbot):
    """The real Generator: marked distilled, its schedule comes back in the load event."""
    from shotsketch.ui.worker import generator_factory

    worker = GpuWorker(generator_factory("demo", device="cpu", distilled=True))
    try:
        with qtbot.waitSignal(worker.modelLoaded, timeout=120_000) as loaded:
            worker.preload()
        assert loaded.args[0] == ModelLoaded(schedule=(1000, 757, 522))
        assert worker.loaded_model == loaded.args[0]
    finally:
        worker.shutdown()


def test_a_distilled_choice_renders_on_one_gpu_where_the_gpu_workers_cannot_take_it(monkeypatch, caplog,
                                                                                   fake_engine_cls):
    import shotsketch.engine.generator as generator_module
    import shotsketch.engine.parallel_client as parallel_client
    from shotsketch.ui.worker import generator_factory

    made = []

    class RecordingGenerator(fake_engine_cls):
        def __init__(self, source, *, device=None, memory_plan=None, distilled=None):  # noqa: ANN001
            super().__init__()
            made.append(distilled)

    monkeypatch.setattr(generator_module, "Generator", RecordingGenerator)
    monkeypatch.setattr(parallel_client, "GpuWorkers", lambda *a, **k: made.append("workers"))
    monkeypatch.setattr(parallel_client, "gpu_count_problem", lambda *a: None)
    with caplog.at_level("WARNING"):
        engine = generator_factory("demo", gpus=2, distilled=True)()
    assert isinstance(engine, RecordingGenerator) and made == [True]
    assert "rendering on one GPU" in caplog.text
    generator_factory("demo", gpus=2)()  # as the folder says: the GPU workers
    assert made == [True, "workers"]
