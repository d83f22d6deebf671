-- get_random.lua: GET one attachment chosen at random among all of them, so
-- that a large database is really read across (the static get.lua reads one
-- hot row). bench/run's dataset names attachment i (0 <= i < BENCH_N) as
--   server  bs-(i // 4)   volume  bv-i      (4 attachments per server)
-- Environment: BENCH_AUTH, BENCH_N.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local n = tonumber(os.getenv("BENCH_N") or "1000")
local per_server = 4

function init(args)
   math.randomseed(os.time())
end

function request()
   local i = math.random(0, n - 1)
   local path = string.format("/v2.1/servers/bs-%d/os-volume_attachments/bv-%d",
                              math.floor(i / per_server), i)
   return wrk.format("GET", path)
end
