-- The seed's analytics service: records every signup.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  print("Analytics: Recording signup for " .. tostring(event.data))
end
return plugin
