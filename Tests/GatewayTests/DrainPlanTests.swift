import Foundation
import Testing

@testable import Gateway

@Suite("Drain timing")
struct DrainPlanTests {
    /// The default wait is derived from the HAProxy example users run: if its check interval or
    /// fall count changes, this fails until the default follows.
    @Test func theDefaultWaitIsTheExampleHAProxysCheckIntervalTimesFall() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(
            contentsOf: root.appendingPathComponent("examples/three-nodes/haproxy.cfg"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { $0.contains("default-server") }
        #expect(!lines.isEmpty)
        for line in lines {
            let words = line.split(separator: " ").map(String.init)
            let interval = try #require(words.firstIndex(of: "inter").map { words[$0 + 1] })
            let fall = try #require(words.firstIndex(of: "fall").flatMap { Int(words[$0 + 1]) })
            let milliseconds = try #require(Int(interval.replacingOccurrences(of: "ms", with: "")))
            #expect(
                DrainPlan().announceWait == DrainPlan.haproxyWindow(interval: .milliseconds(milliseconds), fall: fall))
        }
        #expect(DrainPlan().announceWait == .milliseconds(400))
    }
}
