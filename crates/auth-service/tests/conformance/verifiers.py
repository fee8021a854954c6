"""Verifies an access token of a running auth-service with PyJWT, python-jose and joserfc,
each with its default settings, the way a Python service would (issue 16, item 3).

    python3 verifiers.py JWKS_URL ISSUER AUDIENCE TOKEN

The JWKS is fetched from the running server over HTTP. Each library must accept the token
(signature, iss, aud, exp) and refuse it for another audience and another issuer. Prints one
line per library and check; exits 0 when all pass, 1 when one fails, 3 when a package is
missing (the line names it).
"""

import json
import sys
import time
import urllib.request

MISSING = []
try:
    import jwt as pyjwt
except ImportError:
    MISSING.append("PyJWT")
try:
    from jose import jwt as jose_jwt
except ImportError:
    MISSING.append("python-jose")
try:
    from joserfc import jwt as rfc_jwt
    from joserfc.jwk import KeySet
except ImportError:
    MISSING.append("joserfc")
try:
    import cryptography  # noqa: F401  (PyJWT's and python-jose's EC backend)
except ImportError:
    MISSING.append("cryptography")


def with_pyjwt(jwks_url, token, issuer, audience):
    # PyJWKClient fetches the JWKS and picks the key by the token's kid.
    key = pyjwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    return pyjwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iss", "aud"]},
    )


def with_python_jose(jwks, token, issuer, audience):
    algorithm = jose_jwt.get_unverified_header(token)["alg"]
    return jose_jwt.decode(token, jwks, algorithms=[algorithm], audience=audience, issuer=issuer)


def with_joserfc(jwks, token, issuer, audience):
    # No `algorithms`: joserfc's default, its recommended set, is what is tested.
    decoded = rfc_jwt.decode(token, KeySet.import_key_set(jwks))
    rfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


def main():
    if MISSING:
        print("missing python packages: " + ", ".join(MISSING))
        return 3
    jwks_url, issuer, audience, token = sys.argv[1:5]
    with urllib.request.urlopen(jwks_url, timeout=10) as answer:
        jwks = json.load(answer)
    libraries = {
        "PyJWT": lambda iss, aud: with_pyjwt(jwks_url, token, iss, aud),
        "python-jose": lambda iss, aud: with_python_jose(jwks, token, iss, aud),
        "joserfc": lambda iss, aud: with_joserfc(jwks, token, iss, aud),
    }
    failed = False
    for name, verify in libraries.items():
        try:
            claims = verify(issuer, audience)
            assert claims["iss"] == issuer and claims["aud"] == audience, claims
            assert claims["exp"] > time.time(), "expired"
            print(f"{name}: accepted sub={claims['sub']}")
        except Exception as error:  # noqa: BLE001  (any refusal is the finding)
            failed = True
            print(f"{name}: REFUSED the genuine token: {type(error).__name__}: {error}")
        for what, iss, aud in [
            ("another audience", issuer, "someone-else"),
            ("another issuer", "https://evil.example", audience),
        ]:
            try:
                verify(iss, aud)
                failed = True
                print(f"{name}: ACCEPTED the token for {what}")
            except Exception:  # noqa: BLE001
                print(f"{name}: refused it for {what}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
