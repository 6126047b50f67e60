#!/usr/bin/env python3
"""Generate the reference sentence embeddings that dd-model's SentenceEncoder is tested against.

It embeds a fixed list of texts with sentence-transformers and the all-MiniLM-L6-v2 model that
scripts/fetch-test-assets.sh puts in $DD_TEST_ASSETS/all-MiniLM-L6-v2 (default
/var/tmp/deepdecipher-assets), and writes crates/dd-model/tests/fixtures/minilm_embeddings.json:
the texts, their word-piece counts, and their 384-d unit vectors rounded to 7 significant digits.

Run by hand (CI never runs this; sentence-transformers pulls in torch, a few GB, so keep the
virtual environment outside the repository):

    python3 -m venv /var/tmp/st-venv
    /var/tmp/st-venv/bin/pip install sentence-transformers
    /var/tmp/st-venv/bin/python scripts/make_embedding_fixture.py

The fixture committed was made with sentence-transformers 6.3.0, transformers 5.25.0 and
torch 2.15.0 (the versions are also recorded in the file). The script is deterministic and
rewrites the fixture.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
from pathlib import Path

from sentence_transformers import SentenceTransformer

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPOSITORY / "crates/dd-model/tests/fixtures/minilm_embeddings.json"

# Over 256 word pieces, and the part past the limit is about something else: a run that did not
# truncate would pool the second topic in and give a clearly different vector.
LONG_TEXT = "The court ruled that the contract was void because it lacked consideration. " * 20 + (
    "Bananas are yellow tropical fruit, rich in potassium and loved by monkeys. " * 8
)

TEXTS = [
    "neurons about legal language",
    "legal contracts and law",
    "the color blue",
    "",
    "?!... ;-) (((]]] --- !!!",
    "Café naïve résumé — Zürich, São Paulo, Ångström",
    "MiXeD CaSe TeXt wItH SHOUTING",
    "the word \"thou\" in Shakespearean dialogue",
    "numbers such as 3.14, 2,048 and 1e-5",
    "日本語の文章と中文字符",
    "  leading and trailing whitespace\t\n",
    "closing parentheses after a function call in Python code",
    LONG_TEXT,
]


def significant(value: float) -> float:
    """Seven significant digits: float32 carries about that many, and the file stays small."""
    return float(f"{value:.7g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    assets = Path(os.environ.get("DD_TEST_ASSETS", "/var/tmp/deepdecipher-assets"))
    parser.add_argument("--model", type=Path, default=assets / "all-MiniLM-L6-v2")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    model = SentenceTransformer(str(args.model), device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    tokenizer = model.tokenizer
    word_pieces = [len(tokenizer(text.strip())["input_ids"]) for text in TEXTS]
    assert max(word_pieces) > 300, "the long text must exceed the 256-token limit"

    vectors = model.encode(TEXTS, batch_size=32, convert_to_numpy=True)
    assert vectors.shape == (len(TEXTS), 384), vectors.shape
    norms = (vectors**2).sum(axis=1) ** 0.5
    assert abs(norms - 1).max() < 1e-5, norms

    fixture = {
        "about": "all-MiniLM-L6-v2 sentence embeddings by sentence-transformers; "
        "made by scripts/make_embedding_fixture.py",
        "model": args.model.name,
        "versions": {
            package: importlib.metadata.version(package)
            for package in ("sentence-transformers", "transformers", "torch", "tokenizers")
        },
        "max_seq_length": model.max_seq_length,
        "embeddings": [
            {
                "text": text,
                "word_pieces_before_truncation": count,
                "vector": [significant(value) for value in vector.tolist()],
            }
            for text, count, vector in zip(TEXTS, word_pieces, vectors)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One line per embedding: diffs stay readable and the file small.
    lines = [json.dumps(entry, ensure_ascii=False) for entry in fixture["embeddings"]]
    head = json.dumps({**fixture, "embeddings": []}, ensure_ascii=False, indent=1)
    text = head.replace('"embeddings": []', '"embeddings": [\n  ' + ",\n  ".join(lines) + "\n ]")
    assert json.loads(text) == fixture
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(TEXTS)} texts)")


if __name__ == "__main__":
    main()
