-- hotelReservation: the recommendations endpoint alone.
--   GET /recommendations?require=dis|rate|price&lat=..&lon=..
-- Usage: wrk -s recommendations.lua http://frontend:5000   (wrk2: add -R <rate>)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(dir .. "lib/report.lua")

local criteria = { "dis", "rate", "price" }

setup = lib.setup
init = lib.init
done = lib.done

request = function()
  local lat, lon = lib.lat_lon()
  local path = "/recommendations?require=" .. criteria[math.random(1, 3)] ..
    "&lat=" .. lat .. "&lon=" .. lon
  return wrk.format("GET", path)
end
