-- GET /kv/bench/1 with the consistency given in the environment (linearizable by default).
local consistency = os.getenv("CONSISTENCY") or "linearizable"
request = function()
  return wrk.format("GET", "/kv/bench/1?consistency=" .. consistency)
end
