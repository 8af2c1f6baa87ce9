import Patroni
import Testing

@testable import raftgate

/// `serve`'s PostgreSQL settings as a config file (or the environment) gives them.
@Suite("/sql pool settings")
struct SQLPoolSettingsTests {
    static func resolve(_ numbers: [String: Int] = [:], _ texts: [String: String] = [:]) throws -> SQLPoolSettings {
        try SQLPoolSettings.resolve(
            try SQLPoolOptions.parse([]), text: { flag, key in flag ?? texts[key] },
            number: { flag, key in flag ?? numbers[key] })
    }

    @Test func defaultsAreTheDesignsAndNoRoute() throws {
        let settings = try Self.resolve()
        #expect(settings.pools.maxPools == 100 && settings.pools.idleTimeout == .seconds(300))
        #expect(settings.pools.statementTimeout == .seconds(30) && settings.pools.passfile == nil)
        #expect(settings.fixedRoute == nil)
    }

    @Test func valuesAreReadAndChecked() throws {
        let settings = try Self.resolve(
            ["postgresMaxPools": 3, "postgresPoolIdleMs": 1500, "postgresStatementMs": 0, "postgresThreads": 4],
            [
                "postgresPassfile": "/etc/raftgate/pgpass", "postgresSslmode": "verify-full",
                "postgresPrimary": "pg1=127.0.0.1:5441", "postgresReplicas": "pg2=127.0.0.1:5442,pg3=::1:5443",
            ])
        #expect(settings.pools.maxPools == 3 && settings.pools.idleTimeout == .milliseconds(1500))
        #expect(settings.pools.statementTimeout == nil && settings.pools.threads == 4)
        #expect(settings.pools.passfile == "/etc/raftgate/pgpass" && settings.pools.sslMode == "verify-full")
        #expect(
            settings.fixedRoute
                == PostgresRoute(
                    epoch: 1, primary: PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5441),
                    replicas: [
                        PostgresEndpoint(name: "pg2", host: "127.0.0.1", port: 5442),
                        PostgresEndpoint(name: "pg3", host: "::1", port: 5443),
                    ], writable: true))
        // Replicas alone: reads are served, writes have no primary.
        #expect(try Self.resolve([:], ["postgresReplicas": "pg2=127.0.0.1:5442"]).fixedRoute?.writable == false)
        for bad in [["postgresMaxPools": 0], ["postgresPoolIdleMs": 5], ["postgresThreads": 0]] {
            #expect(throws: (any Error).self) { try Self.resolve(bad) }
        }
        for bad in [
            ["postgresSslmode": "maybe"], ["postgresPrimary": "127.0.0.1:5441"], ["postgresReplicas": "pg2=nowhere"],
        ] {
            #expect(throws: (any Error).self) { try Self.resolve([:], bad) }
        }
    }
}
