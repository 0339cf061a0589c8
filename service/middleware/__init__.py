"""The HTTP edge's layers, each a pure ASGI middleware with one job, from the outside in:

    RequestContext  request id and security headers on every response
    Observation     Prometheus request metrics and the access log
    Admission       in-flight limit, body-size limit, request timeout
    BearerAuth      bearer tokens (only when tokens are configured)

Pure ASGI (not BaseHTTPMiddleware), so responses stream through untouched.
"""
