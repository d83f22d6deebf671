-- writes.lua: durable writes, every request a real committed change.
--
-- bench/run makes BENCH_PAIRS server/volume pairs, ws-K with wv-K, the odd
-- ones attached and the even ones not. Requests go round the pairs in order;
-- on visit v of pair K the request attaches if K + v is even and detaches
-- otherwise, so every request flips its pair's state, and each pass over the
-- pairs is half POST attach (200) and half DELETE detach (202):
--   POST   /v2.1/servers/ws-K/os-volume_attachments  {"volumeAttachment": {"volumeId": "wv-K"}}
--   DELETE /v2.1/servers/ws-K/os-volume_attachments/wv-K
-- wrk's Lua cannot tell which connection a request goes out on, so instead
-- of one pair per connection the pairs far outnumber the connections (2048
-- against at most 64): a pair's next request is made 2048 requests after
-- its last, long after that one was answered. A request that found its pair
-- in the wrong state would be a 4xx, which wrk counts (err_status), and
-- bench/run reports.
--
-- With several wrk threads (-t N, and BENCH_WRK_THREADS=N), thread T takes
-- the pairs K with K mod N = T. Environment: BENCH_AUTH, BENCH_PAIRS.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local pairs_total = tonumber(os.getenv("BENCH_PAIRS") or "2048")
local threads_total = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
local made = 0

function setup(thread)
   thread:set("tid", made)
   made = made + 1
end

local mine, count, i = {}, 0, 0
local post_headers = {}

function init(args)
   for k = (tid or 0), pairs_total - 1, threads_total do
      count = count + 1
      mine[count] = k
   end
   -- wrk.format() takes the headers given *instead of* wrk.headers (which
   -- wrk.init has completed with Host by now), so merge them
   for name, value in pairs(wrk.headers) do
      post_headers[name] = value
   end
   post_headers["Content-Type"] = "application/json"
end

local function make(n)
   local k = mine[n % count + 1]
   local visit = math.floor(n / count)
   if (k + visit) % 2 == 0 then
      return wrk.format("POST", string.format("/v2.1/servers/ws-%d/os-volume_attachments", k),
                        post_headers,
                        string.format('{"volumeAttachment": {"volumeId": "wv-%d"}}', k))
   end
   return wrk.format("DELETE",
                     string.format("/v2.1/servers/ws-%d/os-volume_attachments/wv-%d", k, k))
end

-- wrk calls request() once on its first thread before the run, to check
-- the request parses, and never sends that one: it must not count.
local verified = false

function request()
   if not verified and (tid or 0) == 0 then
      verified = true
      return make(0)
   end
   local r = make(i)
   i = i + 1
   return r
end
