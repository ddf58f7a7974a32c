-- wrk script: replay one pre-signed request per line of the file named in args[1], in order,
-- each key once (the file holds more keys than a run can use at the fastest rate seen).
-- The method comes from args[2]; PUT sends a fixed 1 KiB body.
local paths, method, body, n = {}, "GET", nil, 0

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  method = args[2]
  if method == "PUT" then
    body = string.rep("x", 1024)
  end
end

function request()
  n = n + 1
  if n > #paths then
    n = 1
  end
  return wrk.format(method, paths[n], nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
