-- Shared pieces of the multiparty-lb wrk/wrk2 workloads: per-thread seeding
-- and a done() hook printing one machine-readable result line.
--
-- Loaded by the workload scripts with dofile(<dir of the script>/lib/report.lua);
-- runs unchanged under wrk (4.x, LuaJIT) and wrk2 (-R).
local M = {}

local next_thread_id = 0

-- setup(thread) runs once per thread in the main Lua state: hand each thread
-- an id so that threads draw different random streams.
function M.setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("mplb_thread_id", next_thread_id)
end

-- init(args) runs in each thread's own Lua state.
function M.init()
  local id = mplb_thread_id or 0
  math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
  -- the first draws of a fresh LuaJIT generator are poorly mixed
  math.random(); math.random(); math.random()
end

-- done(summary, latency, requests): one line that run.sh parses.
-- Latencies are in microseconds in wrk's histogram; we print milliseconds.
-- Under wrk2 -R the histogram is corrected for coordinated omission;
-- under plain wrk it is not.
function M.done(summary, latency)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "MPLB_RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end

-- A latitude/longitude around the hotelReservation data set's centre
-- (San Francisco bay), as the DeathStarBench workloads draw them.
function M.lat_lon()
  local lat = 38.0235 + (math.random(0, 481) - 240.5) / 1000.0
  local lon = -122.095 + (math.random(0, 325) - 157.0) / 1000.0
  return string.format("%.4f", lat), string.format("%.4f", lon)
end

-- "2015-04-DD" for a day of April 2015.
function M.date(day)
  return string.format("2015-04-%02d", day)
end

return M
