import Foundation
import Logging
import NIOPosix
import Node
import Synchronization
import TestSupport
import Testing

@testable import Patroni

/// One member that accepts connections and then answers nothing (a frozen host) must bound
/// nothing but its own sources: its requests and probes fail at the deadline, the round decides
/// with the others, and a cancelled watcher — leadership lost, the node stopping — returns at once.
@Suite("A hung member", .serialized)
struct HungMemberTests {
    let logger = Logger(label: "hung-member-tests")

    @Test(arguments: ["hang", "trickle"])
    func aStalledAPIIsANonAnswerWithinTheTimeout(_ behaviour: String) async throws {
        let api = try FakePatroniAPI.start(behaviour == "hang" ? .hang : .trickle)
        defer { api.stop() }
        let client = PatroniClient(timeout: .milliseconds(300), logger: logger)
        let member = PatroniMember(
            name: "pg1", restURL: "http://127.0.0.1:\(api.port)", postgresHost: "127.0.0.1", postgresPort: 1)
        let outcome = await finished(within: .seconds(20)) { () async -> String in
            do {
                _ = try await client.status(of: member)
                return "answered"
            } catch {
                return "\(error)"
            }
        }
        await client.shutdown()
        #expect(api.accepted >= 1)
        #expect(outcome != nil, "the request was still waiting after 20 s")
        #expect(outcome != "answered")
    }

    /// A PostgreSQL that accepts the TCP connection and never sends a byte: libpq's own
    /// connect_timeout is set far out, so only the probe's client-side deadline ends it.
    @Test func aSilentPostgresIsAFailedProbeWithinTheTimeout() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        let silent = try LoopbackListener(LoopbackListener.holdSilently)
        defer { silent.stop() }
        let parameters = [("host", "127.0.0.1"), ("port", String(silent.port)), ("connect_timeout", "120")]
        let outcome = await finished(within: .seconds(20)) { () async -> String in
            do {
                _ = try await PostgresProbe.observe(parameters, on: pool, timeout: .milliseconds(300))
                return "answered"
            } catch {
                return "\(error)"
            }
        }
        #expect(silent.accepted == 1)
        #expect(outcome?.contains("deadline") == true, "\(outcome ?? "still waiting after 20 s")")
    }

    /// pg2's API and PostgreSQL both hang; the round still ends, with pg1's answers in it and
    /// pg2 counted as not answering on any source.
    @Test func aRoundDecidesWithTheMembersThatAnswered() async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        let answering = try FakePatroniAPI.start(
            .answer(
                patroni: try Fixture.data("patroni-3.0.2-master.json"),
                cluster: try Fixture.data("cluster-3.0.2-healthy.json")))
        defer { answering.stop() }
        let hungAPI = try FakePatroniAPI.start(.hang)
        defer { hungAPI.stop() }
        let hungPostgres = try LoopbackListener(LoopbackListener.holdSilently)
        defer { hungPostgres.stop() }
        let settings = TopologyWatchSettings(
            members: [
                PatroniMember(
                    name: "pg1", restURL: "http://127.0.0.1:\(answering.port)", postgresHost: "127.0.0.1",
                    postgresPort: TestPorts.block()),
                PatroniMember(
                    name: "pg2", restURL: "http://127.0.0.1:\(hungAPI.port)", postgresHost: "127.0.0.1",
                    postgresPort: hungPostgres.port),
            ],
            credentials: PostgresMonitorCredentials(connectTimeoutSeconds: 120), requestTimeout: .milliseconds(400))
        let client = PatroniClient(timeout: settings.requestTimeout, logger: logger)
        let poller = TopologyPoller(
            settings: settings, client: client, threads: pool, metrics: TopologyMetrics(), logger: logger)
        let round = await finished(within: .seconds(20)) { await poller.round() }
        await client.shutdown()
        let observed = try #require(round, "the round was still waiting after 20 s")
        #expect(observed.observations.map(\.name) == ["pg1", "pg2"])
        #expect(observed.observations[0].patroni?.role == .primary && observed.observations[0].cluster != nil)
        let pg2 = observed.observations[1]
        #expect(pg2.patroni == nil && pg2.cluster == nil && pg2.sql == nil)
        #expect(observed.failures["pg2"]?.count == 3, "\(observed.failures)")
        #expect(hungAPI.accepted >= 1 && hungPostgres.accepted == 1)
    }

    /// The watcher is mid-round on a member that hangs (its timeout is two minutes): stopping
    /// the node — which cancels the leader services and waits for them — returns at once.
    @Test func theNodeStopsPromptlyWhileTheWatcherWaitsOnAHungMember() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        let hungAPI = try FakePatroniAPI.start(.hang)
        defer { hungAPI.stop() }
        let hungPostgres = try LoopbackListener(LoopbackListener.holdSilently)
        defer { hungPostgres.stop() }
        let settings = TopologyWatchSettings(
            members: [
                PatroniMember(
                    name: "pg1", restURL: "http://127.0.0.1:\(hungAPI.port)", postgresHost: "127.0.0.1",
                    postgresPort: hungPostgres.port)
            ],
            credentials: PostgresMonitorCredentials(connectTimeoutSeconds: 120), requestTimeout: .seconds(120))
        let client = PatroniClient(timeout: settings.requestTimeout, logger: logger)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hung-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("patroni-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(5)
        let node = try await RaftNode.start(configuration)
        await node.leaderServices.add(
            TopologyWatcher(
                node: node,
                poller: TopologyPoller(
                    settings: settings, client: client, threads: pool, metrics: TopologyMetrics(), logger: logger),
                observations: TopologyObservations(), logger: logger))
        let stuck = await finished(within: .seconds(20)) { () async -> Bool in
            while !Task.isCancelled, hungAPI.accepted == 0 || hungPostgres.accepted == 0 {
                try? await Task.sleep(for: .milliseconds(10))
            }
            return true
        }
        guard stuck == true else {
            Issue.record("the watcher never reached the hung member")
            await node.stop()
            return
        }
        let stopped = await finished(within: .seconds(20)) { () async -> Bool in
            await node.stop()
            return true
        }
        #expect(stopped == true, "node.stop() still waiting on the watcher after 20 s")
        await client.shutdown()
    }
}

/// The deadline every source runs under answers its caller on time even when the work ignores
/// cancellation (a thread blocked in a socket call does).
@Suite("A deadline that needs nothing from the work")
struct DeadlineTests {
    @Test func answersAtTheLimitWhileTheWorkIsStuck() async {
        let stuck = DispatchSemaphore(value: 0)
        let outcome = await finished(within: .seconds(20)) { () async -> String in
            do {
                let value = try await Deadline.run(within: .milliseconds(100), "stuck work") {
                    await offThePool { () -> Int in
                        stuck.wait()
                        return 1
                    }
                }
                return "answered \(value)"
            } catch {
                return "\(error)"
            }
        }
        stuck.signal()
        #expect(outcome?.hasPrefix("stuck work: no answer within") == true, "\(outcome ?? "still waiting after 20 s")")
    }

    @Test func answersAtOnceWhenTheCallerIsCancelled() async {
        let stuck = DispatchSemaphore(value: 0)
        let started = ResultBox<Bool>()
        let call = Task { () async -> String in
            do {
                _ = try await Deadline.run(within: .seconds(3600), "stuck work") {
                    await offThePool { () -> Int in
                        started.set(true)
                        stuck.wait()
                        return 1
                    }
                }
                return "answered"
            } catch {
                return "\(type(of: error))"
            }
        }
        let running = await finished(within: .seconds(20)) { () async -> Bool in
            while !Task.isCancelled, started.value != true { try? await Task.sleep(for: .milliseconds(5)) }
            return true
        }
        #expect(running == true)
        call.cancel()
        let outcome = await finished(within: .seconds(20)) { await call.value }
        stuck.signal()
        #expect(outcome == "CancellationError", "\(outcome ?? "still waiting after 20 s")")
    }

    @Test func theWorksAnswerWhenItComesFirst() async throws {
        let value = try await Deadline.run(within: .seconds(3600), "quick work") { 42 }
        #expect(value == 42)
    }
}

/// Runs `operation` in a task of its own and waits for it at most `limit` (polling): nil if it
/// had not finished by then — it is cancelled — so a test that would hang fails instead.
func finished<Value: Sendable>(
    within limit: Duration, _ operation: @escaping @Sendable () async -> Value
) async -> Value? {
    let box = ResultBox<Value>()
    let task = Task { box.set(await operation()) }
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if let value = box.value { return value }
        try? await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    return nil
}

final class ResultBox<Value: Sendable>: Sendable {
    private let stored = Mutex<Value?>(nil)
    var value: Value? { stored.withLock { $0 } }
    func set(_ value: Value) { stored.withLock { $0 = value } }
}
