-- delete.lua: DELETE the URL given to wrk, the same request every time
-- (static). bench/run uses it for the floor's DELETE (204, no work behind
-- it), the baseline of the write workloads.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
wrk.method = "DELETE"
