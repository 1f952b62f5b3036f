// The seed article's user-registration flow: three services react to `user.created`.
import Foundation
import Switchboard

let router = Router()
try router.subscribe("user.created", name: "email", capacity: 10) { event in
    print("Email Service: Sending welcome email to \(event.data.stringValue ?? "?")")
    Thread.sleep(forTimeInterval: 0.05)
}
try router.subscribe("user.created", name: "analytics", capacity: 10) { event in
    print("Analytics: Recording signup for \(event.data.stringValue ?? "?")")
}
try router.subscribe("user.created", name: "notifications", capacity: 10) { event in
    print("Notifications: Alerting team about new user \(event.data.stringValue ?? "?")")
}

print("Publishing user registration events...\n")
for user in ["alice@example.com", "bob@example.com", "charlie@example.com"] {
    print("Publishing: user.created for \(user)")
    try router.publish("user.created", data: .string(user))
    try await Task.sleep(for: .milliseconds(100))
}
await router.shutdown(drainTimeout: .seconds(5))
print("\nAll events processed!")
for stats in router.stats().subscribers {
    FileHandle.standardError.write(Data(
        "\(stats.name): received=\(stats.received) handled=\(stats.handled) dropped=\(stats.dropped)\n".utf8))
}
