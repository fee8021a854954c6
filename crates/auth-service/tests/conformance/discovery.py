"""Validates the discovery documents of a running auth-service with Authlib's RFC 8414
`AuthorizationServerMetadata` (issue 18), the way a Python OAuth client checks a server.

    python3 discovery.py OAUTH_METADATA_JSON OPENID_CONFIGURATION_JSON

Each document is given as JSON text. `validate()` runs every RFC 8414 check Authlib has, and
must accept both documents outright (the service serves the authorization endpoint, so
`response_types_supported` is `["code"]`). Prints one line per document; exits 0 when both
pass, 1 when one fails, 3 when Authlib is missing.
"""

import json
import sys

try:
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
except ImportError:
    print("missing Python package: Authlib")
    sys.exit(3)


def check(name, document):
    try:
        AuthorizationServerMetadata(document).validate()
    except ValueError as error:
        print(f"{name}: validate() refused: {error}")
        return False
    print(f"{name}: validate() accepted")
    return True


def main():
    oauth, openid = (json.loads(text) for text in sys.argv[1:3])
    results = [check("oauth-authorization-server", oauth), check("openid-configuration", openid)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
