"""Verifies webhook deliveries with the `standardwebhooks` package (the Standard Webhooks
reference library for Python), for tests/conformance/webhooks.rs.

Usage: webhooks.py SECRET DELIVERIES_JSON — a JSON list of {"headers": {...}, "body": "..."}.
Each must verify and parse to an envelope whose id is its webhook-id; the same delivery with
a changed body or another secret must not. Exit code 3: the package is missing."""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as error:
    print(f"the standardwebhooks package is missing: {error}")
    sys.exit(3)

secret, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as file:
    deliveries = json.load(file)

ours = Webhook(secret)
other = Webhook("whsec_" + "b3RoZXItd2ViaG9vay1zaWduaW5nLWtleS0zMmJ5dGU=")
verified = 0
for delivery in deliveries:
    headers, body = delivery["headers"], delivery["body"]
    envelope = ours.verify(body, headers)
    assert envelope["id"] == headers["webhook-id"], (envelope, headers)
    for webhook, data in ((ours, body + " "), (other, body)):
        try:
            webhook.verify(data, headers)
        except WebhookVerificationError:
            continue
        print(f"a forged delivery verified: {headers['webhook-id']}")
        sys.exit(1)
    verified += 1
print(f"verified {verified}")
