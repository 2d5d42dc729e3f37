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
