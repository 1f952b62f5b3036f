-- The seed's email service, without a line of networking: it shapes a welcome email and
-- publishes it to email.send, where the mail-api sink posts it (retries, dead letters).
---@type SwitchboardPlugin
local plugin = {}
local from

function plugin.init(settings)
  from = settings.from
end

function plugin.handle(event)
  local address = event.data
  if type(address) == "table" then address = address.email end
  if type(address) ~= "string" or not address:find("@") then
    error("user.created needs an email address, got " .. switchboard.json.encode(event.data))
  end
  local ok, err = switchboard.publish("email.send", {
    from = from,
    to = address,
    subject = "Welcome!",
    text = "Hello " .. address:match("^[^@]+") .. ", thanks for signing up.",
  })
  if not ok then error("could not queue the email: " .. err) end
  print("Email Service: queued a welcome email to " .. address)
end

return plugin
