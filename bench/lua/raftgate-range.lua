-- GET /kv?prefix=<PREFIX>&limit=<LIMIT> with the consistency given in the environment: a large
-- range read (bench/ranges.sh fills PREFIX with 10,000 keys).
local prefix = os.getenv("PREFIX") or "range/"
local limit = os.getenv("LIMIT") or "10000"
local consistency = os.getenv("CONSISTENCY") or "linearizable"
request = function()
  return wrk.format("GET", "/kv?prefix=" .. prefix .. "&limit=" .. limit .. "&consistency=" .. consistency)
end
