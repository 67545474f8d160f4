-- hotelReservation mixed workload, in DeathStarBench's usual proportions
-- (mixed-workload type 1): search 60 %, recommend 39 %, user login 0.5 %,
-- reserve 0.5 %. Written for multiparty-lb; paths and parameters follow the
-- hotelReservation frontend's HTTP API.
-- Usage: wrk -s hotel-mixed.lua http://frontend:5000   (wrk2: add -R <rate>)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(dir .. "lib/report.lua")

local SEARCH, RECOMMEND, USER = 0.60, 0.39, 0.005 -- reserve: the rest (0.005)

setup = lib.setup
init = lib.init
done = lib.done

-- users Cornell_0 .. Cornell_500; the password is the id repeated 10 times
local function user()
  local id = tostring(math.random(0, 500))
  return "Cornell_" .. id, string.rep(id, 10)
end

local function search()
  local in_day = math.random(9, 23)
  local out_day = math.random(in_day + 1, 24)
  local lat, lon = lib.lat_lon()
  return wrk.format("GET", "/hotels?inDate=" .. lib.date(in_day) ..
    "&outDate=" .. lib.date(out_day) .. "&lat=" .. lat .. "&lon=" .. lon)
end

local criteria = { "dis", "rate", "price" }
local function recommend()
  local lat, lon = lib.lat_lon()
  return wrk.format("GET", "/recommendations?require=" ..
    criteria[math.random(1, 3)] .. "&lat=" .. lat .. "&lon=" .. lon)
end

local function login()
  local name, password = user()
  return wrk.format("GET", "/user?username=" .. name .. "&password=" .. password)
end

local function reserve()
  local in_day = math.random(9, 23)
  local out_day = in_day + math.random(1, 5)
  local lat, lon = lib.lat_lon()
  local name, password = user()
  return wrk.format("POST", "/reservation?inDate=" .. lib.date(in_day) ..
    "&outDate=" .. lib.date(out_day) .. "&lat=" .. lat .. "&lon=" .. lon ..
    "&hotelId=" .. tostring(math.random(1, 80)) .. "&customerName=" .. name ..
    "&username=" .. name .. "&password=" .. password .. "&number=1")
end

request = function()
  local coin = math.random()
  if coin < SEARCH then
    return search()
  elseif coin < SEARCH + RECOMMEND then
    return recommend()
  elseif coin < SEARCH + RECOMMEND + USER then
    return login()
  else
    return reserve()
  end
end
