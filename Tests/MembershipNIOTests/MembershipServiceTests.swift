import Foundation
import Membership
import TestSupport
import Testing

@testable import MembershipNIO

/// Three membership services in this process over real UDP and TCP on 127.0.0.1.
@Suite("Membership service over UDP", .serialized)
struct MembershipServiceTests {
    static let key = Array("test-cluster-key-0123456789".utf8)

    static func start(_ ids: [UInt64], base: Int, key: [UInt8] = key, seeds: [UInt64]? = nil) async throws
        -> [UInt64: MembershipService]
    {
        var services: [UInt64: MembershipService] = [:]
        for id in ids {
            var configuration = MembershipConfiguration(
                id: id, host: "127.0.0.1", port: base + Int(id),
                metadata: MemberMetadata(nodeID: id, role: .gateway, httpAddress: "127.0.0.1:\(9000 + id)"),
                seeds: (seeds ?? ids).map { "127.0.0.1:\(base + Int($0))" }, clusterKey: key)
            configuration.tickInterval = .milliseconds(10)
            services[id] = try await MembershipService.start(configuration)
        }
        return services
    }

    static func eventually(within seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    static func status(_ service: MembershipService, of node: UInt64) async -> MemberStatus.Kind? {
        await service.member(node)?.status.kind
    }

    @Test func joinCrashAndLeaveAreSeenBySubscribers() async throws {
        let base = TestPorts.block()
        let services = try await Self.start([1, 2, 3], base: base)
        let changes = await services[1]!.changes()
        let seen = Task {
            var log: [(UInt64, MemberStatus.Kind)] = []
            for await change in changes {
                log.append((change.member.id.node, change.status.kind))
                if log.contains(where: { $0 == (3, .left) }) { break }
            }
            return log
        }
        #expect(
            await Self.eventually {
                for observer in services.values {
                    for id: UInt64 in [1, 2, 3] where await Self.status(observer, of: id) != .alive { return false }
                }
                return true
            }, "everyone sees everyone alive")
        #expect(await services[2]!.member(1)?.metadata?.httpAddress == "127.0.0.1:9001", "metadata travelled")
        // A crash: the process just stops answering.
        await services[2]!.stop()
        #expect(await Self.eventually { await Self.status(services[1]!, of: 2) == .dead }, "n2 declared dead")
        #expect(await Self.eventually { await Self.status(services[3]!, of: 2) == .dead })
        // A graceful leave is `left` at once, never a suspicion.
        await services[3]!.leave()
        #expect(await Self.eventually(within: 5) { await Self.status(services[1]!, of: 3) == .left })
        let log = await seen.value
        #expect(log.contains { $0 == (2, .dead) })
        #expect(log.contains { $0 == (3, .left) })
        #expect(!log.contains { $0 == (3, .dead) })
        await services[1]!.stop()
    }

    @Test func aMemberWithAnotherKeyIsNeverAdmitted() async throws {
        let base = TestPorts.block()
        var services = try await Self.start([1, 2], base: base)
        let intruder = try await Self.start(
            [3], base: base, key: Array("another-key-entirely-000".utf8), seeds: [1, 2])
        services[3] = intruder[3]
        #expect(await Self.eventually { await Self.status(services[1]!, of: 2) == .alive })
        // Give the intruder several join attempts' worth of time, then check nobody admitted it.
        #expect(
            await Self.eventually { await services[1]!.droppedUnauthenticated >= 3 }, "several join attempts dropped")
        #expect(await Self.status(services[1]!, of: 3) == nil)
        #expect(await Self.status(services[2]!, of: 3) == nil)
        #expect(await services[3]!.members.count == 1, "and it learned nobody")
        for service in services.values { await service.stop() }
    }
}
