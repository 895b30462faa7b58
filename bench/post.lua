-- wrk script: every request is a new message from a new sender, so each one is decided,
-- rendered and stored in full (no cooldown short cut). The texts rotate through the file named
-- by the environment variable BENCH_TEXTS: one JSON string (quotes included) a line.
local texts = {}
for line in io.lines(os.getenv("BENCH_TEXTS")) do
  texts[#texts + 1] = line
end
local n = 0
local counter = 0
setup = function(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
request = function()
  n = n + 1
  local body = string.format('{"sender":"bench-%s-%d","text":%s,"id":"b-%s-%d-%d"}',
    tid, n, texts[(n % #texts) + 1], tid, n, math.random(1000000000))
  return wrk.format("POST", "/api/messages", {["Content-Type"] = "application/json"}, body)
end
