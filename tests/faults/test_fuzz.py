"""Hypothesis over what a person hands the app — layouts, recipes, model folders' model_index.json
and command-line arguments — asserting the exit-code contract: success, or exit 2 with one line;
never an "unexpected error", a traceback or a stray file. ``SHOTSKETCH_FAULTS_LONG=1`` runs many
more examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .cli import assert_refused_or_done, run_cli
from .conftest import LONG, count

EXAMPLES = 400 if LONG else 25
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text as a shell or a hand-edited file hands it over: lone surrogates, NUL, control characters.
texts = st.one_of(st.text(max_size=40), st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
                  st.sampled_from(["", " ", "\udcff", "a\x00b", "\u202e", "ball\ud800", "x" * 30_000]))
numbers = st.one_of(st.integers(), st.integers(min_value=10**30, max_value=10**400), st.floats(allow_nan=True),
                    st.sampled_from([0, -1, 1, 0.5, 1e308, -1e308, 2**63, 2**64]))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(texts, inner, max_size=4)), max_leaves=12)


def _stray(folder: Path, expected: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in expected)


# -- layouts ----------------------------------------------------------------------------------------

BASE_LAYOUT = {"schema_version": 1, "aspect": 1.7333,
               "subjects": [{"name": "ball", "color": "#d33",
                             "keyframes": [{"t": 0, "box": [0.1, 0.4, 0.3, 0.6]}, {"t": 1, "box": [0.7, 0.4, 0.9, 0.6]}]}]}


@st.composite
def layouts(draw) -> str:  # noqa: ANN001
    data = json.loads(json.dumps(BASE_LAYOUT))
    target = draw(st.sampled_from(["root", "aspect", "subjects", "subject", "name", "color", "keyframes", "t", "box",
                                   "coordinate", "extra", "raw"]))
    value = draw(values)
    subject = data["subjects"][0]
    match target:
        case "root":
            data = value
        case "aspect" | "subjects" | "extra":
            data["extra_field" if target == "extra" else target] = value
        case "subject":
            data["subjects"][0] = value
        case "name" | "color" | "keyframes":
            subject[target] = value
        case "t" | "box":
            subject["keyframes"][0][target] = value
        case "coordinate":
            subject["keyframes"][1]["box"][draw(st.integers(0, 3))] = value
        case "raw":
            return draw(st.text(max_size=200))
    return json.dumps(data)


@fuzz
@given(text=layouts())
def test_layout_describe_keeps_the_contract(tmp_path_factory, capsys, text):
    folder = tmp_path_factory.mktemp("layout")
    path = folder / "layout.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    run = run_cli(["layout", "describe", str(path)], capsys)
    count("inputs")
    assert_refused_or_done(run)
    assert _stray(folder, {"layout.json"}) == []


# -- recipes ----------------------------------------------------------------------------------------

BASE_RECIPE = {"schema_version": 1, "model": {"kind": "demo", "id": "demo", "revision": None},
               "request": {"prompt": "a ball", "negative_prompt": "", "width": 64, "height": 64, "frames": 1,
                           "steps": 1, "guidance": 5.0, "seed": 1, "fps": 24}}
REQUEST_FIELDS = ["prompt", "negative_prompt", "width", "height", "frames", "steps", "guidance", "seed", "fps",
                  "layout_json", "guidance_strength", "image", "extra", "prompt_as_written", "unknown"]


@st.composite
def recipes(draw) -> dict:  # noqa: ANN001
    data = json.loads(json.dumps(BASE_RECIPE))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(data, dict):
            break
        where = draw(st.sampled_from(["request", "request", "request", "schema_version", "model", "model.id", "root"]))
        value = draw(values)
        if where == "request":
            field = draw(st.sampled_from(REQUEST_FIELDS))
            if field == "layout_json" and draw(st.booleans()):
                value = draw(layouts())
            if isinstance(data.get("request"), dict):
                data["request"][field] = value
        elif where == "model.id":
            data["model"] = {"kind": "folder", "id": value}
        elif where == "root":
            data = value
        else:
            data[where] = value
    return data


@fuzz
@given(recipe=recipes())
def test_generate_from_a_recipe_keeps_the_contract(tmp_path_factory, capsys, no_generation, recipe):
    folder = tmp_path_factory.mktemp("recipe")
    path = folder / "in.mp4.json"
    path.write_text(json.dumps(recipe, ensure_ascii=True), encoding="utf-8")
    run = run_cli(["generate", "--recipe", str(path), "--out", str(folder / "out.mp4")], capsys)
    count("inputs")
    assert_refused_or_done(run)
    assert _stray(folder, {"in.mp4.json"}) == []


# -- model folders ----------------------------------------------------------------------------------

INDEX_KEYS = ["_class_name", "_diffusers_version", "transformer", "vae", "text_encoder", "tokenizer", "scheduler",
              "transformer_2", "extra_component"]


@pytest.fixture(scope="module")
def model_folder(saved_demo_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzzmodel") / "model"
    shutil.copytree(saved_demo_folder, folder)
    return folder


@fuzz
@given(key=st.sampled_from(INDEX_KEYS), value=values, whole=st.booleans())
def test_model_folder_checks_keep_the_contract(model_folder, capsys, no_generation, key, value, whole):
    from shotsketch.engine.sources import check_model_folder

    index_path = model_folder / "model_index.json"
    original = index_path.read_text()
    try:
        index = json.loads(original)
        index[key] = value
        index_path.write_text(json.dumps(value if whole else index), encoding="utf-8")
        problems = check_model_folder(model_folder)
        assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
        run = run_cli(["generate", "a ball", "--model", str(model_folder), "--out",
                       str(model_folder.parent / "out.mp4")], capsys)
        count("inputs")
        assert_refused_or_done(run)
        assert (run.code == 0) == (not problems)
    finally:
        index_path.write_text(original)


# -- command-line arguments -------------------------------------------------------------------------

OPTIONS = ["--width", "--height", "--frames", "--steps", "--guidance", "--seed", "--fps", "--negative", "--format",
           "--strength", "--image", "--layout", "--memory-plan", "--model"]
arg_texts = st.one_of(texts.filter(lambda t: len(t) < 2000), st.integers().map(str),
                      st.integers(min_value=10**20, max_value=10**400).map(str), st.floats().map(str),
                      st.sampled_from(["-1", "0", "1e999", "nan", "inf", "0x20", "32", "1_000", "", "demo"]))


@fuzz
@given(prompt=arg_texts, options=st.lists(st.tuples(st.sampled_from(OPTIONS), arg_texts), max_size=3))
def test_generate_arguments_keep_the_contract(tmp_path_factory, capsys, no_generation, prompt, options):
    folder = tmp_path_factory.mktemp("args")
    argv = ["generate", prompt, "--out", str(folder / "out.mp4")]
    for name, value in options:
        argv += [name, value]
    if "--model" not in argv:
        argv += ["--model", "demo"]
    run = run_cli(argv, capsys)
    count("inputs")
    assert_refused_or_done(run)
    assert _stray(folder, set()) == []


@fuzz
@given(prompt=arg_texts, aspect=st.one_of(st.none(), arg_texts), command=st.sampled_from(["draft", "lint"]))
def test_drafting_and_lint_arguments_keep_the_contract(capsys, prompt, aspect, command):
    argv = ["layout", "draft", prompt] if command == "draft" else ["lint", prompt]
    if aspect is not None and command == "draft":
        argv += ["--aspect", aspect]
    run = run_cli(argv, capsys)
    count("inputs")
    assert "unexpected error" not in run.err and "Traceback" not in run.err, run.err[-1000:]
    assert run.code in (0, 1, 2)  # lint exits 1 when a finding is an error (its documented contract)
