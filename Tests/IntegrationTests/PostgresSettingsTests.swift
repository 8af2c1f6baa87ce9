import Foundation
import Patroni
import Testing

@testable import raftgate

/// `serve`'s Patroni settings from a config file, the environment and flags, strongest first,
/// like every other setting; bad values stop `serve` with a message naming the key.
@Suite("Patroni settings")
struct PostgresSettingsTests {
    static func resolve(
        file: [String: Any], environment: [String: String] = [:], flags: PostgresOptions = try! .parse([])
    ) async throws -> ServeSettings {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pg-settings-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: path) }
        var document = file
        document["id"] = 1
        document["clusterKey"] = "postgres-settings-test-key"
        try JSONSerialization.data(withJSONObject: document).write(to: path)
        var serveFlags = ServeSettings.Flags()
        serveFlags.config = path.path
        serveFlags.postgres = flags
        serveFlags.limits = try .parse([])
        serveFlags.sqlPools = try .parse([])
        return try await ServeSettings.resolve(serveFlags, environment: environment)
    }

    static let members = "pg1=127.0.0.1:5441@http://127.0.0.1:8011,pg2=127.0.0.1:5442@http://127.0.0.1:8012"

    @Test func fromTheFileTheEnvironmentAndFlags() async throws {
        let settings = try await Self.resolve(
            file: ["pgMembers": Self.members, "pgUser": "monitor", "pgPassword": "secret", "pgPollMs": 250],
            environment: ["RAFTGATE_PG_POLL_MS": "300", "RAFTGATE_PG_ADMIT_SAMPLES": "5"],
            flags: try .parse(["--pg-user", "flagged", "--pg-passfile", "/etc/raftgate/pgpass"]))
        let postgres = try #require(settings.postgres)
        #expect(postgres.members.map(\.name) == ["pg1", "pg2"])
        #expect(postgres.members[1].postgres == PostgresEndpoint(name: "pg2", host: "127.0.0.1", port: 5442))
        #expect(postgres.credentials.user == "flagged", "a flag beats the file")
        #expect(postgres.credentials.password == "secret" && postgres.credentials.passfile == "/etc/raftgate/pgpass")
        #expect(postgres.pollInterval == .milliseconds(300), "the environment beats the file")
        #expect(postgres.policy.admitAfterSamples == 5)
        #expect(postgres.policy.admitLagBytes == 1 << 20 && postgres.policy.dropLagBytes == 16 << 20)
        #expect(postgres.requestTimeout == .seconds(1))
    }

    @Test func withoutMembersThereIsNoWatcher() async throws {
        #expect(try await Self.resolve(file: [:]).postgres == nil)
    }

    @Test(
        arguments: [
            (["pgMembers": "pg1=127.0.0.1:5441"], "pg1=127.0.0.1:5441"),
            (["pgMembers": "pg1=127.0.0.1:5441@http://a:1,pg1=127.0.0.1:5442@http://b:1"], "repeat"),
            (["pgMembers": members, "pgPollMs": 0], "pgPollMs"),
            (["pgMembers": members, "pgAdmitLagBytes": 2000, "pgDropLagBytes": 1000], "dropLagBytes"),
            (["pgMembers": members, "pgAdmitSamples": 0], "pgAdmitSamples"),
            (["pgMembers": members, "pgUser": ""], "pgUser"),
        ] as [([String: any Sendable], String)])
    func badValuesAreRefusedByName(_ file: [String: any Sendable], _ named: String) async {
        do {
            _ = try await Self.resolve(file: file)
            Issue.record("accepted \(file)")
        } catch {
            #expect("\(error)".contains(named), "\(error)")
        }
    }
}
