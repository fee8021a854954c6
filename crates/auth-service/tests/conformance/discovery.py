"""Validates the discovery documents of a running auth-service with Authlib's RFC 8414
`AuthorizationServerMetadata` (issue 18), the way a Python OAuth client checks a server.

    python3 discovery.py OAUTH_METADATA_JSON OPENID_CONFIGURATION_JSON

Each document is given as JSON text. `validate()` runs every RFC 8414 check Authlib has. The
service has no authorization endpoint and so supports no response type: it publishes
`response_types_supported: []`, which RFC 8414 allows (a JSON array) and Authlib refuses (it
wants a non-empty one). That one refusal is reported as such, and every other check is then
run on its own. Prints one line per document and check; exits 0 when all pass, 1 when one
fails, 3 when Authlib is missing.
"""

import json
import sys

try:
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
except ImportError:
    print("missing Python package: Authlib")
    sys.exit(3)

EMPTY_RESPONSE_TYPES = '"response_types_supported" is required'


def check(name, document):
    metadata = AuthorizationServerMetadata(document)
    try:
        metadata.validate()
        print(f"{name}: validate() accepted")
        return True
    except ValueError as error:
        if str(error) != EMPTY_RESPONSE_TYPES or document.get("response_types_supported") != []:
            print(f"{name}: validate() refused: {error}")
            return False
    print(f"{name}: validate() refused only the empty response_types_supported")
    passed = True
    for key in AuthorizationServerMetadata.REGISTRY_KEYS:
        if key == "response_types_supported":
            continue
        try:
            getattr(metadata, f"validate_{key}")()
        except ValueError as error:
            print(f"{name}: {key} refused: {error}")
            passed = False
    if passed:
        print(f"{name}: every other check accepted")
    return passed


def main():
    oauth, openid = (json.loads(text) for text in sys.argv[1:3])
    results = [check("oauth-authorization-server", oauth), check("openid-configuration", openid)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
