-- The seed's dashboard renderer: shows each metric it receives and, at shutdown, how many of
-- each it saw. Which metrics reach it is up to its topics in the config.
---@type SwitchboardPlugin
local plugin = {}

local title
local counts = {}

function plugin.init(settings)
  title = settings.title or switchboard.name
  print("Dashboard client connected: " .. switchboard.name)
end

function plugin.handle(event)
  local metric = event.data
  counts[metric.name] = (counts[metric.name] or 0) + 1
  print(string.format("%s received: %s = %.2f", title, metric.name, metric.value))
end

function plugin.shutdown()
  local names = {}
  for name in pairs(counts) do names[#names + 1] = name end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do parts[#parts + 1] = name .. "=" .. counts[name] end
  print(title .. " final counts: " .. table.concat(parts, " "))
  print("Dashboard client disconnected: " .. switchboard.name)
end

return plugin
