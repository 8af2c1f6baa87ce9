import Foundation
import Raft
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Graceful drain, membership administration and fatal stops on real `raftgate` processes behind
/// real HAProxy (issue 14).
@Suite("lifecycle: drain, rolling restart, scale, fatal stop", .serialized)
struct LifecycleProcessTests {
    static let token = "lifecycle-tests-admin-token"

    static func cluster(
        haproxy: Bool = true, environment: [String: String] = [:], nodeArguments: [Int: [String]] = [:]
    ) async throws -> ProcessCluster {
        try #require(FileManager.default.isExecutableFile(atPath: ProcessCluster.executable), "build raftgate first")
        if haproxy { try #require(ProcessCluster.haproxyPath != nil, "haproxy is installed by `make deps`") }
        let cluster = ProcessCluster()
        cluster.extraArguments = ["--tick-ms", "20", "--admin-token", token]
        cluster.environment = environment
        cluster.nodeArguments = nodeArguments
        for id in 1...3 { try cluster.start(id) }
        if haproxy { try cluster.startHAProxy() }
        guard await cluster.settledLeader(within: 30) != nil else {
            cluster.stopAll()
            throw HAProxyClusterTests.ClusterNotServing()
        }
        if haproxy {
            guard await cluster.write(port: cluster.frontend, key: "first", value: "1") else {
                cluster.stopAll()
                throw HAProxyClusterTests.ClusterNotServing()
            }
        }
        return cluster
    }

    // MARK: Lost data

    /// A member whose data directory was lost, restarted with its usual flags, refuses to start:
    /// as a voter with term 0 and an empty log it could vote twice in a term and help erase
    /// committed entries. The cluster goes on without it.
    @Test func aMemberThatLostItsDataIsRefusedWithoutBootstrap() async throws {
        let cluster = try await Self.cluster(haproxy: false)
        defer { cluster.stopAll() }
        let leader = try #require(await cluster.leader())
        let victim = leader == 3 ? 2 : 3
        cluster.kill(victim)
        try FileManager.default.removeItem(atPath: cluster.root + "/node-\(victim)")
        cluster.bootstrap = false
        try cluster.start(victim)
        let status = await cluster.waitForExit(victim, within: 30)
        #expect(status != nil && status != 0, "it refuses to start")
        #expect(cluster.log(victim).contains("raftgate member remove \(victim)"), "and says what to do")
        #expect(!FileManager.default.fileExists(atPath: cluster.root + "/node-\(victim)/snapshots/"), "wrote nothing")
    }

    // MARK: SIGTERM

    /// A request that is still arriving when SIGTERM comes completes, while new connections are
    /// already refused; the process then exits 0.
    @Test func afterSIGTERMAnInFlightRequestCompletes() async throws {
        let cluster = try await Self.cluster(haproxy: false)
        defer { cluster.stopAll() }
        let leader = try #require(await cluster.leader())
        let socket = try #require(LoopbackSocket.connect(port: cluster.http(leader)))
        defer { close(socket) }
        let head = "PUT /kv/inflight HTTP/1.1\r\nHost: raftgate\r\nContent-Length: 10\r\n\r\n12345"
        #expect(LoopbackSocket.send(Array(head.utf8), on: socket))
        cluster.signal(leader, SIGTERM)
        #expect(
            await eventually(within: 15) {
                LoopbackSocket.connect(port: cluster.http(leader)).map { close($0) } == nil
            },
            "the draining node stops accepting connections")
        #expect(LoopbackSocket.send(Array("67890".utf8), on: socket))
        let answer = Self.readResponse(socket)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "the in-flight write completed: \(answer)")
        #expect(await cluster.waitForExit(leader, within: 30) == 0, "a drained node exits 0")
        let other = leader == 1 ? 2 : 1
        let read = await cluster.read(port: cluster.http(other), path: "/kv/inflight")
        #expect(read.status == 200 && read.body.contains("\"1234567890\""), "\(read)")
    }

    /// After SIGTERM the health endpoints answer 503 before the listeners close; then new
    /// connections are refused and the process exits 0.
    @Test func afterSIGTERMHealthTurns503ThenNewConnectionsAreRefused() async throws {
        let cluster = try await Self.cluster(haproxy: false)
        defer { cluster.stopAll() }
        let leader = try #require(await cluster.leader())
        let follower = leader == 1 ? 2 : 1
        cluster.signal(follower, SIGTERM)
        var seen: [Int] = []
        let refused = await eventually(within: 15) {
            guard let status = HTTP.rawStatus("GET", "/health/ready", port: cluster.health(follower)) else {
                return LoopbackSocket.connect(port: cluster.http(follower)).map { close($0) } == nil
            }
            if seen.last != status { seen.append(status) }
            return false
        }
        #expect(refused, "new connections are refused")
        #expect(seen.last == 503, "readiness said 503 before the listeners closed: \(seen)")
        #expect(await cluster.waitForExit(follower, within: 30) == 0)
        #expect(await cluster.write(port: cluster.http(leader), key: "still", value: "serving"))
    }

    /// A drain that would wait long is cut short: by a second SIGTERM at once, and by the drain
    /// deadline; either way the process exits non-zero (it did not finish draining).
    @Test func aSecondSIGTERMOrTheDeadlineEndsALongDrainAtOnce() async throws {
        let long = ["--drain-wait-ms", "60000"]
        let cluster = try await Self.cluster(
            haproxy: false, nodeArguments: [2: long, 3: long + ["--drain-deadline-ms", "1500"]])
        defer { cluster.stopAll() }
        for id in [2, 3] { cluster.signal(id, SIGTERM) }
        for id in [2, 3] {
            #expect(
                await eventually { HTTP.rawStatus("GET", "/health/ready", port: cluster.health(id)) == 503 },
                "n\(id) is draining")
        }
        #expect(cluster.isRunning(2) && cluster.isRunning(3), "a 60 s drain is under way")
        cluster.signal(2, SIGTERM)
        let second = ContinuousClock.now
        #expect(await cluster.waitForExit(2, within: 10) == 1, "the second SIGTERM ends the drain, non-zero")
        #expect(ContinuousClock.now - second < .seconds(10))
        #expect(await cluster.waitForExit(3, within: 20) == 1, "the deadline ends the drain, non-zero")
    }

    // MARK: Rolling restart

    @Test func rollingRestartUnderLoadThroughHAProxyFailsNothingAndLosesNothing() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stopAll() }
        let load = LoadClient(proxy: "http://127.0.0.1:\(cluster.frontend)")
        let running = load.start(writers: 2, readers: 1)
        #expect(await eventually { await load.acknowledgedCount >= 20 }, "load is flowing")
        let leader = try #require(await cluster.leader())
        for id in [1, 2, 3].filter({ $0 != leader }) + [leader] {
            #expect(await cluster.terminate(id) == 0, "n\(id) drained and exited 0")
            try cluster.start(id)
            #expect(await cluster.settledLeader(within: 30) != nil, "the cluster settled after n\(id) restarted")
            let before = await load.acknowledgedCount
            #expect(await eventually { await load.acknowledgedCount > before + 5 }, "writes go on after n\(id)")
        }
        await load.stop()
        await running.value
        let report = await load.report()
        #expect(report.failures.isEmpty, "failed requests: \(report.failures.prefix(10))")
        #expect(report.acknowledged.count > 50)
        let lost = await load.lost(readingThrough: cluster.frontend)
        #expect(lost.isEmpty, "acknowledged writes lost: \(lost.prefix(10))")
    }

    // MARK: Scale 3 → 5 → 3

    @Test func scaleThreeToFiveToThreeUnderLoadWithJoin() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stopAll() }
        let load = LoadClient(proxy: "http://127.0.0.1:\(cluster.frontend)")
        let running = load.start(writers: 1, readers: 1)
        #expect(await eventually { await load.acknowledgedCount >= 10 })
        for id in [4, 5] {
            cluster.nodeArguments[id] = ["--join", "127.0.0.1:\(cluster.http(1 + id % 3))"]
            try cluster.start(id)
        }
        #expect(
            await eventually(within: 60) {
                let roles = await Self.roles(cluster)
                return roles[4] == "voter" && roles[5] == "voter" && roles.count == 5
            }, "both joined and were promoted")
        #expect(await eventually { await Self.health(cluster, 5)?["appliedIndex"] as? Int ?? 0 > 0 })

        for id in [4, 5] {
            let removed = await Self.admin(cluster, "DELETE", "/members/\(id)")
            #expect(removed.status == 200, "remove n\(id): \(removed)")
        }
        #expect(await Self.roles(cluster).keys.sorted() == [1, 2, 3])
        // A removed node is told so when it next campaigns, and stops campaigning.
        for id in [4, 5] {
            #expect(
                await eventually(within: 30) { await Self.health(cluster, id)?["removed"] as? Bool == true },
                "n\(id) learned it was removed")
        }
        let terms = await [4, 5].asyncMap { await Self.health(cluster, $0)?["term"] as? Int }
        let leaderBefore = try #require(await cluster.leader())
        let leaderTerm = try #require(await Self.health(cluster, leaderBefore)?["term"] as? Int)
        // Several election timeouts (20 ms ticks, 10–20 ticks each): a campaigning node would
        // have raised its term, and PreVote-less disruption would have raised the leader's.
        try await Task.sleep(for: .seconds(1))
        #expect(await [4, 5].asyncMap { await Self.health(cluster, $0)?["term"] as? Int } == terms)
        let leaderNow = try #require(await cluster.leader())
        #expect(await Self.health(cluster, leaderNow)?["term"] as? Int == leaderTerm, "no disruption")
        await load.stop()
        await running.value
        let report = await load.report()
        #expect(report.failures.isEmpty, "failed requests: \(report.failures.prefix(10))")
        let lost = await load.lost(readingThrough: cluster.frontend)
        #expect(lost.isEmpty, "acknowledged writes lost: \(lost.prefix(10))")

        // Bad input on a live cluster: each a JSON error, nothing changed.
        let leader = try #require(await cluster.leader())
        let follower = leader == 1 ? 2 : 1
        #expect(await Self.admin(cluster, "POST", "/members", body: #"{"id":2,"raft":"127.0.0.1:1"}"#).status == 409)
        #expect(await Self.admin(cluster, "POST", "/members/transfer", body: #"{"to":9}"#).status == 404)
        #expect(await Self.admin(cluster, "DELETE", "/members/9").status == 404)
        let unauthorized = await HTTP.request("POST", "http://127.0.0.1:\(cluster.http(follower))/health/drain")
        #expect(unauthorized.status == 401 && unauthorized.body.contains("\"error\""))
        #expect(await Self.roles(cluster).keys.sorted() == [1, 2, 3])
        // Switchover with `raftgate member`, asking a follower (it redirects to the leader).
        let listed = try await Self.member(["list"], via: follower, cluster)
        #expect(listed.status == 0 && listed.output.contains("\"role\":\"voter\""), "\(listed)")
        let moved = try await Self.member(["transfer-leader", "\(follower)"], via: follower, cluster)
        #expect(moved.status == 0, "\(moved)")
        #expect(await cluster.leader() == follower)
        let refused = try await Self.member(["remove", "9"], via: follower, cluster)
        #expect(refused.status == 1 && refused.output.contains("no_such_member"), "\(refused)")
    }

    /// A node that joined and restarted before it applied the member records (its data directory
    /// holds the base snapshot only, its flags name no peer) asks the cluster where the members
    /// are, so the leader hears its answers, catches it up and promotes it.
    @Test func aJoinedNodeRestartedBeforeItKnowsItsPeersStillCatchesUp() async throws {
        let cluster = try await Self.cluster(haproxy: false)
        defer { cluster.stopAll() }
        let leader = try #require(await cluster.leader())
        for index in 0..<5 {
            #expect(await cluster.write(port: cluster.http(leader), key: "k\(index)", value: "v"))
        }
        let added = await Self.admin(
            cluster, "POST", "/members",
            body: #"{"id":4,"raft":"127.0.0.1:\#(cluster.raft(4))","http":"127.0.0.1:\#(cluster.http(4))"}"#)
        #expect(added.status == 201, "\(added)")
        // What a joiner killed right after its first start leaves: the base snapshot, no log.
        try SnapshotStore(directory: cluster.root + "/node-4/snapshots")
            .save(RestoredState.bootstrap(voters: [1, 2, 3]).snapshot)
        cluster.flagPeers[4] = [4]
        cluster.nodeArguments[4] = ["--join", "127.0.0.1:\(cluster.http(1))"]
        try cluster.start(4)
        let promoted = await eventually(within: 30) { await Self.roles(cluster)[4] == "voter" }
        let roles = await Self.roles(cluster)
        #expect(promoted, "n4 caught up and was promoted: \(roles)")
    }

    /// A joiner killed while writing its first base snapshot leaves only a `*.snap.tmp`: started
    /// again with `--join`, it joins (it never was a member) instead of making a cluster of itself.
    @Test func aJoinerKilledBeforeItsBaseSnapshotWasInPlaceJoinsAgain() async throws {
        let cluster = try await Self.cluster(haproxy: false)
        defer { cluster.stopAll() }
        let snapshots = cluster.root + "/node-4/snapshots"
        try FileManager.default.createDirectory(atPath: snapshots, withIntermediateDirectories: true)
        #expect(
            FileManager.default.createFile(
                atPath: snapshots + "/snapshot-0000000000000000-0000000000000000.snap.tmp",
                contents: Data("half written".utf8)))
        cluster.flagPeers[4] = [4]
        cluster.nodeArguments[4] = ["--join", "127.0.0.1:\(cluster.http(1))"]
        try cluster.start(4)
        let promoted = await eventually(within: 30) { await Self.roles(cluster)[4] == "voter" }
        let roles = await Self.roles(cluster)
        #expect(promoted, "n4 joined the cluster: \(roles)")
        let primary = await HTTP.request("GET", "http://127.0.0.1:\(cluster.health(4))/primary")
        #expect(primary.status == 503, "n4 does not lead a cluster of its own: \(primary)")
    }

    // MARK: Fatal stop

    @Test func aLeaderWhoseDiskFailsStopsVouchingAndHAProxyMovesOn() async throws {
        let faults = FileManager.default.temporaryDirectory.appendingPathComponent("faults-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: faults, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: faults) }
        let cluster = try await Self.cluster(environment: [
            "RAFTGATE_TEST_FAIL_SYNC_WHEN": "fail-sync",
            "RAFTGATE_TEST_WRITE_FAILURE_MARKER_ROOT": faults,
        ])
        defer { cluster.stopAll() }
        let load = LoadClient(proxy: "http://127.0.0.1:\(cluster.frontend)")
        let running = load.start(writers: 1, readers: 0)
        #expect(await eventually { await load.acknowledgedCount >= 10 })
        let leader = try #require(await cluster.leader())
        // The leader's disk fails: its next fsync (the next write's) throws EIO.
        FileManager.default.createFile(atPath: cluster.root + "/node-\(leader)/fail-sync", contents: Data())
        let failed = await eventually(within: 10) {
            await HTTP.request("GET", "http://127.0.0.1:\(cluster.health(leader))/health/live").status == 503
        }
        #expect(failed, "the failed leader answers 503 on /health/live")
        #expect(await cluster.waitForExit(leader, within: 10).map { $0 != 0 } == true, "and exits non-zero")
        let next = await cluster.leader(within: 20, excluding: leader)
        #expect(next != nil && next != leader)
        let before = await load.acknowledgedCount
        #expect(await eventually { await load.acknowledgedCount > before + 5 }, "HAProxy moved writes on")
        await load.stop()
        await running.value
        let lost = await load.lost(readingThrough: cluster.frontend)
        #expect(lost.isEmpty, "acknowledged writes lost: \(lost.prefix(10))")
    }

    // MARK: Helpers

    static func readResponse(_ socket: Int32) -> String {
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while !String(decoding: response, as: UTF8.self).contains("\r\n\r\n") {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += chunk[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    static func admin(
        _ cluster: ProcessCluster, _ method: String, _ path: String, body: String? = nil, via: Int? = nil
    ) async -> (status: Int, body: String) {
        let node: Int
        if let via { node = via } else { node = await cluster.leader() ?? 1 }
        return await HTTP.request(
            method, "http://127.0.0.1:\(cluster.http(node))\(path)", body: body.map { Data($0.utf8) },
            headers: ["Authorization": "Bearer \(token)", "Content-Type": "application/json"])
    }

    /// Runs `raftgate member …` against node `via`; its exit status and what it printed.
    static func member(
        _ arguments: [String], via node: Int, _ cluster: ProcessCluster
    ) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessCluster.executable)
        process.arguments =
            ["member"] + arguments + ["--endpoint", "127.0.0.1:\(cluster.http(node))", "--admin-token", token]
        let output = cluster.root + "/member-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// Member id → "voter" or "learner", from the leader's GET /members.
    static func roles(_ cluster: ProcessCluster) async -> [Int: String] {
        let answer = await admin(cluster, "GET", "/members")
        guard answer.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let members = object["members"] as? [[String: Any]]
        else { return [:] }
        var roles: [Int: String] = [:]
        for member in members {
            if let id = member["id"] as? Int, let role = member["role"] as? String { roles[id] = role }
        }
        return roles
    }

    static func health(_ cluster: ProcessCluster, _ id: Int) async -> [String: Any]? {
        let answer = await HTTP.request("GET", "http://127.0.0.1:\(cluster.health(id))/health")
        guard answer.status == 200 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var result: [T] = []
        for element in self { result.append(await transform(element)) }
        return result
    }
}
