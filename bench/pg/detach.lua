-- detach.lua (bench/pg): bench/lua/detach.lua with an offset (and a stride),
-- so that wrk processes sharing one dataset (one per attachd node) never
-- detach the same attachment: bench/pg/run gives node i of n the block that
-- starts at i * BENCH_DETACH / n (stride 1), so that two nodes' transactions
-- do not work on neighbouring rows. Request i of this wrk detaches
-- K = BENCH_OFFSET + i * BENCH_STRIDE:
--   DELETE /v2.1/servers/ds-(K // 4)/os-volume_attachments/dv-K   (202)
-- Environment: BENCH_AUTH, BENCH_DETACH (attachments in the dataset),
-- BENCH_OFFSET (0), BENCH_STRIDE (1). For -t1.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "../lua/common.lua")

local total = tonumber(os.getenv("BENCH_DETACH") or "131072")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local stride = tonumber(os.getenv("BENCH_STRIDE") or "1")
local i = 0

local function make(k)
   k = k % total
   return wrk.format("DELETE", string.format("/v2.1/servers/ds-%d/os-volume_attachments/dv-%d",
                                             math.floor(k / 4), k))
end

-- wrk calls request() once before the run to check it parses, and never
-- sends that one: it must not count.
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
