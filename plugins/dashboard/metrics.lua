-- The seed's metric producer: every 100 ms, one random system metric on metrics.<name>.
---@type SwitchboardPlugin
local plugin = {}

local names = { "cpu_usage", "memory_usage", "disk_io", "network_in", "network_out", "requests_per_sec" }

local function sample(name)
  if name == "cpu_usage" or name == "memory_usage" then return math.random() * 100 end
  if name == "requests_per_sec" then return math.random(0, 9999) + 0.0 end
  return math.random() * 1000
end

function plugin.init(settings)
  print("Real-Time Dashboard Demo")
  switchboard.every(settings.interval or 0.1, function()
    local name = names[math.random(#names)]
    switchboard.publish("metrics." .. name, {
      name = name, value = sample(name), tags = { host = settings.host or "server-1" }, timestamp = switchboard.now(),
    })
  end)
end

return plugin
