"""Find training phrases that copy or nearly copy a third-party evaluation row.

    .venv/bin/python scripts/check_phrase_leaks.py            # list our near-copies
    .venv/bin/python scripts/check_phrase_leaks.py --remove   # and delete them from the seeds

The project's own evaluation sets (``eval/*_signals*.csv``) are kept apart the same way.

The third-party rows (``../shared/eval/*.csv``) are a test: only OUR phrase is ever
printed, never the row it resembles. Texts are compared as the encoder sees them
(``model_text``) without punctuation; a rapidfuzz ratio, or the ratio of the words
sorted (the same words reordered), at or above ``NEAR_COPY`` is a near-copy. A seed
removed takes its generated copies with it (``load_examples`` keeps only copies of
present seeds; ``scripts/make_phrase_variants.py`` rewrites them).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from rapidfuzz import fuzz, process

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent_assist.nlp.intents import SEED_FILE, load_seeds  # noqa: E402
from agent_assist.nlp.signal_model import model_text  # noqa: E402

SHARED_EVAL = REPO.parent / "shared" / "eval"
INTENTS = REPO / "agent_assist" / "data" / "intents"
NEAR_COPY = 80.0
_MARKS = re.compile(r"[^\w\s]")


def comparable(text: str) -> str:
    """Lower-cased, width-folded, punctuation-free, single-spaced."""
    return " ".join(_MARKS.sub(" ", model_text(text)).split())


def third_party_texts(folder: Path, pattern: str = "*.csv") -> list[str]:
    """The ``text`` column of every CSV file in ``folder`` matching ``pattern``."""
    texts: list[str] = []
    for path in sorted(folder.glob(pattern)):
        with path.open(encoding="utf-8") as fh:
            texts += [comparable(r["text"]) for r in csv.DictReader(fh)]
    return texts


def near_copies(phrases: Iterable[str], rows: list[str]) -> list[str]:
    """Our phrases whose best match among ``rows`` scores at least ``NEAR_COPY``."""
    found: list[str] = []
    for phrase in phrases:
        text = comparable(phrase)
        scores = [
            process.extractOne(text, rows, scorer=scorer)
            for scorer in (fuzz.ratio, fuzz.token_sort_ratio)
        ]
        if any(best is not None and best[1] >= NEAR_COPY for best in scores):
            found.append(phrase)
    return found


def remove_lines(path: Path, phrases: set[str]) -> int:
    """Delete the lines ``"phrase",`` of a seed file; returns how many went."""
    kept: list[str] = []
    removed = 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        stripped = line.strip().rstrip(",")
        if stripped.startswith('"') and stripped.endswith('"') and stripped[1:-1] in phrases:
            removed += 1
            continue
        kept.append(line)
    path.write_text("".join(kept), encoding="utf-8")
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_EVAL)
    parser.add_argument("--remove", action="store_true", help="delete them from the seeds")
    args = parser.parse_args()
    sets = {"own evaluation set": third_party_texts(REPO / "eval", "*_signals*.csv")}
    if args.shared.is_dir():
        sets["third-party set"] = third_party_texts(args.shared)
    else:
        print(f"{args.shared} not found: only the own sets are compared")
    counts: list[str] = []
    for language in ("en", "ja"):
        seeds = [e.text for e in load_seeds(language)]
        found: set[str] = set()
        for name, rows in sets.items():
            hits = near_copies(seeds, rows)
            counts.append(f"{language} {len(hits)} ({name})")
            for phrase in hits:
                print(f"{language}: {phrase}  [{name}]")
            found.update(hits)
        if args.remove and found:
            remove_lines(INTENTS / SEED_FILE.format(language=language), found)
    print("near-copies:", ", ".join(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
