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

    /// The server's host freezes after the connection is made (the relay stops forwarding but
    /// keeps both sockets open): the query gives up at its client-side deadline, which needs
    /// nothing from the server — `statement_timeout` is set far out and could not fire anyway.
    @Test func aServerThatGoesSilentMidQueryIsGivenUpOnAtTheDeadline() async throws {
        try await ThrowawayPostgres.with { server in
            let relay = try FreezableRelay(upstream: server.port)
            defer { relay.stop() }
            let parameters =
                server.parameters.map { $0.keyword == "port" ? ($0.keyword, String(relay.port)) : $0 }
                + [("options", "-c statement_timeout=600000")]
            let outcome = await finished(within: .seconds(30)) { () async -> (before: String, after: String) in
                await offThePool {
                    do {
                        let connection = try PostgresConnection(parameters, deadline: .now + .seconds(10))
                        let before = try connection.query("SELECT 1", deadline: .now + .seconds(10))
                        relay.freeze()
                        do {
                            _ = try connection.query("SELECT 2", deadline: .now + .milliseconds(300))
                            return ("\(before)", "answered")
                        } catch {
                            return ("\(before)", "\(error)")
                        }
                    } catch {
                        return ("\(error)", "")
                    }
                }
            }
            let result = try #require(outcome, "the query was still waiting after 30 s")
            #expect(result.before == "[[Optional(\"1\")]]")
            #expect(result.after.contains("deadline"), "\(result.after)")
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
