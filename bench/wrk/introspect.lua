-- wrk script: POST /api/auth/introspect with access tokens, as auth-bench drives it, so that
-- introspection and `me` are measured by the same client (issue 20 compares their rates).
--
-- The tokens come from AUTH_BENCH_TOKENS (comma-separated). Each thread formats one request
-- per token once and sends them in turn. Every answer must be `{"active":true…`: any other
-- (an inactive token, an error body) is counted, and `done` reports the count as `inactive`,
-- which auth-bench counts as failures. `done` prints one JSON line that auth-bench reads.
--
--   AUTH_BENCH_TOKENS=eyJ...,eyJ... wrk -t1 -c16 -d10s -s bench/wrk/introspect.lua \
--     http://127.0.0.1:8080/api/auth/introspect

local tokens = {}
for token in string.gmatch(os.getenv("AUTH_BENCH_TOKENS") or "", "[^,]+") do
  tokens[#tokens + 1] = token
end
local requests = {}
local next_request = 0
inactive = 0

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for n, token in ipairs(tokens) do
    wrk.body = '{"token":"' .. token .. '"}'
    requests[n] = wrk.format()
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, headers, body)
  if status ~= 200 or string.sub(body, 1, 14) ~= '{"active":true' then
    inactive = inactive + 1
  end
end

function done(summary, latency, requests)
  local not_active = 0
  for _, thread in ipairs(threads) do
    not_active = not_active + thread:get("inactive")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"status_errors":%.0f,"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,' ..
    '"timeouts":%.0f,"inactive":%.0f}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, not_active))
end
