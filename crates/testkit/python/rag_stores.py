"""Write, search and extend pgvector stores with the real RAG libraries, for ragshift's tests.

Tests move these stores with ragshift and then ask the library itself whether the target still
works: the same similarity results, new rows added without error (sequences and defaults came
along), and text search finding a new node (generated tsvector columns came along).

    rag_stores.py write  <kind> <postgres-url>
    rag_stores.py search <kind> <postgres-url> <query>...
    rag_stores.py add    <kind> <postgres-url>
    rag_stores.py rebuilt <layout> <postgres-url> <table> <bot-id> <chunk-id>

`rebuilt` opens a store `ragshift rebuild` wrote (layout `langchain`, `langchain-v2` or
`llamaindex`) with the library: it searches by the stored vector of one chunk (so no model is
needed here), restricted to the bot where the library can (v1: the bot's collection;
LlamaIndex: a `bot_id` metadata filter; v2 filters only on metadata columns, so there it
searches the whole table), then adds a node to the bot the library's way.

Each prints one JSON object on stdout. Kinds:

    langchain-v1       langchain_postgres PGVector: 3 collections, untyped `vector` column
    langchain-v2       langchain_postgres.v2 PGVectorStore with a `content_tsv` tsvector column
    llamaindex         llama_index PGVectorStore, plain
    llamaindex-hybrid  llama_index PGVectorStore, hybrid_search=True (generated tsvector)
    llamaindex-halfvec llama_index PGVectorStore, use_halfvec=True
    custom-types       plain SQL: serial id, uuid, halfvec, sparsevec, bit, jsonb, text[]

Embeddings are deterministic hashes of the text: nothing is downloaded. LlamaIndex's NLTK and
tiktoken data are pinned to the copies bundled in its wheel (see `_offline`).
"""

import functools
import hashlib
import json
import os
import struct
import sys
import uuid

DIM = 16
ROWS = 300
COLLECTIONS = ["handbook", "faq", "notes-ünïcode"]
TOP_K = 5
LC_V2_TABLE = "lc_v2_docs"
LLAMA_TABLES = {
    "llamaindex": "li_plain",
    "llamaindex-hybrid": "li_hybrid",
    "llamaindex-halfvec": "li_halfvec",
}
CUSTOM_TABLE = "custom_items"
# A word no fixture text contains: text search finds exactly the node `add` wrote.
NEW_WORD = "zanzibarquokka"
ID_NAMESPACE = uuid.UUID("6f1c2f3a-1d1e-4d8b-9a53-5a3c1b2e7f10")


def _offline():
    """Keep the libraries away from the network: LlamaIndex downloads NLTK data into NLTK_DATA
    when it is missing there, and tiktoken fetches encodings unless TIKTOKEN_CACHE_DIR holds
    them. Both are bundled in llama-index-core's wheel (`_static`); point at those."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("llama_index.core")
    except ImportError:
        return
    if spec is None or not spec.submodule_search_locations:
        return
    static = os.path.join(spec.submodule_search_locations[0], "_static")
    os.environ["NLTK_DATA"] = os.path.join(static, "nltk_cache")
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.join(static, "tiktoken_cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def sqlalchemy_url(url, driver):
    """The test's `postgres://` URL with a SQLAlchemy driver (psycopg, psycopg2, asyncpg)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=f"postgresql+{driver}")


def text_for(i):
    """Fixture texts: plain, non-ASCII, empty, long and repeated ones, all deterministic."""
    if i % 50 == 7:
        return ""
    if i % 10 == 3:
        return f"héllo wörld 日本語 🚀 Ünïcode line {i}"
    if i % 17 == 5:
        return f"long text {i} " + "lorem ipsum dolor sit amet " * 40
    words = ["pgvector", "tables", "embedding", "search", "postgres", "ragshift", "copy", "index"]
    return f"document {i} about {words[i % len(words)]} and {words[(i * 3) % len(words)]}"


def metadata_for(i, collection=None):
    """Nested metadata with a `source` key, arrays, numbers, booleans and nulls."""
    return {
        "source": f"s3://bucket/docs/{i % 23}.pdf",
        "page": i % 11,
        "collection": collection,
        "tags": ["a", "b"] if i % 2 else [],
        "nested": {"depth": {"level": i % 3, "ok": i % 4 == 0, "none": None}, "ünï": "cöde"},
    }


def hash_vector(text, dim=DIM):
    """A unit-length vector from sha256 of the text: same text, same vector, any process."""
    out = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for j in range(0, len(digest), 4):
            (n,) = struct.unpack(">I", digest[j : j + 4])
            out.append(n / 2**31 - 1.0)
        counter += 1
    out = out[:dim]
    norm = sum(x * x for x in out) ** 0.5 or 1.0
    return [x / norm for x in out]


def doc_id(kind, i, collection=""):
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}/{collection}/{i}"))


def emit(obj):
    print(json.dumps(obj, ensure_ascii=False, default=str))


def count_rows(url, tables):
    import psycopg

    out = []
    with psycopg.connect(url) as conn:
        for t in tables:
            schema, name = t.split(".", 1)
            q = f'SELECT count(*) FROM "{schema}"."{name}"'
            out.append({"table": t, "rows": conn.execute(q).fetchone()[0]})
    return out


# ---------------------------------------------------------------- LangChain v1 (PGVector)


def lc_embeddings():
    from langchain_core.embeddings import DeterministicFakeEmbedding

    return DeterministicFakeEmbedding(size=DIM)


def lc_v1_store(url, collection):
    from langchain_postgres import PGVector

    # No embedding_length: the library's default untyped `vector` column.
    return PGVector(
        embeddings=lc_embeddings(),
        connection=sqlalchemy_url(url, "psycopg").render_as_string(hide_password=False),
        collection_name=collection,
        collection_metadata={"owner": "tests", "name": collection},
        use_jsonb=True,
    )


def lc_v1_write(url):
    per = ROWS // len(COLLECTIONS)
    for c, name in enumerate(COLLECTIONS):
        store = lc_v1_store(url, name)
        idx = range(c * per, (c + 1) * per)
        store.add_texts(
            [text_for(i) for i in idx],
            metadatas=[metadata_for(i, name) for i in idx],
            ids=[doc_id("langchain-v1", i, name) for i in idx],
        )
    return ["public.langchain_pg_collection", "public.langchain_pg_embedding"]


def lc_v1_search(url, queries):
    results = []
    for name in COLLECTIONS:
        store = lc_v1_store(url, name)
        for q in queries:
            hits = store.similarity_search_with_score(q, k=TOP_K)
            results.append({"collection": name, "query": q, "hits": lc_hits(hits)})
    return results


def lc_hits(hits):
    return [
        {"id": d.id, "text": d.page_content, "source": d.metadata.get("source"), "score": round(s, 6)}
        for d, s in hits
    ]


def lc_v1_add(url):
    name = COLLECTIONS[0]
    store = lc_v1_store(url, name)
    texts = [f"added after the move {n} {NEW_WORD}" for n in range(3)]
    ids = store.add_texts(texts, metadatas=[metadata_for(900 + n, name) for n in range(3)])
    hits = store.similarity_search_with_score(texts[0], k=TOP_K)
    # The collection's old rows must still be there: the library reads them by collection uuid.
    old = store.similarity_search_with_score(text_for(0), k=1)
    return {
        "added": len(ids),
        "ids": ids,
        "found_by_similarity": bool(hits) and hits[0][0].id == ids[0],
        "old_rows_found": bool(old) and old[0][0].id == doc_id("langchain-v1", 0, name),
        "text_search_found": None,
    }


# ---------------------------------------------------------------- LangChain v2 (PGVectorStore)


def lc_v2_hybrid(fts_query=""):
    from langchain_postgres.v2.hybrid_search_config import HybridSearchConfig, weighted_sum_ranking

    return HybridSearchConfig(
        tsv_column="content_tsv",
        fts_query=fts_query,
        fusion_function=weighted_sum_ranking,
        # Text search alone decides the order when a text query is given.
        fusion_function_parameters={"primary_results_weight": 0.0, "secondary_results_weight": 1.0},
        primary_top_k=TOP_K,
        secondary_top_k=TOP_K,
        index_name="lc_v2_docs_tsv_idx",
    )


def lc_v2_engine(url):
    from langchain_postgres import PGEngine

    return PGEngine.from_connection_string(
        url=sqlalchemy_url(url, "asyncpg").render_as_string(hide_password=False)
    )


def lc_v2_store(engine):
    from langchain_postgres import PGVectorStore

    return PGVectorStore.create_sync(
        engine=engine,
        table_name=LC_V2_TABLE,
        embedding_service=lc_embeddings(),
        metadata_columns=["source", "page"],
        hybrid_search_config=lc_v2_hybrid(),
    )


def lc_v2_write(url):
    from langchain_postgres.v2.engine import Column

    engine = lc_v2_engine(url)
    engine.init_vectorstore_table(
        table_name=LC_V2_TABLE,
        vector_size=DIM,
        metadata_columns=[Column("source", "TEXT"), Column("page", "INTEGER")],
        hybrid_search_config=lc_v2_hybrid(),
    )
    store = lc_v2_store(engine)
    store.add_texts(
        [text_for(i) for i in range(ROWS)],
        metadatas=[metadata_for(i) for i in range(ROWS)],
        ids=[doc_id("langchain-v2", i) for i in range(ROWS)],
    )
    store.apply_hybrid_search_index()
    return [f"public.{LC_V2_TABLE}"]


def lc_v2_search(url, queries):
    store = lc_v2_store(lc_v2_engine(url))
    return [
        {"collection": None, "query": q, "hits": lc_hits(store.similarity_search_with_score(q, k=TOP_K))}
        for q in queries
    ]


def lc_v2_add(url):
    store = lc_v2_store(lc_v2_engine(url))
    texts = [f"added after the move {n} {NEW_WORD}" for n in range(3)]
    ids = [str(uuid.uuid5(ID_NAMESPACE, f"added/{n}")) for n in range(3)]
    store.add_texts(texts, metadatas=[metadata_for(900 + n) for n in range(3)], ids=ids)
    hits = store.similarity_search_with_score(texts[0], k=TOP_K)
    by_text = store.similarity_search(
        "unrelated dense query", k=TOP_K, hybrid_search_config=lc_v2_hybrid(NEW_WORD)
    )
    return {
        "added": len(ids),
        "ids": ids,
        "found_by_similarity": bool(hits) and hits[0][0].id == ids[0],
        "old_rows_found": len(store.get_by_ids([doc_id("langchain-v2", 0)])) == 1,
        "text_search_found": any(d.id in ids for d in by_text[: len(ids)]),
    }


# ---------------------------------------------------------------- LlamaIndex (PGVectorStore)


def llama_embedding():
    from llama_index.core.embeddings import BaseEmbedding

    class HashEmbedding(BaseEmbedding):
        """Deterministic embeddings without a model: sha256 of the text."""

        def _get_query_embedding(self, query):
            return hash_vector(query)

        async def _aget_query_embedding(self, query):
            return hash_vector(query)

        def _get_text_embedding(self, text):
            return hash_vector(text)

    return HashEmbedding(model_name="hash")


def llama_store(kind, url):
    from llama_index.vector_stores.postgres import PGVectorStore

    return PGVectorStore(
        connection_string=sqlalchemy_url(url, "psycopg2").render_as_string(hide_password=False),
        async_connection_string=sqlalchemy_url(url, "asyncpg").render_as_string(hide_password=False),
        table_name=LLAMA_TABLES[kind],
        embed_dim=DIM,
        hybrid_search=kind == "llamaindex-hybrid",
        use_halfvec=kind == "llamaindex-halfvec",
        use_jsonb=kind != "llamaindex",
        initialization_fail_on_error=True,
    )


def llama_index(kind, url):
    from llama_index.core import VectorStoreIndex

    return VectorStoreIndex.from_vector_store(llama_store(kind, url), embed_model=llama_embedding())


def llama_node(node_id, text, metadata):
    """A node embedded from its text alone (LlamaIndex prepends metadata unless excluded), so a
    query with a node's exact text finds that node first."""
    from llama_index.core.schema import TextNode

    return TextNode(id_=node_id, text=text, metadata=metadata, excluded_embed_metadata_keys=list(metadata))


def llama_nodes(kind, idx):
    # The hybrid store keeps jsonb metadata: give it the nested kind.
    meta = metadata_for if kind == "llamaindex-hybrid" else flat_metadata
    return [llama_node(doc_id(kind, i), text_for(i), meta(i)) for i in idx]


def flat_metadata(i):
    m = metadata_for(i)
    return {"source": m["source"], "page": m["page"], "lang": "ünïcode" if i % 10 == 3 else "en"}


def llama_write(kind, url):
    index = llama_index(kind, url)
    index.insert_nodes(llama_nodes(kind, range(ROWS)))
    return [f"public.data_{LLAMA_TABLES[kind]}"]


def llama_search(kind, url, queries):
    retriever = llama_index(kind, url).as_retriever(similarity_top_k=TOP_K)
    out = []
    for q in queries:
        hits = retriever.retrieve(q)
        out.append(
            {
                "collection": None,
                "query": q,
                "hits": [
                    {"id": h.node.node_id, "text": h.node.get_content(), "source": h.node.metadata.get("source"), "score": round(h.score, 6)}
                    for h in hits
                ],
            }
        )
    return out


def llama_add(kind, url):
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    index = llama_index(kind, url)
    nodes = [
        llama_node(str(uuid.uuid5(ID_NAMESPACE, f"added/{kind}/{n}")), f"added after the move {n} {NEW_WORD}", flat_metadata(900 + n))
        for n in range(3)
    ]
    index.insert_nodes(nodes)
    ids = [n.node_id for n in nodes]
    hits = index.as_retriever(similarity_top_k=TOP_K).retrieve(nodes[0].text)
    old = index.as_retriever(similarity_top_k=1).retrieve(text_for(0))
    text_found = None
    if kind == "llamaindex-hybrid":
        store = index.vector_store
        res = store.query(
            VectorStoreQuery(query_str=NEW_WORD, mode=VectorStoreQueryMode.TEXT_SEARCH, similarity_top_k=TOP_K)
        )
        text_found = any(i in ids for i in (res.ids or []))
    return {
        "added": len(ids),
        "ids": ids,
        "found_by_similarity": bool(hits) and hits[0].node.node_id == ids[0],
        "old_rows_found": bool(old) and old[0].node.node_id == doc_id(kind, 0),
        "text_search_found": text_found,
    }


# ---------------------------------------------------------------- hand-made table, plain SQL

CUSTOM_DDL = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE {CUSTOM_TABLE} (
    id serial PRIMARY KEY,
    uid uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    content text,
    emb halfvec(8),
    sparse sparsevec(32),
    bits bit(16),
    meta jsonb NOT NULL DEFAULT '{{}}',
    tags text[],
    created timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00',
    CHECK (content IS NULL OR length(content) < 100000)
);
CREATE INDEX {CUSTOM_TABLE}_emb ON {CUSTOM_TABLE} USING hnsw (emb halfvec_l2_ops);
"""


def custom_row(i):
    v = hash_vector(text_for(i), 8)
    sparse = {(i * 7 + k) % 32 + 1: round(v[k], 3) for k in range(3)}
    sparse_lit = "{" + ",".join(f"{k}:{val}" for k, val in sorted(sparse.items())) + "}/32"
    return {
        "uid": str(uuid.uuid5(ID_NAMESPACE, f"custom/{i}")),
        "content": None if i % 40 == 9 else text_for(i),
        "emb": None if i % 60 == 11 else "[" + ",".join(f"{x:.4f}" for x in v) + "]",
        "sparse": sparse_lit,
        "bits": format((i * 2654435761) & 0xFFFF, "016b"),
        "meta": json.dumps(metadata_for(i), ensure_ascii=False),
        "tags": ["x", f"t{i % 5}", "ünï"] if i % 3 else [],
    }


def custom_insert(conn, rows):
    ids = []
    for r in rows:
        ids.append(
            conn.execute(
                f"INSERT INTO {CUSTOM_TABLE} (uid, content, emb, sparse, bits, meta, tags)"
                " VALUES (%(uid)s, %(content)s, %(emb)s::halfvec, %(sparse)s::sparsevec, %(bits)s::bit(16), %(meta)s::jsonb, %(tags)s)"
                " RETURNING id",
                r,
            ).fetchone()[0]
        )
    return ids


def custom_write(url):
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(CUSTOM_DDL)
        custom_insert(conn, [custom_row(i) for i in range(ROWS)])
    return [f"public.{CUSTOM_TABLE}"]


def custom_query(conn, q):
    lit = "[" + ",".join(f"{x:.4f}" for x in hash_vector(q, 8)) + "]"
    rows = conn.execute(
        f"SELECT id, content, meta->>'source', emb <-> %s::halfvec AS d FROM {CUSTOM_TABLE}"
        " WHERE emb IS NOT NULL ORDER BY d, id LIMIT %s",
        (lit, TOP_K),
    ).fetchall()
    return [{"id": r[0], "text": r[1], "source": r[2], "score": round(r[3], 6)} for r in rows]


def custom_search(url, queries):
    import psycopg

    with psycopg.connect(url) as conn:
        return [{"collection": None, "query": q, "hits": custom_query(conn, q)} for q in queries]


def custom_add(url):
    import psycopg

    with psycopg.connect(url) as conn:
        rows = [dict(custom_row(900 + n), uid=None, content=f"added after the move {n} {NEW_WORD}") for n in range(3)]
        ids = []
        for r in rows:
            # Only the defaults fill id and uid: a lost sequence or default fails here.
            ids.append(
                conn.execute(
                    f"INSERT INTO {CUSTOM_TABLE} (content, emb, sparse, bits, tags)"
                    " VALUES (%(content)s, %(emb)s::halfvec, %(sparse)s::sparsevec, %(bits)s::bit(16), %(tags)s)"
                    " RETURNING id",
                    r,
                ).fetchone()[0]
            )
        conn.commit()
        r0 = rows[0]
        lit = r0["emb"]
        top = conn.execute(
            f"SELECT id FROM {CUSTOM_TABLE} WHERE emb IS NOT NULL ORDER BY emb <-> %s::halfvec, id LIMIT 1", (lit,)
        ).fetchone()
        old = conn.execute(f"SELECT count(*) FROM {CUSTOM_TABLE} WHERE id < %s", (min(ids),)).fetchone()[0]
    return {
        "added": len(ids),
        "ids": [str(i) for i in ids],
        "found_by_similarity": top is not None and top[0] == ids[0],
        "old_rows_found": old >= ROWS,
        "text_search_found": None,
    }


# ---------------------------------------------------------------- stores ragshift rebuilt

REBUILT_K = 1000


def stored_vector(url, sql, key):
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql, (key,)).fetchone()
    if row is None:
        raise SystemExit(f"no row {key}")
    return [float(x) for x in row[0].strip("[]").split(",")]


def _langchain_search_and_add(store, vec, bot):
    """What a LangChain store (v1 or v2) finds nearest a stored vector, and the id of a chunk it
    adds beside the rebuilt ones: both library versions read and write a rebuilt table alike."""
    hits = store.similarity_search_with_score_by_vector(vec, k=REBUILT_K)
    added = store.add_embeddings(
        texts=[f"added by the library {NEW_WORD}"],
        embeddings=[vec],
        metadatas=[{"source": "library", "bot_id": bot}],
    )
    return [(d.id, d.metadata, d.page_content) for d, _ in hits], added


def rebuilt_langchain(url, bot, chunk):
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_postgres import PGVector

    vec = stored_vector(url, "SELECT embedding::text FROM langchain_pg_embedding WHERE id = %s", chunk)
    store = PGVector(
        embeddings=DeterministicFakeEmbedding(size=len(vec)),
        connection=sqlalchemy_url(url, "psycopg").render_as_string(hide_password=False),
        collection_name=bot,
        use_jsonb=True,
    )
    return _langchain_search_and_add(store, vec, bot)


def rebuilt_langchain_v2(url, table, bot, chunk):
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_postgres import PGVectorStore

    vec = stored_vector(url, f'SELECT embedding::text FROM "{table}" WHERE langchain_id = %s::uuid', chunk)
    store = PGVectorStore.create_sync(
        engine=lc_v2_engine(url), table_name=table, embedding_service=DeterministicFakeEmbedding(size=len(vec))
    )
    return _langchain_search_and_add(store, vec, bot)


def rebuilt_llamaindex(url, table, bot, chunk):
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters, VectorStoreQuery
    from llama_index.vector_stores.postgres import PGVectorStore

    vec = stored_vector(url, f'SELECT embedding::text FROM "{table}" WHERE node_id = %s', chunk)
    name = table[len("data_"):] if table.startswith("data_") else table
    store = PGVectorStore(
        connection_string=sqlalchemy_url(url, "psycopg2").render_as_string(hide_password=False),
        async_connection_string=sqlalchemy_url(url, "asyncpg").render_as_string(hide_password=False),
        table_name=name,
        embed_dim=len(vec),
        initialization_fail_on_error=True,
    )
    res = store.query(
        VectorStoreQuery(
            query_embedding=vec,
            similarity_top_k=REBUILT_K,
            filters=MetadataFilters(filters=[ExactMatchFilter(key="bot_id", value=bot)]),
        )
    )
    hits = [(n.node_id, dict(n.metadata, ref_doc_id=n.ref_doc_id), n.get_content()) for n in res.nodes]
    node = TextNode(text=f"added by the library {NEW_WORD}", embedding=vec, metadata={"source": "library", "bot_id": bot})
    added = store.add([node])
    return hits, added


def rebuilt(layout, url, table, bot, chunk):
    if layout == "langchain":
        hits, added = rebuilt_langchain(url, bot, chunk)
    elif layout == "langchain-v2":
        hits, added = rebuilt_langchain_v2(url, table, bot, chunk)
    else:
        hits, added = rebuilt_llamaindex(url, table, bot, chunk)
    return {
        "layout": layout,
        "hits": [
            {"id": str(i), "bot_id": m.get("bot_id"), "source": m.get("source"), "ref_doc_id": m.get("ref_doc_id"), "text": t}
            for i, m, t in hits
        ],
        "added": [str(a) for a in added],
    }


# ---------------------------------------------------------------- dispatch

KINDS = ["langchain-v1", "langchain-v2", "llamaindex", "llamaindex-hybrid", "llamaindex-halfvec", "custom-types"]


def operations(kind):
    """The kind's (write(url), search(url, queries), add(url))."""
    if kind == "langchain-v1":
        return lc_v1_write, lc_v1_search, lc_v1_add
    if kind == "langchain-v2":
        return lc_v2_write, lc_v2_search, lc_v2_add
    if kind in LLAMA_TABLES:
        return tuple(functools.partial(f, kind) for f in (llama_write, llama_search, llama_add))
    return custom_write, custom_search, custom_add


def write(kind, url):
    tables = operations(kind)[0](url)
    return {"kind": kind, "tables": count_rows(url, tables)}


def search(kind, url, queries):
    return {"kind": kind, "results": operations(kind)[1](url, queries)}


def add(kind, url):
    return dict(operations(kind)[2](url), kind=kind)


REBUILT_LAYOUTS = ["langchain", "langchain-v2", "llamaindex"]


def main(argv):
    if argv and argv[0] == "rebuilt":
        if len(argv) != 6 or argv[1] not in REBUILT_LAYOUTS:
            print(f"usage: rag_stores.py rebuilt {'|'.join(REBUILT_LAYOUTS)} <postgres-url> <table> <bot-id> <chunk-id>", file=sys.stderr)
            return 2
        _offline()
        emit(rebuilt(*argv[1:]))
        return 0
    usage = f"usage: rag_stores.py write|search|add <kind> <postgres-url> [query...]; kinds: {', '.join(KINDS)}"
    if len(argv) < 3 or argv[1] not in KINDS or argv[0] not in ("write", "search", "add"):
        print(usage, file=sys.stderr)
        return 2
    if argv[0] == "search" and len(argv) < 4:
        print("search needs at least one query\n" + usage, file=sys.stderr)
        return 2
    _offline()
    cmd, kind, url = argv[0], argv[1], argv[2]
    if cmd == "write":
        emit(write(kind, url))
    elif cmd == "search":
        emit(search(kind, url, argv[3:]))
    else:
        emit(add(kind, url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
