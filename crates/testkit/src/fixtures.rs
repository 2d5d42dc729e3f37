//! Test data that several suites share: the platform's chunk table filled with the rows that
//! break naive copies (empty and NULL content, NULL sources, vectors and bot ids, long and
//! non-ASCII texts, one big bot and many small ones).

/// The shape of [`awkward_items`]' data.
#[derive(Debug, Clone, Copy)]
pub struct AwkwardItems {
    /// Rows in all.
    pub rows: u32,
    /// The first this many rows belong to one big bot (split by id range in copies).
    pub big_bot_rows: u32,
    /// The other rows are spread over this many small bots.
    pub small_bots: u32,
    /// Repeats of "long text " in every seventh row's content (TOASTed when large).
    pub long_repeat: u32,
}

/// SQL that creates the `vector` extension and an `items` table of the platform's layout with
/// `vector(8)` embeddings, filled as `shape` says (no indexes: a suite adds the ones it needs).
pub fn awkward_items(shape: AwkwardItems) -> String {
    let AwkwardItems {
        rows,
        big_bot_rows,
        small_bots,
        long_repeat,
    } = shape;
    format!(
        "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items(id CHAR(26) PRIMARY KEY, botid CHAR(26), content text, source text, embedding vector(8));
INSERT INTO items
SELECT lpad(i::text, 26, '0'),
       CASE WHEN i % 97 = 0 THEN NULL
            WHEN i <= {big_bot_rows} THEN 'BIGBOT00000000000000000000'
            ELSE 'BOT' || lpad((i % {small_bots})::text, 23, '0') END,
       CASE i % 7 WHEN 0 THEN '' WHEN 1 THEN NULL WHEN 2 THEN repeat('long text ', {long_repeat})
                  WHEN 3 THEN 'héllo wörld 日本語 🚀 ' || i ELSE 'chunk ' || i END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 's3://bucket/doc-' || (i % 13) || '.pdf' END,
       CASE WHEN i % 53 = 0 THEN NULL
            ELSE ARRAY[sin(i), cos(i), sin(2*i), cos(2*i), i % 7, i % 11, 1.0/i, -i]::vector(8) END
  FROM generate_series(1, {rows}) AS i;
"
    )
}

/// SQL that creates the `vector` extension and an `items` table of the platform's layout with
/// `vector(8)` embeddings and an index on the bot, holding 3 bots of `rows` rows each — the same
/// rows on every call, so two databases seeded alike match.
pub fn three_bots(rows: u32) -> String {
    format!(
        "
CREATE EXTENSION vector;
CREATE TABLE items (id character(26) PRIMARY KEY, botid character(26), content text, source text, embedding vector(8));
CREATE INDEX ON items (botid);
INSERT INTO items
SELECT lpad(b::text, 2, '0') || lpad(i::text, 24, '0'), 'BOT' || lpad(b::text, 23, '0'),
       'chunk ' || i, 's3://docs/u1/' || b || '/documents/f.pdf',
       (SELECT array_agg(cos(b * 31 + i * 3 + d)::real ORDER BY d) FROM generate_series(1, 8) d)::vector
  FROM generate_series(1, 3) b, generate_series(1, {rows}) i;
"
    )
}

/// SQL that fills an existing `items` table of the platform's layout with `bots` bots of
/// `rows` rows each and `dim`-dimensional vectors, the same on every call: row ids are the
/// bot's number in two digits then the row's in 24, bot ids `BOT` and 23 digits.
pub fn bot_rows(bots: u32, rows: u32, dim: usize) -> String {
    format!(
        "INSERT INTO items
         SELECT lpad(b::text, 2, '0') || lpad(i::text, 24, '0'),
                'BOT' || lpad(b::text, 23, '0'),
                'chunk ' || i || ' of bot ' || b,
                's3://docs/u1/' || b || '/documents/f.pdf',
                (SELECT array_agg(sin(b * 100 + i * 7 + d)::real ORDER BY d) FROM generate_series(1, {dim}) d)::vector
           FROM generate_series(1, {bots}) b, generate_series(1, {rows}) i"
    )
}

/// What the copy suites move: [`awkward_items`] of 3000 rows (one big bot of 1200, 60 small
/// ones), indexed on the bot and by an ivfflat index of 10 lists.
pub fn awkward_items_indexed() -> String {
    let mut sql = awkward_items(AwkwardItems {
        rows: 3000,
        big_bot_rows: 1200,
        small_bots: 60,
        long_repeat: 3000,
    });
    sql.push_str("CREATE INDEX idx_items_botid ON items (botid);\nCREATE INDEX idx_items_embedding ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 10);\n");
    sql
}
