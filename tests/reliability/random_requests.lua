-- wrk script: requests with random methods to random URLs. Each thread stops after
-- MQ_REQUESTS_PER_THREAD answers (the answers read in that same turn still count, up to one
-- per connection) and prints one "MQ thread done" line with its counts
-- (wrk itself runs for its whole -d duration: the caller sends SIGINT on those lines).
-- HEAD is left out: wrk's parser would wait for the body a HEAD answer never has.

local methods = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "BREW", "X"}
local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.~"
local limit = tonumber(os.getenv("MQ_REQUESTS_PER_THREAD") or "1000")
local threads = {}
local next_seed = tonumber(os.getenv("MQ_SEED") or "1")

function setup(thread)
   thread:set("seed", next_seed)
   next_seed = next_seed + 1
   table.insert(threads, thread)
end

-- Globals, not locals: done() reads them through thread:get().
answered = 0
server_errors = 0

-- wrk calls request() once in the first thread's Lua state, after init(), and parses that
-- request to check it: an invented method there makes wrk exit at once ("invalid HTTP
-- method"), for the seeds whose first draw is one. That first request is a plain one.
checked = false

function init(args)
   math.randomseed(seed)
end

local function word(low, high)
   local n = math.random(low, high)
   local out = {}
   for i = 1, n do
      local k = math.random(#alphabet)
      out[i] = alphabet:sub(k, k)
   end
   return table.concat(out)
end

local function path()
   local kind = math.random(6)
   if kind == 1 then
      return "/api/v1/repos/" .. word(1, 12) .. "/" .. word(1, 12) .. "/queue"
   elseif kind == 2 then
      return "/api/v1/repos/" .. word(1, 12) .. "/" .. word(1, 12) .. "/queue/" .. math.random(1, 99999)
   elseif kind == 3 then
      return "/healthz?" .. word(1, 20) .. "=" .. word(0, 20)
   elseif kind == 4 then
      return "/debug/" .. word(1, 30)
   end
   local parts = {}
   for i = 1, math.random(1, 8) do
      parts[i] = word(1, 40)
   end
   return "/" .. table.concat(parts, "/")
end

function request()
   if not checked then
      checked = true
      return wrk.format("GET", "/healthz")
   end
   return wrk.format(methods[math.random(#methods)], path())
end

function response(status, headers, body)
   answered = answered + 1
   if status >= 500 then
      server_errors = server_errors + 1
   end
   if answered == limit then
      io.write(string.format("MQ thread done answered=%d server_errors=%d\n", answered, server_errors))
      io.flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total_answered, total_errors = 0, 0
   for _, thread in ipairs(threads) do
      total_answered = total_answered + thread:get("answered")
      total_errors = total_errors + thread:get("server_errors")
   end
   io.write(string.format("MQ answered=%d server_errors=%d socket_errors=%d\n",
      total_answered, total_errors,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
