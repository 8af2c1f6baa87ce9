import Foundation
import NIOPosix
import TestSupport
import Testing

@testable import Patroni

/// libpq against a real PostgreSQL 15 (Debian's `postgresql-15`), started by the test.
@Suite("libpq probe against a real PostgreSQL", .serialized)
struct PostgresProbeTests {
    @Test func probesAPrimary() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        try await ThrowawayPostgres.with { server in
            let probe = try await PostgresProbe.observe(server.parameters, on: pool)
            #expect(!probe.inRecovery)
            #expect(probe.timeline == 1)
            #expect((probe.currentLSN?.offset ?? 0) > 0)
            #expect(probe.replayLSN == nil && probe.receiveLSN == nil)

            // Writing moves the position the next probe reports.
            let (parameters, before) = (server.parameters, probe.currentLSN)
            try await pool.runIfActive {
                let connection = try PostgresConnection(parameters)
                _ = try connection.query("CREATE TABLE moved AS SELECT generate_series(1, 10000) AS n")
            }
            let after = try await PostgresProbe.observe(server.parameters, on: pool)
            #expect(try #require(after.currentLSN) > #require(before))

            // PostgreSQL's refusals come back with their SQLSTATE.
            do {
                try await pool.runIfActive {
                    _ = try PostgresConnection(parameters).query("SELEC 1")
                }
                Issue.record("a syntax error succeeded")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42601", "\(error)")
            }

            // A value is a value: a password carrying `host=…` is just a wrong password for
            // this server, not a redirect to another one.
            let injected = parameters.map { $0.keyword == "password" ? ($0.keyword, "x host=192.0.2.1 port=1") : $0 }
            do {
                try await pool.runIfActive { _ = try PostgresConnection(injected) }
                Issue.record("a wrong password connected")
            } catch let error as PostgresError {
                #expect(error.message.contains("password authentication failed"), "\(error)")
                #expect(error.sqlState == nil)
            }
        }
    }

    @Test func aClosedPortIsAConnectionError() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        // A port from a block nobody else in this process holds, with nothing listening on it.
        let port = String(TestPorts.block())
        do {
            _ = try await PostgresProbe.observe(
                [("host", "127.0.0.1"), ("port", port), ("connect_timeout", "2")], on: pool)
            Issue.record("connected to a closed port")
        } catch let error as PostgresError {
            #expect(error.message.contains("Connection refused"), "\(error)")
        }
    }
}
