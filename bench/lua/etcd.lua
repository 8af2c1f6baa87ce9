-- etcd 3.4's JSON gateway: POST /v3/kv/put with base64 key and value (64 bytes), or
-- POST /v3/kv/range (linearizable, or serializable when SERIALIZABLE=1).
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end
local mode = os.getenv("MODE") or "write"
local value = base64(string.rep("x", 64))
local keys = {}
for i = 0, 9999 do keys[i] = base64("bench/" .. i) end
local readKey = base64("bench/1")
local serializable = os.getenv("SERIALIZABLE") == "1" and ", \"serializable\": true" or ""
local counter = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  if mode == "write" then
    counter = counter + 1
    return wrk.format("POST", "/v3/kv/put", nil,
      "{\"key\": \"" .. keys[counter % 10000] .. "\", \"value\": \"" .. value .. "\"}")
  end
  return wrk.format("POST", "/v3/kv/range", nil, "{\"key\": \"" .. readKey .. "\"" .. serializable .. "}")
end
