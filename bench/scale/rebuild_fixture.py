"""The rebuild side of bench/scale: the platform's registry and documents in moto, and a
loopback embedding provider with Bedrock's latency and one shared request limit.

  rebuild_fixture.py registry ENDPOINT BOTS      creates the conversation table (DynamoDB) with
                                                 BOTS bots and their documents (S3); prints
                                                 "TABLE BUCKET"
  rebuild_fixture.py provider PORT LIMIT WINDOW LATENCY_MS DIM
                                                 serves an OpenAI-shaped /v1/embeddings that
                                                 waits LATENCY_MS per request and answers 429 to
                                                 a request that would make more than LIMIT in
                                                 the last WINDOW seconds; GET /stats gives what
                                                 it saw
"""

import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def registry(endpoint, bots):
    import boto3
    from concurrent.futures import ThreadPoolExecutor

    kw = dict(endpoint_url=endpoint, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    ddb, s3 = boto3.client("dynamodb", **kw), boto3.client("s3", **kw)
    table, bucket = "scale-bots", "scale-docs"
    s = {"AttributeType": "S"}
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[dict(AttributeName=n, **s) for n in ("PK", "SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                   {"AttributeName": "SK", "KeyType": "RANGE"}])
    s3.create_bucket(Bucket=bucket)
    rng = random.Random(7)
    words = ["retention", "invoice", "shipping", "warranty", "onboarding", "latency", "quota",
             "escalation", "refund", "backup", "region", "cluster", "policy", "ticket"]

    def bot(n):
        user, bot_id = f"user{n % 40:03d}", f"01JSCALEBOT{n:015d}"
        text = "\n\n".join(
            " ".join(rng.choice(words) for _ in range(60)) + f" (bot {n}, part {p})"
            for p in range(3))
        s3.put_object(Bucket=bucket, Key=f"{user}/{bot_id}/documents/guide.txt",
                      Body=text.encode())
        return {
            "PK": {"S": user}, "SK": {"S": f"{user}#BOT#{bot_id}"},
            "Title": {"S": f"bot {n}"},
            "Knowledge": {"M": {"source_urls": {"L": []}, "sitemap_urls": {"L": []},
                                "filenames": {"L": [{"S": "guide.txt"}]}}},
            "EmbeddingParams": {"M": {"chunk_size": {"N": "300"}, "chunk_overlap": {"N": "30"}}},
            "SyncStatus": {"S": "SUCCEEDED"}, "SyncStatusReason": {"S": ""},
            "LastExecId": {"S": "old-platform-task"},
        }

    with ThreadPoolExecutor(8) as pool:
        items = list(pool.map(bot, range(bots)))
    for i in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}}
                                                   for it in items[i:i + 25]]})
    print(table, bucket)


class Provider:
    def __init__(self, limit, window, latency, dim):
        self.limit, self.window, self.latency, self.dim = limit, window, latency, dim
        self.lock = threading.Lock()
        self.accepted, self.rejected, self.texts = [], 0, 0

    def admit(self, texts):
        now = time.monotonic()
        with self.lock:
            recent = sum(1 for t in self.accepted[-self.limit:] if now - t < self.window)
            if recent >= self.limit:
                self.rejected += 1
                return False
            self.accepted.append(now)
            self.texts += texts
            return True

    def stats(self):
        with self.lock:
            acc = sorted(self.accepted)
        # The most any window saw (sliding, over each accepted request's window), and the
        # share of the limit used while busy: requests over the limit's capacity from the
        # first to the last request.
        most, j = 0, 0
        for i, t in enumerate(acc):
            while acc[j] <= t - self.window:
                j += 1
            most = max(most, i - j + 1)
        busy = (acc[-1] - acc[0]) if len(acc) > 1 else 0.0
        capacity = self.limit * busy / self.window if busy else 0
        return {"accepted": len(acc), "rejected": self.rejected, "texts": self.texts,
                "most_in_a_window": most, "limit": self.limit, "window_secs": self.window,
                "busy_secs": round(busy, 1),
                "utilisation": round(len(acc) / capacity, 3) if capacity else None}


def provider(port, limit, window, latency_ms, dim):
    p = Provider(limit, window, latency_ms / 1000, dim)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(200, p.stats())

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            texts = req.get("input") or []
            texts = [texts] if isinstance(texts, str) else texts
            if not p.admit(len(texts)):
                return self.reply(429, {"error": {"message": "Rate limit reached for requests"}})
            time.sleep(p.latency)
            data = [{"index": i, "embedding": [((len(t) + d) % 17) / 17.0 for d in range(dim)]}
                    for i, t in enumerate(texts)]
            self.reply(200, {"data": data,
                             "usage": {"prompt_tokens": sum(len(t) // 4 for t in texts)}})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "registry":
        registry(sys.argv[2], int(sys.argv[3]))
    else:
        provider(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
                 int(sys.argv[6]))
