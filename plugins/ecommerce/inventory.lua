-- The seed's inventory service: reserves every item of a new order.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  for _, item in ipairs(event.data.items) do
    print(string.format("Inventory: Reserving %d units of product %s", item.quantity, item.product_id))
  end
end
return plugin
