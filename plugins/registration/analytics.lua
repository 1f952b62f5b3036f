-- The seed's analytics service: records every signup.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  local user = event.data  -- an address, or an object with one: user.created {"email": "ann@example.com"}
  if type(user) == "table" then user = user.email end
  print("Analytics: Recording signup for " .. tostring(user))
end
return plugin
