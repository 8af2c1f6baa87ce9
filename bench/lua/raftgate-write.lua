-- PUT /kv/bench/<n> with a 64-byte value; keys cycle over 10,000 so the store stays small.
local counter = 0
local value = string.rep("x", 64)
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/kv/bench/" .. (counter % 10000), nil, value)
end
