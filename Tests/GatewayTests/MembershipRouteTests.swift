import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Raft
import TestSupport
import Testing

@testable import Gateway

/// Membership admin, drain and fatal-error health on one in-process node (the leader of a
/// one-voter cluster): every refusal is a JSON error that changes nothing.
@Suite("Membership admin, drain and fatal health", .serialized)
struct MembershipRouteTests {
    static let token = "membership-tests-admin-token"
    static var bearer: HTTPFields { [.authorization: "Bearer \(token)"] }

    static func withLeader(
        faultTrigger: String? = nil,
        _ body: @Sendable (RaftNode, NodeLifecycle, any TestClientProtocol) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("members-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root + "/data", raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("gateway-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(5)
        configuration.faultTrigger = faultTrigger
        configuration.writeFailureMarkerRoot = root
        let node = try await RaftNode.start(configuration)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if await node.status.leaseValid { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let lifecycle = NodeLifecycle(
            node: node, plan: DrainPlan(announceWait: .milliseconds(50), transferTimeout: .milliseconds(200)))
        let app = Application(router: makeGatewayRouter(node: node, adminToken: token, lifecycle: lifecycle))
        try await app.test(.router) { client in try await body(node, lifecycle, client) }
        await node.stop()
    }

    static func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil,
        token: Bool = true
    ) async throws -> TestResponse {
        try await client.execute(
            uri: uri, method: method, headers: token ? bearer : [:], body: body.map { ByteBuffer(string: $0) })
    }

    static func code(_ response: TestResponse) -> String? { GatewayRouteTests.errorCode(response) }

    @Test func badInputIsRefusedAndChangesNothing() async throws {
        try await Self.withLeader { node, _, client in
            let before = await node.status.configuration
            let cases: [(HTTPRequest.Method, String, String?, Bool, HTTPResponse.Status, String)] = [
                (.get, "/members", nil, false, .unauthorized, "unauthorized"),
                (.post, "/members", #"{"id":2,"raft":"127.0.0.1:9"}"#, false, .unauthorized, "unauthorized"),
                (.post, "/health/drain", nil, false, .unauthorized, "unauthorized"),
                (.post, "/members", "{not json", true, .badRequest, "bad_request"),
                (.post, "/members", #"{"id":0,"raft":"127.0.0.1:9"}"#, true, .badRequest, "bad_request"),
                (.post, "/members", #"{"id":2,"raft":"no-port"}"#, true, .badRequest, "bad_request"),
                (.post, "/members", #"{"id":2,"raft":"0.0.0.0:9"}"#, true, .badRequest, "bad_request"),
                (.post, "/members", #"{"id":2,"raft":"[::]:9"}"#, true, .badRequest, "bad_request"),
                (
                    .post, "/members", #"{"id":2,"raft":"127.0.0.1:9","http":"0.0.0.0:8"}"#, true, .badRequest,
                    "bad_request"
                ),
                (
                    .post, "/members", #"{"id":2,"raft":"127.0.0.1:9","learner":false}"#, true, .badRequest,
                    "bad_request"
                ),
                (.post, "/members", #"{"id":1,"raft":"127.0.0.1:9"}"#, true, .conflict, "member_exists"),
                (.delete, "/members/1", nil, true, .conflict, "last_voter"),
                (.delete, "/members/9", nil, true, .notFound, "no_such_member"),
                (.delete, "/members/x", nil, true, .badRequest, "bad_request"),
                (.post, "/members/transfer", #"{"to":9}"#, true, .notFound, "no_such_member"),
                (.post, "/members/transfer", "[]", true, .badRequest, "bad_request"),
            ]
            for (method, uri, body, token, status, code) in cases {
                let response = try await Self.send(client, method, uri, body, token: token)
                #expect(response.status == status, "\(method) \(uri) \(body ?? ""): \(String(buffer: response.body))")
                #expect(Self.code(response) == code, "\(method) \(uri): \(String(buffer: response.body))")
            }
            #expect(await node.status.configuration == before, "nothing changed")
        }
    }

    @Test func addListTransferToALearnerAndRemove() async throws {
        try await Self.withLeader { node, _, client in
            // Nothing listens at this address: the learner never catches up, so it stays a learner.
            let added = try await Self.send(
                client, .post, "/members", #"{"id":2,"raft":"127.0.0.1:9","http":"127.0.0.1:8","learner":true}"#)
            #expect(added.status == .created, "\(String(buffer: added.body))")
            #expect(await node.status.configuration == ClusterConfiguration(voters: [1], learners: [2]))
            // A retried join (its first answer lost) gets the plan again and changes nothing.
            let again = try await Self.send(client, .post, "/members", #"{"id":2,"raft":"127.0.0.1:9"}"#)
            #expect(again.status == .created, "\(String(buffer: again.body))")
            let plan = try #require(
                try JSONSerialization.jsonObject(with: Data(String(buffer: again.body).utf8)) as? [String: Any])
            #expect((plan["base"] as? [String: Any])?["voters"] as? [Int] == [1])
            #expect((plan["peers"] as? [String: String])?["1"] != nil)
            #expect(await node.status.configuration == ClusterConfiguration(voters: [1], learners: [2]))
            let elsewhere = try await Self.send(client, .post, "/members", #"{"id":2,"raft":"127.0.0.1:10"}"#)
            #expect(elsewhere.status == .conflict && Self.code(elsewhere) == "member_exists")

            let listed = try await Self.send(client, .get, "/members")
            #expect(listed.status == .ok)
            let members = try #require(
                try JSONSerialization.jsonObject(with: Data(String(buffer: listed.body).utf8)) as? [String: Any])
            let rows = try #require(members["members"] as? [[String: Any]])
            #expect(rows.map { $0["id"] as? Int } == [1, 2])
            #expect(rows.map { $0["role"] as? String } == ["voter", "learner"])
            #expect(rows[1]["raft"] as? String == "127.0.0.1:9")
            #expect(rows[1]["http"] as? String == "127.0.0.1:8")
            #expect((members["base"] as? [String: Any])?["voters"] as? [Int] == [1])
            // The member's address is replicated like any write, under the reserved prefix.
            let record = await node.read("/_sys/members/2", consistency: .linearizable)
            guard case .value(let stored?, _) = record else {
                Issue.record("no member record: \(record)")
                return
            }
            #expect(MemberRecord(key: "/_sys/members/2", value: stored.value)?.raft == "127.0.0.1:9")

            let toLearner = try await Self.send(client, .post, "/members/transfer", #"{"to":2}"#)
            #expect(toLearner.status == .badRequest && Self.code(toLearner) == "not_a_voter")
            let toSelf = try await Self.send(client, .post, "/members/transfer", #"{"to":1}"#)
            #expect(toSelf.status == .ok)

            let removed = try await Self.send(client, .delete, "/members/2")
            #expect(removed.status == .ok, "\(String(buffer: removed.body))")
            #expect(await node.status.configuration == ClusterConfiguration(voters: [1]))
            let readded = try await Self.send(client, .post, "/members", #"{"id":2,"raft":"127.0.0.1:9"}"#)
            #expect(readded.status == .created)
        }
    }

    @Test func drainTurnsHealthUnavailableButKeepsLiveness() async throws {
        try await Self.withLeader { _, lifecycle, client in
            #expect(try await client.execute(uri: "/primary", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/health/ready", method: .get).status == .ok)
            let drained = try await Self.send(client, .post, "/health/drain")
            #expect(drained.status == .ok, "\(String(buffer: drained.body))")
            #expect(GatewayRouteTests.field(drained, "wasLeader") as? Bool == true)
            #expect(lifecycle.isDraining)
            for path in ["/primary", "/replica", "/health/ready"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .serviceUnavailable, "\(path)")
                #expect(GatewayRouteTests.field(response, "reason") as? String == "draining", "\(path)")
            }
            #expect(try await client.execute(uri: "/health/live", method: .get).status == .ok)
            // A second drain is the same drain: it answers at once.
            #expect(try await Self.send(client, .post, "/health/drain").status == .ok)
        }
    }

    /// A node whose disk fails stops itself: every health endpoint, liveness included, says 503
    /// (today's bug was `/primary` answering 200 after the node stopped).
    @Test func aNodeWhoseFsyncFailsAnswers503Everywhere() async throws {
        let trigger = FileManager.default.temporaryDirectory.appendingPathComponent("fail-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: trigger) }
        try await Self.withLeader(faultTrigger: trigger) { node, _, client in
            #expect(try await client.execute(uri: "/primary", method: .get).status == .ok)
            FileManager.default.createFile(atPath: trigger, contents: Data())
            let write = try await client.execute(uri: "/kv/k", method: .put, body: ByteBuffer(string: "v"))
            #expect(write.status != .ok, "a write whose fsync failed is never acknowledged")
            #expect(await node.fatalError != nil)
            for path in ["/primary", "/replica", "/health/ready", "/health/live"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .serviceUnavailable, "\(path): \(String(buffer: response.body))")
            }
        }
    }

    /// A voter leader (n1) and a learner (n2) that follows it, both in this process.
    static func withLeaderAndLearner(
        _ body: @Sendable (RaftNode, RaftNode, any TestClientProtocol) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("learner-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func configuration(_ id: NodeID, peers: [NodeID: (host: String, port: Int)]) throws -> NodeConfiguration {
            var configuration = NodeConfiguration(
                id: id, dataDirectory: root + "/n\(id)", raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1],
                peers: peers, clusterKey: try ClusterKey("gateway-tests-cluster-key"))
            configuration.initialLearners = [2]
            configuration.tickInterval = .milliseconds(5)
            configuration.writeFailureMarkerRoot = root
            return configuration
        }
        let leader = try await RaftNode.start(try configuration(1, peers: [:]))
        let learner = try await RaftNode.start(try configuration(2, peers: [1: ("127.0.0.1", await leader.raftPort)]))
        var written = false
        let deadline = ContinuousClock.now + .seconds(10)
        while !written, ContinuousClock.now < deadline {
            let outcome = await leader.recordMember(MemberRecord(id: 2, raft: "127.0.0.1:\(await learner.raftPort)"))
            if case .applied = outcome { written = true } else { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(written)
        let app = Application(router: makeGatewayRouter(node: learner, adminToken: token))
        try await app.test(.router) { client in try await body(leader, learner, client) }
        await learner.stop()
        await leader.stop()
    }

    static func eventually(within seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        repeat {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return false
    }

    /// A learner never campaigns, so it never forgets the leader it lost: readiness goes by how
    /// long the leader has been silent, not by whether one is named.
    @Test func aLearnerCutOffFromItsLeaderIsNotReady() async throws {
        try await Self.withLeaderAndLearner { leader, learner, client in
            let following = try await Self.eventually {
                try await client.execute(uri: "/health/ready", method: .get).status == .ok
            }
            #expect(following, "the learner follows n1")
            await leader.stop()
            let unready = try await Self.eventually {
                try await client.execute(uri: "/health/ready", method: .get).status == .serviceUnavailable
            }
            #expect(unready, "the leader is gone")
            let status = await learner.status
            if status.leader != nil {
                let response = try await client.execute(uri: "/health/ready", method: .get)
                let reason = GatewayRouteTests.field(response, "reason") as? String ?? ""
                #expect(reason.hasPrefix("leader silent"), "\(reason)")
            }
        }
    }

    /// Two voters in this process, on ports of a block of their own.
    static func withTwoVoters(_ body: @Sendable ([RaftNode]) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("voters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = TestPorts.block()
        let ports: [NodeID: Int] = [1: base, 2: base + 1]
        var nodes: [RaftNode] = []
        for id: NodeID in [1, 2] {
            var configuration = NodeConfiguration(
                id: id, dataDirectory: root + "/n\(id)", raftHost: "127.0.0.1", raftPort: ports[id]!,
                initialVoters: [1, 2], peers: ports.filter { $0.key != id }.mapValues { ("127.0.0.1", $0) },
                clusterKey: try ClusterKey("gateway-tests-cluster-key"))
            configuration.tickInterval = .milliseconds(10)
            configuration.writeFailureMarkerRoot = root
            nodes.append(try await RaftNode.start(configuration))
        }
        try await body(nodes)
        for node in nodes { await node.stop() }
    }

    /// A drained node stays a voter: when it wins leadership back, it hands it over again.
    @Test func aDrainedNodeThatLeadsAgainHandsOverAgain() async throws {
        try await Self.withTwoVoters { nodes in
            var leader: RaftNode?
            let elected = await Self.eventually {
                for node in nodes where await node.isLeader { leader = node }
                return leader != nil
            }
            #expect(elected)
            guard let drained = leader, let other = nodes.first(where: { $0.id != drained.id }) else { return }
            let lifecycle = NodeLifecycle(
                node: drained, plan: DrainPlan(announceWait: .milliseconds(20), transferTimeout: .seconds(3)))
            await lifecycle.drain()
            #expect(await Self.eventually { await other.isLeader }, "the drain handed over")
            // The successor gives leadership back (as an election it loses could).
            let back = await other.transferLeadership(to: drained.id, timeout: .seconds(3))
            #expect(back != .notLeader(leader: nil), "\(back)")
            #expect(await Self.eventually { await other.isLeader }, "the drained node handed over again")
            #expect(await !drained.isLeader)
        }
    }
}
