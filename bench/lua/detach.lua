-- detach.lua: durable detaches only, every request a real committed change.
--
-- bench/run's detach dataset has BENCH_DETACH attachments, volume dv-K on
-- server ds-(K // 4). Request K detaches dv-K:
--   DELETE /v2.1/servers/ds-(K // 4)/os-volume_attachments/dv-K   (202)
-- Each attachment is detached once; there are enough for about 30k
-- detaches/s over bench/run's runs. Past the last one the requests would be
-- 404s, which wrk counts (err_status) and bench/run reports.
-- Environment: BENCH_AUTH, BENCH_DETACH.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local total = tonumber(os.getenv("BENCH_DETACH") or "131072")
local i = 0

local function make(k)
   k = k % total
   return wrk.format("DELETE", string.format("/v2.1/servers/ds-%d/os-volume_attachments/dv-%d",
                                             math.floor(k / 4), k))
end

-- wrk calls request() once before the run to check it parses, and never
-- sends that one: it must not count (this script is for -t1).
local verified = false

function request()
   if not verified then
      verified = true
      return make(0)
   end
   local r = make(i)
   i = i + 1
   return r
end
