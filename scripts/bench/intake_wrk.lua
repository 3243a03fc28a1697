-- wrk script for scripts/bench/intake.py: POST a report per request, each at the next point of POINTS_FILE
-- (lon,lat per line; thread k of WRK_THREADS takes points k, k + WRK_THREADS …), the event class rotating over
-- CLASSES (comma-separated, intake.py's list), a key no other request or run uses (Idempotency-Key).
-- Prints one JSON line: requests, non-201 answers, latency p50/p95/mean in ms.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  points = {}
  for line in io.lines(os.getenv("POINTS_FILE")) do
    local lon, lat = line:match("([^,]+),([^,]+)")
    table.insert(points, {lon, lat})
  end
  classes = {}
  for code in string.gmatch(os.getenv("CLASSES"), "[^,]+") do
    table.insert(classes, code)
  end
  run = os.getenv("RUN_ID")
  stride = tonumber(os.getenv("WRK_THREADS"))
  refused = 0
  first_refusal = ""
end

function request()
  local i = counter * stride + tid - 1
  local p = points[(i % #points) + 1]
  local body = string.format(
    '{"class_code":"%s","lon":%s,"lat":%s,"datum":"cgcs2000","description":"bench","source":"patrol"}',
    classes[(i % #classes) + 1], p[1], p[2])
  -- a supervisor's patrol report: the channel its role names (cases.REPORT_SOURCES)
  local headers = {["Content-Type"] = "application/json", ["X-Role"] = "supervisor",
                   ["Idempotency-Key"] = string.format("w%s-%d-%d", run, tid, counter)}
  counter = counter + 1
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    refused = refused + 1
    if first_refusal == "" then first_refusal = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, requests)
  local refusals, sample = 0, ""
  for _, t in ipairs(threads) do
    refusals = refusals + t:get("refused")
    if sample == "" then sample = t:get("first_refusal") end
  end
  io.write(string.format(
    '{"requests":%d,"refused":%d,"socket_errors":%d,"p50_ms":%.3f,"p95_ms":%.3f,"mean_ms":%.3f,"sample":"%s"}\n',
    summary.requests, refusals,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency.mean / 1000,
    (sample:gsub('[%c"\\]', " "))))
end
