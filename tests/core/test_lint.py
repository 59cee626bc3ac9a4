from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shotsketch.core.lint import (
    DEFAULT_NEGATIVE,
    NEGATIVE_PRESETS,
    SPATIAL_WORDS,
    Finding,
    Severity,
    Target,
    estimate_tokens,
    lint,
    spatial_spans,
)

GOOD = (
    "A yellow ball rolls from the left edge to the center of the screen, "
    "while a blue cube remains stationary on the right."
)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def test_a_clear_prompt_with_a_negative_has_no_findings():
    assert lint(GOOD, DEFAULT_NEGATIVE) == []


def test_vague_words_get_spans_and_one_click_rewrites():
    prompt = "A red car is parked near the house, and a bird flies somewhere in the scene."
    found = [f for f in lint(prompt, "x") if f.code == "vague-spatial"]
    assert [prompt[slice(*f.span)] for f in found] == ["near", "somewhere in the scene"]
    assert all(f.severity is Severity.WARNING and f.suggestion for f in found)
    fixed = found[1].apply(found[0].apply(prompt)) if found[0].span > found[1].span else found[0].apply(prompt)
    assert found[0].apply(prompt) == "A red car is parked to the left of the house, and a bird flies somewhere in the scene."
    # near + a part of the frame becomes the right preposition for that part
    f = next(f for f in lint("A lamp stands next to the left edge.", "x") if f.code == "vague-spatial")
    assert f.apply("A lamp stands next to the left edge.") == "A lamp stands at the left edge."
    assert fixed  # applying several fixes from the end keeps spans valid
    assert "vague-spatial" not in codes(lint("Around 5 birds fly from the left to the right.", "x"))



def test_what_the_drafter_places_is_not_vague():
    # "next to", "beside" and "around" are drawn (beside the other subject, circling it), so lint is quiet
    for prompt in ("A lamp stands next to the sofa.", "A dog sits beside a bench.", "A fly buzzes around.",
                   "A butterfly flutters around a flower in the center.", "Five adults stand in a circle around a child."):
        assert "vague-spatial" not in codes(lint(prompt, "x")), prompt
    # "near" still does not say which side
    assert "vague-spatial" in codes(lint("A lamp stands near the sofa.", "x"))


def test_subjects_nothing_places_get_a_rewrite_with_the_sketchs_place():
    prompt = "A dog and a cat."
    found = [f for f in lint(prompt, "x") if f.code == "unplaced-subject"]
    assert [prompt[slice(*f.span)] for f in found] == ["A dog", "a cat"]
    fixed = found[0].apply(prompt)
    assert fixed.startswith("A dog in the center") or fixed.startswith("A dog on the")
    from shotsketch.core.phrasing import draft_layout

    assert "dog" not in draft_layout(fixed).unplaced  # the rewrite places it
    # placed subjects, and the anchors of relations, are not flagged
    assert "unplaced-subject" not in codes(lint(GOOD, "x"))
    assert "unplaced-subject" not in codes(lint("A red car is parked to the left of a small house.", "x"))


def test_crowded_sentences():
    prompt = "A dog, a cat, a horse and a cow stand still."
    f = next(f for f in lint(prompt, "x") if f.code == "too-many-subjects")
    assert "4 subjects (dog, cat, horse, cow)" in f.message and prompt[slice(*f.span)] == prompt
    f = next(f for f in lint("A man runs, jumps, swims and climbs.", "x") if f.code == "too-many-actions")
    assert "4 actions" in f.message
    assert "too-many-actions" in codes(lint("Birds fly, dive and land.", "x"))
    assert "too-many-actions" not in codes(lint("A man takes a walk. He waves.", "x"))
    # the same subjects over two sentences are fine
    assert "too-many-subjects" not in codes(lint("A dog and a cat sit. A horse and a cow graze.", "x"))


def test_conflicting_directions_and_places():
    p = "A ball rolls from the left to the right, then moves left."
    f = next(f for f in lint(p, "x") if f.code == "conflicting-directions")
    assert p[slice(*f.span)] == "moves left" and "The ball moves right" in f.message
    assert "conflicting-directions" in codes(lint("A bird rises from the top to the bottom.", "x"))
    assert "conflicting-directions" in codes(lint("A cube remains stationary and moves from the left to the center.", "x"))
    assert "conflicting-places" in codes(lint("A car on the left, the car on the right.", "x"))
    assert "no-motion" in codes(lint("A boat sails from the left to the left side.", "x"))
    # one path that comes back is not a conflict
    assert lint("A man walks from the right to the left, then back to the right.", "x") == []


def test_missing_negative_prompt_targets_the_negative_field():
    for neg in (None, "", "   "):
        f = next(f for f in lint(GOOD, neg) if f.code == "missing-negative")
        assert f.target is Target.NEGATIVE and f.replacement == DEFAULT_NEGATIVE
        assert f.apply(neg or "") == DEFAULT_NEGATIVE
        assert "distorted limbs, floating objects" in f.suggestion


def test_too_long_marks_the_ignored_tail():
    prompt = " ".join(f"w{i}" for i in range(600))
    f = next(f for f in lint(prompt, "x", count_tokens=lambda s: len(s.split())) if f.code == "too-long")
    assert f.severity is Severity.ERROR and f.span[1] == len(prompt)
    assert prompt[f.span[0]:].split()[0] == "w512"  # the first 512 words are read
    assert "too-long" not in codes(lint(prompt, "x", max_tokens=1000, count_tokens=lambda s: len(s.split())))
    neg = next(f for f in lint(GOOD, "bad " * 50, max_tokens=30) if f.code == "too-long")
    assert neg.target is Target.NEGATIVE
    assert estimate_tokens("a b c") == 4 and estimate_tokens("extraordinarily") > 2


def test_empty_prompt_and_negation():
    assert codes(lint("   ", "x")) == ["empty-prompt"]
    f = next(f for f in lint("A beach without people.", "x") if f.code == "negation")
    assert f.severity is Severity.INFO and "without people" in f.message


def test_spatial_spans_for_the_highlighter():
    spans = spatial_spans(GOOD)
    assert [GOOD[a:b] for a, b in spans] == ["left edge", "center", "stationary", "right"]
    assert spatial_spans("A lamp to the left of the sofa") == [(7, 21)]
    assert "near" in SPATIAL_WORDS and spatial_spans("") == []


def test_presets_and_serialisation():
    assert NEGATIVE_PRESETS["default"] == DEFAULT_NEGATIVE and len(NEGATIVE_PRESETS) >= 3
    d = lint("near", "x")[0].to_dict()
    assert d["span"] == [0, 4] and d["severity"] == "warning" and d["code"] == "vague-spatial"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=50)))
def test_lint_never_raises_and_spans_are_inside_the_text(prompt, negative):
    for f in lint(prompt, negative):
        text = prompt if f.target is Target.PROMPT else (negative or "")
        assert 0 <= f.span[0] <= f.span[1] <= len(text)
        assert isinstance(f.severity, Severity) and f.message
