import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `POST /sql` through three gateways over a real Patroni cluster (etcd DCS, synchronous mode, the
/// example's settings), under a steady load of INSERTs and SELECTs while the primary's Patroni and
/// PostgreSQL are SIGKILL'd: writes resume on the new primary, no acknowledged INSERT is lost,
/// reads run on replicas and succeed again after the failover. It prints the write outage, how
/// long after Patroni's promotion the first INSERT succeeded and the failed reads (the numbers
/// README's Patroni section quotes).
@Suite("HA: /sql through the gateways while Patroni fails over", .serialized, .enabled(if: PatroniCluster.available))
struct HAPatroniSQLTests {
    static let adminToken = "ha-patroni-sql-admin-token"
    static let apiKey = "acme-sql-key-1"
    /// sha256("acme-sql-key-1"), as the project config stores it.
    static let apiKeyDigest = "c1ba99ec795e4fbd0f3b2e6d2935863b28603c1473ca1e47072c484ca8835878"
    static let tenantHeaders = ["X-Tenant": "acme", "X-API-Key": apiKey]
    static let databasePassword = "acme-database-password"

    /// What `/sql` answered, as far as the test reads it.
    struct Answer: Decodable {
        var rows: [[Cell]]?
        var route: String?
        var member: String?
        var error: Failure?

        struct Failure: Decodable {
            var code: String
            var message: String
        }
    }

    enum Cell: Decodable, Equatable {
        case integer(Int64)
        case text(String)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Int64.self) {
                self = .integer(value)
            } else if let value = try? container.decode(String.self) {
                self = .text(value)
            } else {
                self = .other
            }
        }
    }

    struct Body: Encodable {
        var sql: String
        var params: [String]
        var route: String?
    }

    /// One `/sql` request of the load.
    struct Outcome: Sendable {
        var id: Int
        var started: ContinuousClock.Instant
        var finished: ContinuousClock.Instant
        var status: Int
        var code: String?
        var route: String?
        var member: String?
        /// A read's `pg_is_in_recovery()`.
        var recovering: Bool?
    }

    /// The load's shared record: the INSERT ids handed out and every outcome.
    final class Load: Sendable {
        private let state = Mutex((nextID: 0, writes: [Outcome](), reads: [Outcome](), stopped: false))

        var stopped: Bool { state.withLock { $0.stopped } }
        var writes: [Outcome] { state.withLock { $0.writes } }
        var reads: [Outcome] { state.withLock { $0.reads } }
        func stop() { state.withLock { $0.stopped = true } }
        func nextID() -> Int {
            state.withLock { state in
                state.nextID += 1
                return state.nextID
            }
        }
        func record(write: Outcome) { state.withLock { $0.writes.append(write) } }
        func record(read: Outcome) { state.withLock { $0.reads.append(read) } }
    }

    static func sql(
        port: Int, _ statement: String, _ parameters: [String] = [], primary: Bool = false
    ) async -> (status: Int, answer: Answer?, body: String) {
        let body = try? JSONEncoder().encode(Body(sql: statement, params: parameters, route: primary ? "primary" : nil))
        let answer = await HTTP.request(
            "POST", "http://127.0.0.1:\(port)/sql", body: body, headers: tenantHeaders)
        return (answer.status, try? JSONDecoder().decode(Answer.self, from: Data(answer.body.utf8)), answer.body)
    }

    /// psql as the superuser against one member, each command in its own transaction, killed by
    /// pid if it has not finished in 30 s (a synchronous commit without a standby waits forever).
    static func psql(port: Int, log: String, _ commands: [String]) async -> Int32 {
        await offThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: PatroniCluster.pgBin + "/psql")
            process.arguments =
                ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
                + commands.flatMap { ["-c", $0] }
            process.environment = ["PGPASSWORD": PatroniCluster.password, "PGCONNECT_TIMEOUT": "5"]
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            guard let handle = try? FileHandle(forWritingTo: URL(fileURLWithPath: log)) else { return -1 }
            process.standardOutput = handle
            process.standardError = handle
            do { try process.run() } catch { return -1 }
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    @Test(.timeLimit(.minutes(4))) func sqlSurvivesAKilledPrimary() async throws {
        let pg = try PatroniCluster()
        let gateways = ProcessCluster()
        defer {
            gateways.stopAll()
            pg.stopAll()
        }
        try pg.startEtcd()
        #expect(
            await eventually(within: 30) {
                await HTTP.request("GET", "http://127.0.0.1:\(pg.etcdClient)/health").body.contains("true")
            }, "etcd is healthy")
        try pg.startMember(1)
        try #require(await eventually(within: 120) { await pg.primary() == 1 }, "pg1 bootstraps: \(pg.log("patroni1"))")
        try pg.startMember(2)
        try pg.startMember(3)
        // In synchronous mode only the synchronous standby may be promoted: wait for one.
        try #require(
            await eventually(within: 180) {
                let second = await pg.isSyncStandby(2)
                let third = await pg.isSyncStandby(3)
                let streaming2 = await pg.isRunningReplica(2)
                let streaming3 = await pg.isRunningReplica(3)
                return streaming2 && streaming3 && (second || third)
            },
            "pg2 and pg3 stream from pg1, one of them synchronously: \(pg.log("patroni2").suffix(2000))")

        // The tenant's own role and database, and the gateways' passfile with its password.
        let created = await Self.psql(
            port: pg.pgPort(1), log: pg.root + "/psql.log",
            [
                "CREATE ROLE acme LOGIN PASSWORD '\(Self.databasePassword)'", "CREATE DATABASE acme OWNER acme",
            ])
        try #require(created == 0, "psql created the tenant's database: \(pg.log("psql"))")
        let passfile = pg.root + "/gateways.pgpass"
        try "*:*:acme:acme:\(Self.databasePassword)\n".write(toFile: passfile, atomically: true, encoding: .utf8)
        chmod(passfile, 0o600)

        let members = PatroniCluster.members.map { id in
            "pg\(id)=127.0.0.1:\(pg.pgPort(id))@http://127.0.0.1:\(pg.apiPort(id))"
        }
        gateways.environment["RAFTGATE_PG_PASSWORD"] = PatroniCluster.password
        gateways.environment["RAFTGATE_POSTGRES_PASSFILE"] = passfile
        gateways.extraArguments += [
            "--admin-token", Self.adminToken, "--pg-members", members.joined(separator: ","),
            "--pg-poll-ms", "200", "--pg-request-timeout-ms", "500",
        ]
        for id in 1...3 { try gateways.start(id) }
        let leader = try #require(
            await gateways.settledLeader(within: 60), "the gateways elect a leader: \(gateways.log(1).suffix(2000))")
        try #require(
            await eventually(within: 60) {
                guard let views = await HAPatroniTopologyTests.agreed(gateways) else { return false }
                return views[0].primary == "pg1" && views[0].replicas == ["pg2", "pg3"] && views.allSatisfy(\.writable)
            }, "every gateway routes writes to pg1 and reads to pg2 and pg3")

        let config =
            #"{"apiKeys":["sha256:\#(Self.apiKeyDigest)"],"postgres":{"database":"acme","user":"acme","maxConnections":4}}"#
        try #require(
            await eventually(within: 30) {
                await HTTP.request(
                    "PUT", "http://127.0.0.1:\(gateways.http(leader))/config/acme", body: Data(config.utf8),
                    headers: ["Authorization": "Bearer \(Self.adminToken)"]
                ).status == 200
            }, "the tenant's config is written")
        let ports = (1...3).map { gateways.http($0) }
        // Retried until the gateway's config cache has the tenant (404 no_database before).
        let table = await poll(within: 30) { () async -> (status: Int, answer: Answer?, body: String)? in
            let answer = await Self.sql(
                port: ports[0], "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, gateway int NOT NULL)")
            return answer.status == 200 ? answer : nil
        }
        try #require(table?.answer?.route == "primary", "CREATE TABLE ran on the primary: \(String(describing: table))")
        for port in ports {
            #expect(
                await eventually(within: 30) { await Self.sql(port: port, "SELECT count(*) FROM items").status == 200 },
                "the gateway on \(port) reads the new table")
        }

        // The load: two writers, two readers, each going round the three gateways. A refused
        // request is retried after 50 ms, so an outage is not a busy loop.
        let load = Load()
        let hardStop = ContinuousClock.now + .seconds(150)
        var workers: [Task<Void, Never>] = []
        for worker in 0..<2 {
            workers.append(
                Task {
                    var turn = worker
                    while !load.stopped, ContinuousClock.now < hardStop {
                        let id = load.nextID()
                        let gateway = turn % 3
                        turn += 1
                        let started = ContinuousClock.now
                        let answer = await Self.sql(
                            port: ports[gateway], "INSERT INTO items (id, gateway) VALUES ($1, $2)",
                            ["\(id)", "\(gateway + 1)"])
                        load.record(
                            write: Outcome(
                                id: id, started: started, finished: .now, status: answer.status,
                                code: answer.answer?.error?.code, route: answer.answer?.route,
                                member: answer.answer?.member))
                        if answer.status != 200 { try? await Task.sleep(for: .milliseconds(50)) }
                    }
                })
            workers.append(
                Task {
                    var turn = worker
                    while !load.stopped, ContinuousClock.now < hardStop {
                        let gateway = turn % 3
                        turn += 1
                        let started = ContinuousClock.now
                        let answer = await Self.sql(
                            port: ports[gateway], "SELECT pg_is_in_recovery()::text, count(*) FROM items")
                        let recovering = answer.answer?.rows?.first?.first.map { $0 == .text("true") }
                        load.record(
                            read: Outcome(
                                id: 0, started: started, finished: .now, status: answer.status,
                                code: answer.answer?.error?.code, route: answer.answer?.route,
                                member: answer.answer?.member, recovering: recovering))
                        if answer.status != 200 { try? await Task.sleep(for: .milliseconds(50)) }
                    }
                })
        }
        defer {
            load.stop()
            for worker in workers { worker.cancel() }
        }
        #expect(
            await eventually(within: 30) {
                load.writes.filter { $0.status == 200 }.count >= 30
                    && load.reads.filter { $0.status == 200 }.count >= 30
            }, "the load runs before the failover")

        // SIGKILL the primary's Patroni and PostgreSQL; Patroni promotes the synchronous standby.
        // killMember SIGKILLs Patroni, waits for it to exit, then SIGKILLs the postmaster: until
        // it returns pg1 still commits (seen: a dozen INSERTs acknowledged by pg1 in that window).
        // An INSERT started after it returns cannot be acknowledged by pg1.
        let killStarted = ContinuousClock.now
        pg.killMember(1)
        let killedAt = ContinuousClock.now
        let promoted = await poll(within: 60) { () async -> (member: Int, at: ContinuousClock.Instant)? in
            await pg.primary().map { ($0, ContinuousClock.now) }
        }
        let promotion = try #require(promoted, "Patroni promotes pg2 or pg3: \(pg.log("patroni2").suffix(2000))")
        let newPrimary = "pg\(promotion.member)"
        let resumed = await poll(within: 60) { () async -> Outcome? in
            load.writes.first { $0.status == 200 && $0.started > killedAt }
        }
        let firstWrite = try #require(
            resumed, "INSERTs through the gateways succeed again: \(gateways.log(leader).suffix(2000))")
        let readAgain = await poll(within: 30) { () async -> Outcome? in
            load.reads.first { $0.status == 200 && $0.started > firstWrite.finished }
        }
        #expect(readAgain != nil, "SELECTs succeed after the failover")
        // A little more load on the new primary before stopping.
        _ = await eventually(within: 10) {
            load.writes.filter { $0.status == 200 && $0.started > firstWrite.finished }.count >= 20
        }
        load.stop()
        for worker in workers { await worker.value }

        let writes = load.writes
        let reads = load.reads
        let acknowledged = writes.filter { $0.status == 200 }
        #expect(firstWrite.member == newPrimary, "writes resume on Patroni's new primary: \(firstWrite)")
        for write in acknowledged {
            let expected = write.started > killedAt ? newPrimary : write.finished < killStarted ? "pg1" : nil
            #expect(write.route == "primary", "an INSERT ran on a replica: \(write)")
            if let expected { #expect(write.member == expected, "INSERT \(write.id) ran on \(write.member ?? "-")") }
        }
        let onReplicas = reads.filter { $0.status == 200 && $0.recovering == true && $0.route == "replica" }
        #expect(onReplicas.count > 0, "SELECTs ran on replicas (pg_is_in_recovery() true)")

        // Every acknowledged INSERT is on the new primary; 504 outcome_unknown and unanswered
        // ones (status 0) were never acknowledged and may or may not be there.
        let ids = "{" + acknowledged.map { "\($0.id)" }.joined(separator: ",") + "}"
        let missing = await poll(within: 30) { () async -> (status: Int, answer: Answer?, body: String)? in
            let answer = await Self.sql(
                port: ports[1],
                "SELECT a.id FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.id = a.id)",
                [ids], primary: true)
            return answer.status == 200 ? answer : nil
        }
        let lost = try #require(
            missing?.answer?.rows, "the acknowledged ids were checked: \(String(describing: missing))")
        #expect(lost.isEmpty, "\(lost.count) acknowledged INSERTs are missing after the failover: \(lost.prefix(20))")

        // The last INSERT pg1 acknowledged (it may have answered after the kill began).
        let before = acknowledged.filter { $0.started <= killedAt }.map(\.finished).max() ?? killedAt
        let unknown = writes.filter { $0.status == 504 || $0.status == 0 }
        let refused = writes.filter { $0.status != 200 && $0.status != 504 && $0.status != 0 }
        let failedReads = reads.filter { $0.status != 200 }
        let readCodes = Dictionary(grouping: failedReads) { "\($0.status) \($0.code ?? "-")" }.mapValues(\.count)
        let writeCodes = Dictionary(grouping: refused) { "\($0.status) \($0.code ?? "-")" }.mapValues(\.count)
        print(
            """
            HAPatroniSQL: Patroni's /primary on \(newPrimary) \(Self.milliseconds(promotion.at - killStarted)) ms after the SIGKILL of pg1's Patroni (its postmaster \(Self.milliseconds(killedAt - killStarted)) ms later)
            HAPatroniSQL: /sql write outage \(Self.milliseconds(firstWrite.finished - before)) ms (pg1's last acknowledged INSERT to the first on \(newPrimary)); first acknowledged INSERT \(Self.milliseconds(firstWrite.finished - promotion.at)) ms after the promotion was seen
            HAPatroniSQL: INSERTs \(writes.count): \(acknowledged.count) acknowledged, \(unknown.count) outcome unknown (504/no answer), \(refused.count) refused \(writeCodes.sorted { $0.key < $1.key }); missing acknowledged: \(lost.count)
            HAPatroniSQL: SELECTs \(reads.count): \(reads.count - failedReads.count) ok (\(onReplicas.count) on replicas), \(failedReads.count) failed \(readCodes.sorted { $0.key < $1.key })
            """)
        for read in failedReads.prefix(10) {
            print(
                "HAPatroniSQL: failed read \(Self.milliseconds(read.started - killedAt)) ms after the SIGKILL: \(read.status) \(read.code ?? "-")"
            )
        }
    }
}
