-- wrk script of the benchmark's sustained load phase (bench/lib/wrk.ts runs it; see BENCHMARKS.md).
--
--   wrk -t2 -c32 -d60s --timeout 30s -s bench/wrk/keys.lua http://127.0.0.1:PORT/ -- KEYS_FILE BOGUS_SHARE
--
-- KEYS_FILE has one key a line, `good <key>` or `bogus <key>`. Every request is POST / with the
-- article's body {"key": "..."}, its key drawn at random: a bogus one (well formed, unknown: key-api
-- answers 401) with probability BOGUS_SHARE, otherwise one of the good keys, uniformly. Each thread
-- counts its answers by status, and its 200s by the `keyId` in their body; done() adds the threads'
-- tables up (thread:get copies them out of each thread's Lua state) and prints one line:
--
--   WRK_RESULT {"durationSec": ..., "requests": ..., "statuses": {...}, "ok200ByKey": {...}, ...}

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- Per thread (each thread has its own Lua state); globals, so done() can read them with thread:get.
statuses = {}
ok_by_key = {}
unparsed = 0

local good = {}
local bogus = {}
local share = 0

function init(args)
  -- args[0] is the URL; what follows `--` on wrk's command line starts at args[1].
  share = tonumber(args[2] or "0") or 0
  local headers = { ["content-type"] = "application/json" }
  for line in io.lines(args[1]) do
    local kind, key = line:match("^(%a+)%s+(%S+)$")
    if kind then
      -- Built once: wrk.format adds Host and Content-Length.
      local request = wrk.format("POST", "/", headers, '{"key":"' .. key .. '"}')
      if kind == "bogus" then bogus[#bogus + 1] = request else good[#good + 1] = request end
    end
  end
  if #good == 0 then error("no good keys in " .. tostring(args[1])) end
  math.randomseed(os.time() * 1000 + id)
end

function request()
  if #bogus > 0 and math.random() < share then
    return bogus[math.random(#bogus)]
  end
  return good[math.random(#good)]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    local key_id = body and body:match('"keyId"%s*:%s*"([^"]+)"')
    if key_id then
      ok_by_key[key_id] = (ok_by_key[key_id] or 0) + 1
    else
      unparsed = unparsed + 1
    end
  end
end

-- Key ids and status codes are plain tokens ([A-Za-z0-9_-], digits): no escaping is needed.
local function object(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format('"%s":%d', tostring(k), v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local all_statuses, all_ok, all_unparsed = {}, {}, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do
      all_statuses[tostring(k)] = (all_statuses[tostring(k)] or 0) + v
    end
    for k, v in pairs(thread:get("ok_by_key")) do all_ok[k] = (all_ok[k] or 0) + v end
    all_unparsed = all_unparsed + thread:get("unparsed")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"durationSec":%.6f,"requests":%d,"statuses":%s,"ok200ByKey":%s,"unparsed200":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyMs":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f}}\n',
    summary.duration / 1e6, summary.requests, object(all_statuses), object(all_ok), all_unparsed,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3
  ))
end
