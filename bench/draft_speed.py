"""Drafting time per prompt on this CPU: every prompt of the drafting corpus
(tests/core/corpus/spatial_prompts.txt), drafted several times; prints the median and the slowest.

    python bench/draft_speed.py [--repeat 5]

The app drafts beside the canvas while a person types, so a draft should take well under 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from shotsketch.core.phrasing import draft_layout

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "core" / "corpus" / "spatial_prompts.txt"


def prompts() -> list[str]:
    return [line[2:].strip() for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.startswith("> ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="drafts per prompt (the fastest counts)")
    args = parser.parse_args()
    texts = prompts()
    draft_layout(texts[0], 832 / 480)  # imports and regex compilation are not a draft's time
    times = []
    for text in texts:
        best = min(_timed(text) for _ in range(max(1, args.repeat)))
        times.append((best, text))
    ms = [t * 1000 for t, _ in times]
    slowest = max(times)
    print(f"{len(texts)} prompts: median {statistics.median(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms, "
          f"slowest {slowest[0] * 1000:.1f} ms ({slowest[1]!r})")


def _timed(text: str) -> float:
    start = time.perf_counter()
    draft_layout(text, 832 / 480)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
