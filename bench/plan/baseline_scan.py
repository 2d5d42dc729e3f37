"""The platform's migration script's registry loop (without its y/N prompt): one sequential
Scan with FilterExpression contains(SK, '#BOT#'), paging with LastEvaluatedKey. Prints the
number of bots."""
import sys

import boto3

ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1])
kwargs = {"TableName": sys.argv[2], "FilterExpression": "contains(SK, :b)",
          "ExpressionAttributeValues": {":b": {"S": "#BOT#"}}}
bots = 0
while True:
    page = ddb.scan(**kwargs)
    bots += len(page["Items"])
    if "LastEvaluatedKey" not in page:
        break
    kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
print(bots)
