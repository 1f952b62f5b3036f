-- The seed's notification service: alerts the team about every new user.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  local user = event.data  -- an address, or an object with one: user.created {"email": "ann@example.com"}
  if type(user) == "table" then user = user.email end
  print("Notifications: Alerting team about new user " .. tostring(user))
end
return plugin
