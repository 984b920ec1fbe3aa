#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/seeds/<target>/seed-*), committed with the targets.

Run from the repository root with the directory of test keys made by openssl as the one
argument (rsa.p8.pem, rsa.p1.pem, p256.p8.pem, p256.sec1.pem, p384.p8.pem, p384.sec1.pem,
ed.p8.pem, enc.pem and certificates rsa.p8.crt, p256.p8.crt, ed.p8.crt); the keys are
throwaway ones made for the corpus and sign nothing anywhere.
"""
import base64, json, os, re, struct, sys

keys = sys.argv[1]
root = "fuzz/seeds"

def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def read(name):
    with open(os.path.join(keys, name), "rb") as f:
        return f.read()

# token_response: the RFC form and every lenient expires_in form.
bodies = {
    "rfc": {"access_token": "eyJhbGciOi.abc.def", "token_type": "Bearer", "expires_in": 3600},
    "string": {"access_token": "a", "token_type": "bearer", "expires_in": "120"},
    "float": {"access_token": "a", "expires_in": 59.5},
    "float-string": {"access_token": "a", "expires_in": " 1e3 "},
    "huge": {"access_token": "a", "expires_in": 1e308},
    "negative": {"access_token": "a", "expires_in": -5},
    "tiny": {"access_token": "a", "expires_in": 1e-300},
    "null": {"access_token": "a", "expires_in": None, "refresh_in": "30"},
    "dpop": {"access_token": "a", "token_type": "DPoP", "expires_in": 60},
    "error": {"error": "invalid_client", "error_description": "bad\nsecret"},
    "no-token": {"token_type": "Bearer"},
    "bad-type": {"access_token": "a", "token_type": ["x"]},
    "non-ascii": {"access_token": "tok\u00e9n", "expires_in": 60},
}
for name, body in bodies.items():
    put("token_response", name, json.dumps(body))
put("token_response", "not-json", "<html>502</html>")
put("token_response", "array", "[1,2]")

# discovery_metadata: a flag byte (bit 0: allow plain http), then the document.
iss = "https://issuer.example/tenant"
docs = {
    "full": {"issuer": iss, "token_endpoint": iss + "/token",
             "mtls_endpoint_aliases": {"token_endpoint": "https://mtls.issuer.example/token"},
             "token_endpoint_auth_methods_supported": ["private_key_jwt", "tls_client_auth"],
             "dpop_signing_alg_values_supported": ["ES256", "EdDSA"]},
    "plain-http": {"issuer": iss, "token_endpoint": "http://issuer.example/token"},
    "loopback": {"issuer": iss, "token_endpoint": "http://127.0.0.1:8080/token"},
    "other-issuer": {"issuer": "https://evil.example", "token_endpoint": iss + "/token"},
    "no-endpoint": {"issuer": iss},
    "bad-url": {"issuer": iss, "token_endpoint": "ftp://x"},
}
for name, doc in docs.items():
    for flag in (0, 1):
        put("discovery_metadata", f"{name}-{flag}", bytes([flag]) + json.dumps(doc).encode())

# pem_key: an algorithm byte (0..6: RS256 PS256 ES256 ES384 EdDSA HS256, 6: the key's own).
pems = ["rsa.p8.pem", "rsa.p1.pem", "p256.p8.pem", "p256.sec1.pem", "p384.p8.pem",
        "p384.sec1.pem", "ed.p8.pem", "enc.pem"]
for p in pems:
    for alg in (6, 1, 2):
        put("pem_key", f"{p}-{alg}", bytes([alg]) + read(p))
put("pem_key", "cert-only", bytes([6]) + read("rsa.p8.crt"))

# der_key_jwk: a label byte (0 PRIVATE KEY, 1 RSA PRIVATE KEY, 2 EC PRIVATE KEY), then DER.
def der(pem):
    b64 = re.sub(rb"-----[^-]+-----|\s", b"", pem)
    return base64.b64decode(b64)
for p, label in [("rsa.p8.pem", 0), ("rsa.p1.pem", 1), ("p256.p8.pem", 0), ("p256.sec1.pem", 2),
                 ("p384.p8.pem", 0), ("p384.sec1.pem", 2), ("ed.p8.pem", 0)]:
    put("der_key_jwk", p, bytes([label]) + der(read(p)))

# certificate: the certificate PEM, a 0xFF byte, the key PEM.
for k in ["rsa.p8", "p256.p8", "ed.p8"]:
    put("certificate", k, read(k + ".crt") + b"\xff" + read(k + ".pem"))
put("certificate", "mismatch", read("rsa.p8.crt") + b"\xff" + read("p256.p8.pem"))
put("certificate", "chain", read("rsa.p8.crt") + read("p256.p8.crt") + b"\xff" + read("rsa.p8.pem"))

# sealed_entry: refresh_at_ms, expires_at_ms (u64 LE), a position (u16 LE), a change byte,
# then the token.
for i, tok in enumerate([b"eyJ.token.sig", b"", b"x" * 300, "t\u00f6k".encode()]):
    put("sealed_entry", f"entry-{i}", struct.pack("<QQHB", 1_700_000_000_000, 1_700_000_060_000, 7 * i, i) + tok)
put("sealed_entry", "versioned", b"\x01" + bytes(12) + bytes(16 + 256))

# redis_reply: RESP2 and RESP3 replies.
replies = {
    "bulk": b"$5\r\nhello\r\n", "nil": b"$-1\r\n", "ok": b"+OK\r\n", "int": b":1\r\n",
    "err": b"-ERR invalid password S3cret%2Bpass\r\n",
    "err-decoded": b"-WRONGPASS S3cret+pass is wrong\r\n",
    "array": b"*2\r\n$1\r\na\r\n:1\r\n", "resp3-null": b"_\r\n",
    "map": b"%1\r\n+a\r\n:1\r\n", "double": b",1.5\r\n", "bool": b"#t\r\n",
    "verbatim": b"=9\r\ntxt:hello\r\n", "big": b"(12345678901234567890\r\n",
    "entry": b"$301\r\n\x01" + bytes(300) + b"\r\n",
}
for name, r in replies.items():
    put("redis_reply", name, r)

# config_value: a key byte (the index in config::KEYS; KEYS.len() picks token_param.NAME with
# NAME, NUL, value), then the value.
KEYS = re.search(r"pub const KEYS: &\[&str\] = &\[(.*?)\];", open("src/config.rs").read(), re.S).group(1)
KEYS = re.findall(r'"([^"]+)"', KEYS)
samples = {
    "token_url": "https://auth.example/connect/token", "base_url": "https://api.example/v3/",
    "timeout_ms": "30000", "refresh_skew_s": "60", "max_retries": "3",
    "proxy": "http://user:S3cretPassword@proxy.example:3128", "redis_url": "redis://:S3cretPassword@127.0.0.1:6379/0",
    "allow_insecure_http": "true", "auth_method": "private_key_jwt", "client_secret": "S3cretValue",
    "issuer": "https://issuer.example/t", "resource": "https://a.example,https://b.example",
}
for i, k in enumerate(KEYS):
    put("config_value", k, bytes([i]) + samples.get(k, "1").encode())
put("config_value", "token-param", bytes([len(KEYS)]) + b"acr_values\x00urn:mace:x")
put("config_value", "header", bytes([0]) + b"X-Api-Key: abc")
put("config_value", "number-garbage", bytes([KEYS.index("timeout_ms")]) + b"99999999999999999999")

# www_authenticate: fields one per line, then NUL and a DPoP-Nonce.
fields = {
    "dpop": 'DPoP error="use_dpop_nonce", algs="ES256"\x00n-1',
    "bearer-first": 'Bearer realm="api", DPoP error="use_dpop_nonce"\x00nonce-2',
    "two-fields": 'Bearer realm="api"\nDPoP algs="ES256 PS256", error="use_dpop_nonce"\x00abc',
    "token68": "Negotiate a87421000492aa874209af8bc028==, Basic realm=\"x\"",
    "escaped": 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    "bearer-error": 'Bearer error="use_dpop_nonce"\x00',
}
for name, f in fields.items():
    put("www_authenticate", name, f)

# url_join: base_url, newline, target.
joins = {
    "path": "https://api.example/v3\n/ocr/recognize?lang=en",
    "absolute": "https://api.example/v3\nhttps://other.example/x#f",
    "userinfo": "https://user:pw@api.example/\nstatus",
    "dot-dot": "https://api.example/v3/\n../../admin",
    "backslash": "https://api.example\n\\\\evil.example/x",
    "scheme-in-query": "http://127.0.0.1:8080\n/redirect?to=https://evil.example",
    "at": "https://api.example\n@evil.example",
    "ipv6": "http://[::1]:9/\n//evil.example/",
}
for name, j in joins.items():
    put("url_join", name, j)
print("seeds written under", root)
