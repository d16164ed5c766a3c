-- wrk script for bench/webhook.py: POST one AdmissionReview body, over and over.
--
-- Parameters come from the environment, because wrk runs this file in several Lua states
-- (the main state that calls setup/done, and one per thread that calls init/delay) and only
-- the thread states see the command-line arguments:
--   KNSCALE_BENCH_BODY  path of the JSON body to send (required)
--   KNSCALE_BENCH_RATE  requests per second for the whole run (optional): paces the requests
--                       with delay() against an absolute schedule, so a slow reply does not
--                       lower the offered rate (the schedule catches up) -- use with -t1.
--   KNSCALE_BENCH_UNIQUE a marker in the body (optional): every request replaces it with its
--                       own sequence number of the same width, so each one is a pod the
--                       server has not seen (no decision-cache hit); the length never changes.
--
-- done() prints one line "KNSCALE-BENCH {json}" that bench/webhook.py parses. No response()
-- callback: wrk then skips parsing headers into Lua, which keeps the client cheap; wrk still
-- counts HTTP statuses > 399 in errors.status.

local body_path = os.getenv("KNSCALE_BENCH_BODY")
local rate = tonumber(os.getenv("KNSCALE_BENCH_RATE") or "")

local function read_body(path)
  local file = assert(io.open(path, "rb"), "cannot open KNSCALE_BENCH_BODY " .. tostring(path))
  local data = file:read("*a")
  file:close()
  return data
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = read_body(assert(body_path, "KNSCALE_BENCH_BODY is not set"))

local unique_mark = os.getenv("KNSCALE_BENCH_UNIQUE")
if unique_mark and unique_mark ~= "" then
  local head, tail = wrk.body:match("^(.-)" .. unique_mark .. "(.*)$")
  assert(head, "KNSCALE_BENCH_UNIQUE marker not found in the body")
  local width = #unique_mark
  local seq = 0
  -- Called for every request: the body with this request's number in place of the marker.
  function request()
    seq = seq + 1
    return wrk.format(nil, nil, nil, head .. string.format("%0" .. width .. "d", seq) .. tail)
  end
end

-- Requests sent later than their slot: how far behind schedule the client fell. A sizeable
-- count means the fixed-rate figure is not to be trusted (too few connections, or a stall).
late = 0
max_late_ms = 0

if rate then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } knscale_timespec;
    int clock_gettime(int clock_id, knscale_timespec *tp);
  ]])
  local CLOCK_MONOTONIC = 1
  local ts = ffi.new("knscale_timespec")
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end

  local interval_ms = 1000 / rate
  local next_ms = nil

  -- Called before every request on every connection (the first ones too): the request gets
  -- the next free slot of the schedule and waits until then.
  function delay()
    local now = now_ms()
    if next_ms == nil then
      next_ms = now
    end
    local wait = next_ms - now
    next_ms = next_ms + interval_ms
    if wait < -1 then
      late = late + 1
      if -wait > max_late_ms then
        max_late_ms = -wait
      end
    end
    if wait < 0 then
      return 0
    end
    return wait
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total_late, worst_late = 0, 0
  for _, thread in ipairs(threads) do
    total_late = total_late + (thread:get("late") or 0)
    worst_late = math.max(worst_late, thread:get("max_late_ms") or 0)
  end
  local percentiles = {}
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    table.insert(percentiles, string.format('"%s":%d', tostring(p), latency:percentile(p)))
  end
  local e = summary.errors
  io.write(string.format(
    'KNSCALE-BENCH {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"percentiles":{%s}},'
      .. '"late_requests":%d,"max_late_ms":%.3f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(percentiles, ","),
    total_late, worst_late
  ))
end
