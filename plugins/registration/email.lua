-- The seed's email service: a welcome email for every new user.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  print("Email Service: Sending welcome email to " .. tostring(event.data))
end
return plugin
