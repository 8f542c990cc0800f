"""auth_strategy = keystone: X-Auth-Token (and X-Service-Token) validated by Keystone v3.

keystonemiddleware is not used: it is WSGI middleware whose validation calls block (requests and
keystoneauth sessions), so on an asyncio server it would need a thread per request in flight.
Here everything is async on one shared httpx.AsyncClient per process:

- `client.KeystoneClient` authenticates the service itself (POST /v3/auth/tokens with the
  `[keystone_authtoken]` password, scoped to its project; again when its token nears expiry or
  Keystone answers 401) and validates user tokens with GET /v3/auth/tokens.
- `cache.TokenCache` keeps validations for the earlier of the token's expiry and
  `token_cache_time`, in a bounded in-process LRU and, with `cache_redis_url`, in Redis so every
  API node shares them. Keys are SHA-256 hashes of tokens, never the tokens.
- `authenticator.KeystoneAuthenticator` turns a request into a RequestContext, rejects expired
  tokens even when cached, and checks service tokens against `service_token_roles`.

As with keystonemiddleware, a token revoked in Keystone (it then answers 404) stays accepted by a
node that has cached its validation until that entry ages out (`token_cache_time`).
"""

from glimpse_api.keystone.authenticator import KeystoneAuthenticator

__all__ = ["KeystoneAuthenticator"]
