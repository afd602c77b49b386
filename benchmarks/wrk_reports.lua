-- wrk script of benchmarks/server.py: every request POSTs a distinct report.
--
--   wrk -t THREADS -c CONNECTIONS -d SECONDS -s wrk_reports.lua URL -- TEMPLATES PHASE [RATE]
--
-- TEMPLATES is a file of report templates, one a line: "level<TAB>json-before-reporter<TAB>json-after-reporter",
-- the JSON being the client's canonical encoding with its line breaks written as the two characters \n.
-- Each request takes the next template and puts a new reporter id in it, made of PHASE, the thread's number and
-- a per-thread counter, so no two requests of a run (or of two phases with different PHASE numbers) carry the
-- same report: idempotency never turns the load into cheap duplicates.
-- RATE (requests per second per thread, optional): when given, requests are paced on a schedule (a slot every
-- 1/RATE s per thread, no catching up after a late slot), so that latency is measured at a fixed offered load.
-- At the end one line "WRK_RESULT {json}" gives the counts and the latency percentiles (microseconds).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

local function paced_delay()
  local now = now_ms()
  if next_slot == nil then
    next_slot = now
  end
  next_slot = math.max(next_slot + interval, now)
  return next_slot - now
end

function init(args)
  templates = {}
  for line in io.lines(args[1]) do
    local level, before, after = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
    -- line breaks of the canonical encoding are written as the two characters \n in the template file
    table.insert(templates, { "/v1/reports/" .. level, (before:gsub("\\n", "\n")), (after:gsub("\\n", "\n")) })
  end
  phase = tonumber(args[2])
  sent = 0
  headers = { ["Content-Type"] = "application/json" }
  local rate = tonumber(args[3] or "0")
  if rate > 0 then
    interval = 1000 / rate
    delay = paced_delay -- wrk paces requests only when the script defines delay()
  end
end

function request()
  sent = sent + 1
  local template = templates[(sent + thread_number * 7919) % #templates + 1]
  local reporter = string.format("%08x%08x%08x%08x", phase, thread_number, math.floor(sent / 4294967296), sent % 4294967296)
  return wrk.format("POST", template[1], headers, template[2] .. reporter .. template[3])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
