-- get.lua: GET the URL given to wrk, the same request every time (a static
-- request: wrk builds it once and runs no Lua per request). bench/run uses it
-- for the floor's GET, attachd's GET one attachment
-- (/v2.1/servers/S/os-volume_attachments/V) and GET server show
-- (/v2.1/servers/S).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
wrk.method = "GET"
