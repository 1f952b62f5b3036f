-- The seed's wildcard handlers: prints every event its topic patterns let through, as
-- "<label> received: <topic> -> <data>".
---@type SwitchboardPlugin
local plugin = {}

local label

function plugin.init(settings)
  label = settings.label or switchboard.name
end

function plugin.handle(event)
  local data = event.data
  if type(data) ~= "string" then data = switchboard.json.encode(data) end
  print(label .. " received: " .. event.topic .. " -> " .. data)
end

return plugin
