-- The seed's email service: a welcome email for every new user.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  local user = event.data  -- an address, or an object with one: user.created {"email": "ann@example.com"}
  if type(user) == "table" then user = user.email end
  print("Email Service: Sending welcome email to " .. tostring(user))
end
return plugin
