-- wrk script of the soak test: 70 % cached pages over 5000 keys, 30 % an uncached JSON route;
-- SOAK_DELAY_MS (fractional: whole milliseconds, randomly rounded) paces each connection so the
-- whole run holds a chosen rate.
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
local whole = math.floor(delay_ms)
local fraction = delay_ms - whole
local counter = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

function request()
  counter = counter + 1
  if math.random() < 0.7 then
    return wrk.format("GET", "/cached/" .. math.random(0, 4999))
  end
  return wrk.format("GET", "/plain")
end

if delay_ms > 0 then
  function delay()
    if math.random() < fraction then
      return whole + 1
    end
    return whole
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    "SOAK requests=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d " ..
    "errors_timeout=%d duration_us=%d p99_us=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, summary.duration,
    latency:percentile(99)))
end
