// A program that embeds the router alone, as an embedder who wants no plugins would: it
// depends on the `SwitchboardCore` product only, so it links no Lua, no NATS client and no
// HTTP server (a test holds it to that).
import SwitchboardCore

let router = Router()
try router.subscribe("user.*", name: "welcome") { event in
    print("welcome, \(event.data["email"]?.stringValue ?? "whoever you are")")
}
for email in ["ann@example.com", "bob@example.com"] {
    try router.publish("user.created", data: ["email": .string(email)])
}
await router.shutdown()
let welcome = router.stats()["welcome"]!
print("handled \(welcome.handled) of \(welcome.received)")
