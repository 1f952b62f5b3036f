-- The seed's notification service: alerts the team about every new user.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  print("Notifications: Alerting team about new user " .. tostring(event.data))
end
return plugin
