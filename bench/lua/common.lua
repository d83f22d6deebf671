-- common.lua: headers every bench request carries, from the environment
-- bench/run sets:
--   BENCH_AUTH  the Basic credentials, already base64-encoded ("dXNlcjpwdw==")
-- Keep-alive is wrk's default (HTTP/1.1, no Connection: close).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
   wrk.headers["Authorization"] = "Basic " .. auth
end
wrk.headers["Accept"] = "application/json"

return here
