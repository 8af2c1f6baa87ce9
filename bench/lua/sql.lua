-- POST /sql {"sql":"SELECT 1"} as tenant TENANT with API key KEY (the tenant's pool, its route).
wrk.method = "POST"
wrk.path = "/sql"
wrk.body = '{"sql":"SELECT 1"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Tenant"] = os.getenv("TENANT") or "bench"
wrk.headers["X-API-Key"] = os.getenv("KEY") or "bench-api-key"
