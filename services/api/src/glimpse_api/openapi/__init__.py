"""The OpenAPI document served at /openapi.json, derived from the routes themselves.

Routes read raw bodies and query strings (Glance's error semantics), so FastAPI cannot see what
they take: each route describes its body, parameters and answers in its decorator with
`routes.operation(...)`, whose schemas (`components`) come from the ones served under
/v2/schemas and from the domain's own constants. `document.build_document` adds what follows
from the code: Glance's error body, 401 and 503 where a route asks who the caller is, 400 where
it takes input, 404 where its path names a resource, and the identity headers of the
configured auth_strategy.
"""
