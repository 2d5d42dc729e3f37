"""Loads the benchmark table into moto and writes the same items as a gzipped export.

usage: fixture.py ENDPOINT WORKDIR BOTS OTHERS
"""
import gzip
import json
import os
import random
import sys

import boto3

endpoint, work, bots, others = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ddb = boto3.client("dynamodb", endpoint_url=endpoint)
ddb.create_table(
    TableName="bench_table",
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")],
    KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
)
rng = random.Random(8)
users = [f"user-{i:04d}" for i in range(max(1, bots // 4))]
items = []
for i in range(bots):
    u = users[i % len(users)]
    items.append({
        "PK": {"S": u}, "SK": {"S": f"{u}#BOT#01HBENCH{i:018d}"}, "Title": {"S": f"bot {i}"},
        "Knowledge": {"M": {"source_urls": {"L": [{"S": f"https://example.com/{i}"}]},
                            "sitemap_urls": {"L": []}, "filenames": {"L": []}}},
        "EmbeddingParams": {"M": {"chunk_size": {"N": "1000"}, "chunk_overlap": {"N": "200"},
                                  "enable_partition_pdf": {"BOOL": False}}},
        "SyncStatus": {"S": "SUCCEEDED"},
    })
for i in range(others):
    u = rng.choice(users)
    if i % 10 == 0:
        items.append({"PK": {"S": u}, "SK": {"S": f"{u}#BOT_ALIAS#01HALIAS{i:018d}"}, "Title": {"S": "alias"}})
    else:
        items.append({"PK": {"S": u}, "SK": {"S": f"{u}#CONV#conv{i:020d}"}, "Title": {"S": "chat"},
                      "MessageMap": {"S": "x" * 2000}})
for start in range(0, len(items), 25):
    ddb.batch_write_item(RequestItems={"bench_table": [{"PutRequest": {"Item": it}} for it in items[start:start + 25]]})
os.makedirs(f"{work}/export/data", exist_ok=True)
with gzip.open(f"{work}/export/data/part-0.json.gz", "wt") as f:
    for it in items:
        f.write(json.dumps({"Item": it}) + "\n")
