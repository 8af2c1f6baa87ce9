import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Prometheus
import Raft
import Testing

@testable import Gateway

@Suite("Cluster and metrics endpoints", .serialized)
struct AdminRouteTests {
    @Test func clusterShowsTheLeadersView() async throws {
        try await GatewayRouteTests.withLeader { node, client in
            for index in 0..<3 {
                let put = try await client.execute(uri: "/kv/k\(index)", method: .put, body: ByteBuffer(string: "v"))
                #expect(put.status == .ok)
            }
            let response = try await client.execute(uri: "/cluster", method: .get)
            #expect(response.status == .ok)
            let view = try JSONDecoder().decode(ClusterView.self, from: Data(buffer: response.body))
            let status = await node.status
            #expect(view.node == 1 && view.role == "leader" && view.leader == 1)
            #expect(view.term == status.term && view.term > 0)
            #expect(view.commitIndex == status.commitIndex && view.commitIndex >= 4, "no-op plus three writes")
            #expect(view.appliedIndex == view.commitIndex)
            #expect(view.raftMembers.map(\.id) == [1])
            #expect(view.raftMembers.first?.matchIndex == status.lastIndex)
            #expect(view.raftMembers.first?.lag == 0)
            #expect(view.raftMembers.first?.suffrage == "voter")
        }
    }

    /// A follower knows the membership but not the replication state: those fields are absent.
    @Test func aFollowersViewHasNoReplicationFields() {
        var configuration = ClusterConfiguration(voters: [1, 2, 3])
        configuration = ClusterConfiguration(voters: configuration.voters, learners: [4])
        let status = RaftStatus(
            id: 2, role: .follower, term: 7, leader: 1, commitIndex: 10, appliedIndex: 9, lastIndex: 10,
            snapshotIndex: 0, configuration: configuration, leaseValid: false, followers: [])
        let view = ClusterView(status: status, peers: [1: ("10.0.0.1", 9091), 4: ("10.0.0.4", 9094)])
        #expect(view.raftMembers.map(\.id) == [1, 2, 3, 4])
        #expect(view.raftMembers.map(\.suffrage) == ["voter", "voter", "voter", "learner"])
        #expect(view.raftMembers[0].raftAddress == "10.0.0.1:9091")
        #expect(view.raftMembers[1].raftAddress == nil)
        #expect(view.raftMembers.allSatisfy { $0.matchIndex == nil && $0.lag == nil })
    }

    @Test func metricsCountWhatHappened() async throws {
        let registry = PrometheusCollectorRegistry()
        try await GatewayRouteTests.withLeader(metricsRegistry: registry) { _, client in
            for index in 0..<5 {
                let put = try await client.execute(uri: "/kv/m\(index)", method: .put, body: ByteBuffer(string: "v"))
                #expect(put.status == .ok)
            }
            let missing = try await client.execute(uri: "/kv/absent", method: .get)
            #expect(missing.status == .notFound)
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = String(buffer: response.body)
            let samples = Self.samples(text)
            #expect(samples["raftgate_raft_proposals_total"] == 5)
            #expect(samples["raftgate_raft_is_leader"] == 1)
            #expect(samples["raftgate_raft_leader_changes_total"] == 1)
            #expect((samples["raftgate_raft_term"] ?? 0) >= 1)
            #expect((samples["raftgate_raft_commit_index"] ?? 0) >= 6)
            #expect(samples["raftgate_raft_applied_index"] == samples["raftgate_raft_commit_index"])
            #expect((samples["raftgate_wal_fsync_duration_seconds_count"] ?? 0) >= 5)
            #expect(samples[#"raftgate_http_requests_total{method="PUT",status="2xx"}"#] == 5)
            #expect(samples[#"raftgate_http_requests_total{method="GET",status="4xx"}"#] == 1)
            #expect(samples[#"raftgate_http_request_duration_seconds_count{method="PUT",status="2xx"}"#] == 5)
            #expect(text.contains("raftgate_wal_fsync_duration_seconds_bucket"))
        }
    }

    /// `name{labels} value` lines of the Prometheus text format.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            result[String(line[..<space])] = value
        }
        return result
    }
}
