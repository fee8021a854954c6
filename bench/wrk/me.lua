-- wrk script: GET /api/auth/me with bearer tokens, as auth-bench drives it (and any GET without
-- them, such as the `/health` floor, when AUTH_BENCH_TOKENS is empty).
--
-- The tokens come from AUTH_BENCH_TOKENS (comma-separated access tokens or API keys). Each thread formats
-- one request per token once, and sends them in turn, so the service sees every token as it
-- does from auth-bench's own client (a single token would flatter whatever it caches); that
-- costs wrk about a microsecond per request. `done` prints one JSON line that auth-bench reads.
--
--   AUTH_BENCH_TOKENS=eyJ...,eyJ... wrk -t1 -c16 -d10s -s bench/wrk/me.lua http://127.0.0.1:8080/api/auth/me

local tokens = {}
for token in string.gmatch(os.getenv("AUTH_BENCH_TOKENS") or "", "[^,]+") do
  tokens[#tokens + 1] = token
end
local requests = {}
local next_request = 0

function init(args)
  -- No tokens: the same request without credentials (the `/health` floor).
  if #tokens == 0 then
    requests[1] = wrk.format()
    return
  end
  for n, token in ipairs(tokens) do
    wrk.headers["Authorization"] = "Bearer " .. token
    requests[n] = wrk.format()
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"status_errors":%.0f,"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"timeouts":%.0f}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
