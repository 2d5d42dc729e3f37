"""Reading the bots of a DynamoDB export to S3 the straightforward way: every data file,
gzip + json per line, keeping items whose SK contains '#BOT#'. Prints the number of bots."""
import glob
import gzip
import json
import sys

bots = 0
for path in sorted(glob.glob(f"{sys.argv[1]}/**/*.json.gz", recursive=True)):
    with gzip.open(path, "rt") as f:
        for line in f:
            item = json.loads(line)["Item"]
            if "#BOT#" in item["SK"]["S"]:
                bots += 1
print(bots)
