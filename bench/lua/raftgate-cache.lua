-- raftgate's cache API: PUT /cache/bench-<n> (64-byte values, 10,000 keys) or GET /cache/bench-1,
-- as tenant "bench" (MODE=put|get, KEY=the tenant's API key).
local mode = os.getenv("MODE") or "put"
local value = string.rep("x", 64)
local counter = 0
wrk.headers["X-Tenant"] = "bench"
wrk.headers["X-API-Key"] = os.getenv("KEY") or ""
request = function()
  if mode == "put" then
    counter = counter + 1
    return wrk.format("PUT", "/cache/bench-" .. (counter % 10000), nil, value)
  end
  return wrk.format("GET", "/cache/bench-1")
end
