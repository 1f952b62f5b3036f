import Switchboard
import Testing

@Suite struct TapePublishTests {
    @Test func membersOfAParsedEnvelopeArePublishedAsTapes() async throws {
        let router = Router()
        let got = Recorder<Event>()
        try router.subscribe("user.*") { got.append($0) }
        for index in 0..<1000 {
            var line = #"{"topic": "user.created", "data": {"id": \#(index), "email": "user\#(index)@example.com", "total": 32.38, "items": [{"sku": "PROD-A", "qty": 2}]}}"#
            let envelope = try line.withUTF8 { try JSONTape(parsing: UnsafeRawBufferPointer($0)) }
            let topic = try #require(envelope[member: "topic"]?.stringValue)
            try router.publish(topic, tape: try #require(envelope[member: "data"]))
        }
        await router.shutdown()
        #expect(got.count == 1000)
        #expect(got.all.last?.data == ["id": 999, "email": "user999@example.com", "total": 32.38, "items": [["sku": "PROD-A", "qty": 2]]])
        #expect(got.all.first?.data["email"] == "user0@example.com")
    }
}
