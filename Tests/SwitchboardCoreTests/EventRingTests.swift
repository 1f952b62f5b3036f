@testable import SwitchboardCore
import Testing

@Suite struct EventRingTests {
    private func event(_ number: Int) -> Event {
        Event(topic: "n", data: .int(Int64(number)), id: EventID(prefix: 1, sequence: UInt64(number)), time: 0)
    }

    /// Growing while the events wrap around the end of the slots keeps them in order.
    @Test func growingAcrossTheWrapKeepsTheOrder() {
        var ring = EventRing(capacity: 16)
        for number in 0..<10 { ring.append(event(number)) }
        for number in 0..<7 { #expect(ring.popFirst()?.data.intValue == Int64(number)) }
        for number in 10..<40 { ring.append(event(number)) }  // wraps at 16, then grows twice
        #expect(ring.count == 33)
        #expect(ring.first?.data.intValue == 7)
        var rest: [Int64] = []
        while let next = ring.popFirst() { rest.append(next.data.intValue!) }
        #expect(rest == Array(7..<40))
        #expect(ring.popFirst() == nil)
    }

    @Test func removeAllEmptiesItAndItFillsAgain() {
        var ring = EventRing(capacity: 16)
        for number in 0..<12 { ring.append(event(number)) }
        for _ in 0..<5 { _ = ring.popFirst() }
        ring.removeAll()
        #expect(ring.count == 0 && ring.first == nil)
        for number in 0..<20 { ring.append(event(number)) }
        #expect(ring.popFirst()?.data.intValue == 0)
        #expect(ring.count == 19)
    }
}
