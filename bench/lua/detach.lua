-- detach.lua: durable detaches only, every request a real committed change.
--
-- The detach dataset of bench/run and bench/pg/run has BENCH_DETACH
-- attachments, volume dv-K on server ds-(K // 4), each number written with
-- 7 digits (dv-0000042), so that the ids sort as their numbers do. Request i
-- of this wrk detaches K = BENCH_OFFSET + i * BENCH_STRIDE (modulo
-- BENCH_DETACH):
--   DELETE /v2.1/servers/ds-(K // 4)/os-volume_attachments/dv-K   (202)
-- bench/run leaves the offset at 0 and sets the stride from its
-- --detach-stride (1 unless given: request K detaches dv-K); bench/pg/run
-- gives each of its n wrk processes sharing one dataset (one per attachd
-- node) an offset of its own, so that none detaches another's attachment:
-- node i the block that starts at i * BENCH_DETACH / n (stride 1), or with
-- --interleave offset i and stride n (neighbouring rows).
-- Each attachment is detached once; there are enough for about 30k
-- detaches/s over bench/run's runs. Past the last one the requests would be
-- 404s, which wrk counts (err_status) and the harnesses report.
-- Environment: BENCH_AUTH, BENCH_DETACH (131072), BENCH_OFFSET (0),
-- BENCH_STRIDE (1).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local total = tonumber(os.getenv("BENCH_DETACH") or "131072")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local stride = tonumber(os.getenv("BENCH_STRIDE") or "1")
local i = 0

local function make(k)
   k = k % total
   return wrk.format("DELETE", string.format("/v2.1/servers/ds-%07d/os-volume_attachments/dv-%07d",
                                             math.floor(k / 4), k))
end

-- wrk calls request() once before the run to check it parses, and never
-- sends that one: it must not count (this script is for -t1).
local verified = false

function request()
   if not verified then
      verified = true
      return make(offset)
   end
   local r = make(offset + i * stride)
   i = i + 1
   return r
end
