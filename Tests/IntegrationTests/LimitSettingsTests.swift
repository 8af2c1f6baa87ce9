import Testing

@testable import raftgate

/// `serve`'s limit settings as a config file gives them (review finding 6: the peer-port bounds
/// were declared but never read, and the snapshot bound was never checked against the quota).
@Suite("Limit settings")
struct LimitSettingsTests {
    static func resolve(_ values: [String: Int], watchHistory: Int = 10_000) throws -> LimitSettings {
        try LimitSettings.resolve(try LimitOptions.parse([]), watchHistory: watchHistory) { flag, key in
            flag ?? values[key]
        }
    }

    @Test func thePeerPortBoundsAreRead() throws {
        let settings = try Self.resolve([
            "maxPeerConnections": 7, "peerIdleMs": 12_345, "quotaBytes": 1 << 30, "maxSnapshotBytes": 3 << 30,
        ])
        #expect(settings.maxPeerConnections == 7)
        #expect(settings.peerIdleMilliseconds == 12_345)
        #expect(settings.maxSnapshotBytes == 3 << 30)
        let defaults = try Self.resolve([:])
        #expect(defaults.maxPeerConnections == 64 && defaults.peerIdleMilliseconds == 300_000)
        #expect(defaults.maxSnapshotBytes == 8 << 30)
        #expect(throws: (any Error).self) { try Self.resolve(["peerIdleMs": 0]) }
        // Near the election timeout it would close healthy, merely quiet links (merge review).
        #expect(throws: (any Error).self) { try Self.resolve(["peerIdleMs": 1234]) }
        #expect(try Self.resolve(["peerIdleMs": 10_000]).peerIdleMilliseconds == 10_000)
    }

    @Test func aSnapshotBoundThatCannotHoldTheQuotaIsRefused() throws {
        #expect(throws: (any Error).self) { try Self.resolve(["quotaBytes": 1 << 30, "maxSnapshotBytes": 1 << 30]) }
        do {
            _ = try Self.resolve(["quotaBytes": 8 << 30])
            Issue.record("an 8 GiB quota with the 8 GiB default snapshot bound was accepted")
        } catch {
            #expect("\(error)".contains("maxSnapshotBytes"))
        }
        // Just above the quota is not enough either: writes in flight, idempotency keys and the
        // watch history are in the snapshot too.
        #expect(throws: (any Error).self) {
            try Self.resolve(["quotaBytes": 1 << 30, "maxSnapshotBytes": (1 << 30) + (1 << 20)])
        }
        // A longer watch history needs a larger bound.
        let settings = try Self.resolve(["quotaBytes": 1 << 30, "maxSnapshotBytes": (1 << 30) + (120 << 20)])
        #expect(settings.quotaBytes == 1 << 30)
        #expect(throws: (any Error).self) {
            try Self.resolve(
                ["quotaBytes": 1 << 30, "maxSnapshotBytes": (1 << 30) + (120 << 20)], watchHistory: 10_000_000)
        }
    }
}
