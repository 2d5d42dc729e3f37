"""Baseline for bench/split: llama_index's SentenceSplitter with the platform's settings.

chunk_size 1000, chunk_overlap 200, paragraph separator "\\n\\n\\n", length measured in
characters (tokenizer = list), as Bedrock Chat's embedding task configured it. NLTK's sentence
model comes from llama_index's bundled cache (nothing is downloaded). Prints one JSON line.
"""

import json
import sys
import time

from llama_index.core.node_parser import SentenceSplitter


def main() -> None:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    splitter = SentenceSplitter(
        chunk_size=1000,
        chunk_overlap=200,
        paragraph_separator="\n\n\n",
        tokenizer=list,
    )
    start = time.perf_counter()
    chunks = splitter.split_text(text)
    seconds = time.perf_counter() - start
    size = len(text.encode("utf-8"))
    print(
        json.dumps(
            {
                "bytes": size,
                "chars": len(text),
                "chunks": len(chunks),
                "mean_chunk_chars": round(sum(map(len, chunks)) / max(len(chunks), 1)),
                "seconds": round(seconds, 4),
                "mb_per_s": round(size / 1048576 / seconds, 2),
                "chars_per_s": round(len(text) / seconds),
            }
        )
    )


if __name__ == "__main__":
    main()
