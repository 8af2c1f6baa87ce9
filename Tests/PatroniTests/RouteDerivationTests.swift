import Node
import Raft
import Testing

@testable import Patroni

@Suite("From the committed topology to a gateway's route")
struct RouteDerivationTests {
    let endpoints = [
        "pg1": PostgresEndpoint(name: "pg1", host: "10.0.0.1", port: 5432),
        "pg2": PostgresEndpoint(name: "pg2", host: "10.0.0.2", port: 5432),
        "pg3": PostgresEndpoint(name: "pg3", host: "10.0.0.3", port: 5433),
    ]

    @Test func namesMapToTheConfiguredEndpoints() {
        let topology = PostgresTopology(epoch: 7, primary: .init(name: "pg2", timeline: 3), replicas: ["pg3", "pg1"])
        let route = RouteDerivation.route(topology: topology, endpoints: endpoints, writable: true)
        #expect(
            route
                == PostgresRoute(
                    epoch: 7, primary: endpoints["pg2"], replicas: [endpoints["pg1"]!, endpoints["pg3"]!],
                    writable: true))
    }

    @Test func nothingCommittedIsTheUnknownRoute() {
        #expect(RouteDerivation.route(topology: nil, endpoints: endpoints, writable: true) == .unknown)
    }

    /// A name this gateway has no endpoint for is never guessed at: no primary means no writes.
    @Test func unknownNamesAreLeftOut() {
        let topology = PostgresTopology(epoch: 2, primary: .init(name: "pg9", timeline: 1), replicas: ["pg1", "pg8"])
        let route = RouteDerivation.route(topology: topology, endpoints: endpoints, writable: true)
        #expect(route.primary == nil && !route.writable && route.replicas == [endpoints["pg1"]!])
    }

    @Test func noPrimaryIsNeverWritable() {
        let topology = PostgresTopology(epoch: 3, primary: nil, replicas: ["pg2"])
        #expect(!RouteDerivation.route(topology: topology, endpoints: endpoints, writable: true).writable)
    }

    @Test func notVouchingRefusesWritesButKeepsReads() {
        let topology = PostgresTopology(epoch: 3, primary: .init(name: "pg1", timeline: 1), replicas: ["pg2"])
        let route = RouteDerivation.route(topology: topology, endpoints: endpoints, writable: false)
        #expect(!route.writable && route.primary == endpoints["pg1"] && route.replicas == [endpoints["pg2"]!])
    }

    private func readiness(ready: Bool, role: Role, leaseValid: Bool) -> Readiness {
        Readiness(
            ready: ready, reason: ready ? "ready" : "leader silent for longer than 2 s",
            status: RaftStatus(
                id: 1, role: role, term: 3, leader: ready ? 1 : nil, commitIndex: 10, appliedIndex: 10, lastIndex: 10,
                snapshotIndex: 0, configuration: ClusterConfiguration(voters: [1, 2, 3]), leaseValid: leaseValid,
                followers: []))
    }

    @Test func vouchingFollowsReadinessAndTheLeadersLease() {
        #expect(RouteDerivation.canVouch(readiness(ready: true, role: .follower, leaseValid: false)) == (true, "ready"))
        #expect(RouteDerivation.canVouch(readiness(ready: true, role: .leader, leaseValid: true)).0)
        let cutOff = RouteDerivation.canVouch(readiness(ready: true, role: .leader, leaseValid: false))
        #expect(cutOff == (false, "leader without a quorum lease"))
        let silent = RouteDerivation.canVouch(readiness(ready: false, role: .follower, leaseValid: false))
        #expect(silent == (false, "leader silent for longer than 2 s"))
    }

    @Test func theStoredDocumentRoundTrips() throws {
        let topology = PostgresTopology(epoch: 12, primary: .init(name: "pg3", timeline: 4), replicas: ["pg1"])
        #expect(TopologyRecord.decode(TopologyRecord.encode(topology)) == topology)
        #expect(TopologyRecord.decode(Array("{\"epoch\":\"x\"}".utf8)) == nil)
        #expect(TopologyRecord.decode(Array("not json".utf8)) == nil)
    }
}

@Suite("Patroni members and probe credentials from configuration")
struct WatchSettingsTests {
    @Test func membersParse() throws {
        let members = try PatroniMember.parseList(
            "pg1=127.0.0.1:5441@http://127.0.0.1:8011, pg2=db2.internal:5432@https://db2.internal:8008/,pg3=[::1]:5443@http://[::1]:8013"
        )
        #expect(members.map(\.name) == ["pg1", "pg2", "pg3"])
        #expect(members[0].postgres == PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5441))
        #expect(members[0].restURL == "http://127.0.0.1:8011")
        #expect(members[1].restURL == "https://db2.internal:8008", "trailing slash dropped")
        #expect(members[2].postgres.host == "::1" && members[2].postgres.port == 5443)
    }

    @Test(arguments: [
        "", "pg1", "pg1=127.0.0.1:5441", "pg1=127.0.0.1@http://x:1", "pg1=127.0.0.1:0@http://x:1",
        "=127.0.0.1:5441@http://x:1", "pg1=127.0.0.1:5441@ftp://x", "pg 1=127.0.0.1:5441@http://x:1",
        "pg1=127.0.0.1:5441@http://a:1,pg1=127.0.0.1:5442@http://b:1",
    ])
    func badMemberListsAreRefused(_ text: String) {
        #expect(throws: PatroniConfigurationError.self) { try PatroniMember.parseList(text) }
    }

    /// Values go to libpq as keyword/value pairs: a password that looks like more parameters stays
    /// one password, and the host comes from configuration only.
    @Test func probeParametersAreKeywordValuePairs() {
        let credentials = PostgresMonitorCredentials(user: "monitor", password: "x host=evil.example sslmode=disable")
        let parameters = credentials.parameters(for: PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5441))
        let byKeyword = Dictionary(parameters.map { ($0.keyword, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(byKeyword["password"] == "x host=evil.example sslmode=disable")
        #expect(parameters.filter { $0.keyword == "host" }.map(\.value) == ["127.0.0.1"])
        #expect(byKeyword["port"] == "5441" && byKeyword["user"] == "monitor" && byKeyword["passfile"] == nil)
        let withFile = PostgresMonitorCredentials(passfile: "/etc/raftgate/pgpass")
            .parameters(for: PostgresEndpoint(name: "pg1", host: "h", port: 1))
        #expect(withFile.contains { $0 == ("passfile", "/etc/raftgate/pgpass") })
        #expect(!withFile.contains { $0.keyword == "password" })
    }
}
