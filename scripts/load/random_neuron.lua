-- wrk script: GET a random neuron of a model for one service.
-- Set MODEL, SERVICE, LAYERS and NEURONS in the environment (see scripts/load/run.sh);
-- SERVICE=viz asks for the website's neuron page instead of an API route.
local model = os.getenv("MODEL") or "gpt2-small-synth"
local service = os.getenv("SERVICE") or "neuroscope"
local layers = tonumber(os.getenv("LAYERS") or "12")
local neurons = tonumber(os.getenv("NEURONS") or "3072")

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

request = function()
  local layer, neuron = math.random(0, layers - 1), math.random(0, neurons - 1)
  local path
  if service == "viz" then
    path = string.format("/viz/%s/%d/%d", model, layer, neuron)
  else
    path = string.format("/api/%s/%s/%d/%d", model, service, layer, neuron)
  end
  return wrk.format("GET", path)
end

-- No `response` callback: defining one makes wrk copy every 50 KB body into Lua, which costs more
-- than the server's work. wrk counts non-2xx answers itself (`summary.errors.status`).
done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, max %.2f ms, non-2xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status))
end
