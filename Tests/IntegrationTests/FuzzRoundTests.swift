import Foundation
import Raft
import TestSupport
import Testing

@testable import Node

#if canImport(Glibc)
    import Glibc
#endif

/// A seeded fuzz round against a real three-node cluster: hostile bytes on the leader's HTTP
/// port, Raft peer port and SWIM UDP and TCP ports, and after each round the cluster still takes
/// a write and answers a linearizable read, and every process is alive.
///
/// The seed is printed; `RAFTGATE_FUZZ_SEED=<seed> swift test --skip-build --filter FuzzRoundTests`
/// replays the same inputs. `RAFTGATE_FUZZ_ROUNDS` runs more rounds than the default.
@Suite("Fuzz round on a real node", .serialized)
struct FuzzRoundTests {
    static let rounds = Int(ProcessInfo.processInfo.environment["RAFTGATE_FUZZ_ROUNDS"] ?? "") ?? 10

    @Test func hostileBytesOnEveryPortLeaveTheClusterServing() async throws {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["RAFTGATE_FUZZ_SEED"] ?? "")
            ?? UInt64.random(in: 1...UInt64.max)
        print("fuzz round seed \(seed): replay with RAFTGATE_FUZZ_SEED=\(seed)")
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        for id in 1...3 { try cluster.start(id) }
        var random = FuzzRandom(seed: seed)
        for round in 0..<Self.rounds {
            let leader = try #require(await cluster.leader(), "seed \(seed), round \(round): a leader")
            let inputs = FuzzInputs.round(&random, key: try ClusterKey(ProcessCluster.clusterKey))
            let ports = FuzzPorts(
                http: cluster.http(leader), raft: cluster.raft(leader), swim: cluster.swim(leader),
                udpSource: cluster.base + 60, target: NodeID(leader), member: NodeID(leader % 3 + 1))
            let outcome = await offThePool { inputs.run(against: ports) }
            #expect(
                outcome.connected == inputs.connections.count + 2 * inputs.replays + inputs.authenticatedGarbage.count,
                "seed \(seed), round \(round): every connection was accepted")
            #expect(outcome.replaysAccepted == 0, "seed \(seed), round \(round): a replayed handshake got in")
            #expect(outcome.garbageAfterAuthenticationKept == 0, "seed \(seed), round \(round): garbage frames kept")
            for (id, process) in cluster.processes.sorted(by: { $0.key < $1.key }) {
                #expect(process.isRunning, "seed \(seed), round \(round): node \(id) died; log:\n\(cluster.log(id))")
            }
            let value = "round-\(round)-\(seed)"
            #expect(
                await cluster.write(port: cluster.http(leader), key: "fuzz", value: value),
                "seed \(seed), round \(round): a write after the round")
            let read = await cluster.read(port: cluster.http(leader), path: "/kv/fuzz?consistency=linearizable")
            #expect(read.status == 200 && read.body.contains(value), "seed \(seed), round \(round): \(read)")
        }
        // The bytes reached what they were aimed at, and were refused there and counted.
        var metrics = ""
        for id in 1...3 { metrics += await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/metrics").body }
        for counter in [
            "raftgate_peer_rejected_total{reason=\"handshake\"}", "raftgate_peer_rejected_total{reason=\"frame\"}",
            "raftgate_swim_dropped_unauthenticated_total",
        ] {
            #expect(Self.sum(counter, in: metrics) > 0, "seed \(seed): \(counter)")
        }
    }

    /// The same hostile bytes against a cluster with TLS on: HTTPS on the API, mutual TLS between
    /// peers. None of it gets past TLS (the member handshakes need a TLS client, so they are left
    /// out); the nodes refuse it, count the peer-port refusals and keep serving over TLS.
    @Test func hostileBytesOnTLSPortsLeaveTheClusterServing() async throws {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["RAFTGATE_FUZZ_SEED"] ?? "")
            ?? UInt64.random(in: 1...UInt64.max)
        print("fuzz round (TLS) seed \(seed): replay with RAFTGATE_FUZZ_SEED=\(seed)")
        let certificates = try await ThrowawayCertificates.make(["n1", "n2", "n3"])
        let cluster = ProcessCluster()
        defer {
            cluster.stopAll()
            certificates.remove()
        }
        let base = cluster.extraArguments
        for id in 1...3 {
            cluster.extraArguments = base + TLSProcessTests.tlsArguments(certificates, "n\(id)", api: true)
            try cluster.start(id)
        }
        let trust = ["--cacert", certificates.ca]
        var random = FuzzRandom(seed: seed)
        for round in 0..<max(1, Self.rounds / 2) {
            let leader = try #require(
                await TLSProcessTests.httpsLeader(cluster, ca: certificates.ca),
                "seed \(seed), round \(round): a leader")
            var drawn = FuzzInputs.round(&random, key: try ClusterKey(ProcessCluster.clusterKey))
            drawn.replays = 0
            drawn.authenticatedGarbage = []
            let inputs = drawn
            let ports = FuzzPorts(
                http: cluster.http(leader), raft: cluster.raft(leader), swim: cluster.swim(leader),
                udpSource: cluster.base + 60, target: NodeID(leader), member: NodeID(leader % 3 + 1))
            let outcome = await offThePool { inputs.run(against: ports) }
            #expect(outcome.connected == inputs.connections.count, "seed \(seed), round \(round)")
            for (id, process) in cluster.processes.sorted(by: { $0.key < $1.key }) {
                #expect(process.isRunning, "seed \(seed), round \(round): node \(id) died; log:\n\(cluster.log(id))")
            }
            let value = "tls-round-\(round)-\(seed)"
            let url = "https://127.0.0.1:\(cluster.http(leader))/kv/fuzz"
            let written = await poll {
                await Curl.run(trust + ["-X", "PUT", "--data", value, url]).status == 200 ? true : nil
            }
            #expect(written == true, "seed \(seed), round \(round): a write after the round")
            let read = await Curl.run(trust + [url + "?consistency=linearizable"])
            #expect(read.status == 200 && read.body.contains(value), "seed \(seed), round \(round): \(read)")
        }
        var metrics = ""
        for id in 1...3 { metrics += await Curl.run(trust + ["https://127.0.0.1:\(cluster.http(id))/metrics"]).body }
        #expect(Self.sum("raftgate_peer_rejected_total{reason=\"tls\"}", in: metrics) > 0, "seed \(seed)")
    }

    /// The sum of every sample of `series` in Prometheus text.
    static func sum(_ series: String, in metrics: String) -> Double {
        metrics.split(separator: "\n").filter { $0.hasPrefix(series + " ") }.compactMap {
            Double($0.split(separator: " ").last ?? "")
        }.reduce(0, +)
    }
}

/// SplitMix64: small, seeded, the same sequence on every machine.
struct FuzzRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func range(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

struct FuzzPorts: Sendable {
    var http: Int
    var raft: Int
    var swim: Int
    /// Where the fuzzer's own UDP socket binds (a port of the cluster's block nobody else uses).
    var udpSource: Int
    /// The node behind these ports, and another member the fuzzer poses as (it holds the key).
    var target: NodeID
    var member: NodeID
}

/// One connection's worth of hostile input.
struct FuzzConnection: Sendable {
    enum Port: Sendable { case http, raft, swimTCP }
    /// What the fuzzer does once its bytes are out.
    enum Ending: Sendable {
        /// Close at once (the node may see a reset).
        case close
        /// Shut down the write side and read until the node closes or a second passes.
        case halfClose
    }
    var port: Port
    var bytes: [UInt8]
    var ending: Ending
}

/// A round's inputs, all drawn from the seed up front so a replay sends the same bytes.
struct FuzzInputs: Sendable {
    var connections: [FuzzConnection] = []
    var datagrams: [[UInt8]] = []
    /// Authenticated peer connections that send frames which do not decode.
    var authenticatedGarbage: [[UInt8]] = []
    var replays = 0
    var key: ClusterKey

    static func round(_ random: inout FuzzRandom, key: ClusterKey) -> FuzzInputs {
        var inputs = FuzzInputs(key: key)
        let endings: [FuzzConnection.Ending] = [.close, .halfClose]
        func add(_ port: FuzzConnection.Port, _ bytes: [UInt8], _ random: inout FuzzRandom) {
            inputs.connections.append(FuzzConnection(port: port, bytes: bytes, ending: endings[random.below(2)]))
        }
        for _ in 0..<3 {
            add(.http, random.bytes(random.range(1...4096)), &random)
            add(.http, HTTPFuzz.truncated(&random), &random)
            add(.http, HTTPFuzz.hugeHeaders(&random), &random)
            add(.http, HTTPFuzz.hugeRequestLine(&random), &random)
            add(.http, HTTPFuzz.invalidChunked(&random), &random)
            add(.raft, random.bytes(random.range(1...4096)), &random)
            add(.raft, PeerFuzz.garbageFrame(&random), &random)
            add(.raft, PeerFuzz.truncatedHello(&random), &random)
            add(.raft, PeerFuzz.hugeClaimedLength(&random), &random)
            add(.swimTCP, random.bytes(random.range(1...4096)), &random)
            add(.swimTCP, PeerFuzz.garbageFrame(&random), &random)
            inputs.authenticatedGarbage.append(PeerFuzz.undecodableFrame(&random))
        }
        for _ in 0..<20 { inputs.datagrams.append(random.bytes(random.range(1...1400))) }
        inputs.replays = 2
        return inputs
    }

    struct Outcome: Sendable {
        var connected = 0
        var replaysAccepted = 0
        var garbageAfterAuthenticationKept = 0
    }

    /// Blocking socket work: call through `offThePool`.
    func run(against ports: FuzzPorts) -> Outcome {
        var outcome = Outcome()
        for connection in connections {
            let port =
                switch connection.port {
                case .http: ports.http
                case .raft: ports.raft
                case .swimTCP: ports.swim
                }
            guard let socket = FuzzSocket(port: port) else { continue }
            outcome.connected += 1
            socket.send(connection.bytes)
            if case .halfClose = connection.ending {
                socket.shutdownWrite()
                socket.drainUntilClosed()
            }
        }
        if let udp = LoopbackDatagramSocket(port: ports.udpSource, receiveTimeoutMilliseconds: 100) {
            for datagram in datagrams { udp.send(datagram, to: ports.swim) }
        }
        // A member's handshake, recorded, then replayed on a new connection: the listener's new
        // nonce makes the recorded proof worthless, so the node must hang up.
        for _ in 0..<replays {
            guard let member = FuzzSocket(port: ports.raft) else { continue }
            outcome.connected += 1
            guard let recorded = member.handshake(as: ports.member, to: ports.target, key: key) else { continue }
            guard let replay = FuzzSocket(port: ports.raft) else { continue }
            outcome.connected += 1
            replay.send(recorded.hello)
            _ = replay.read(4 + 2 + PeerHandshake.challengeBodyBytes)
            replay.send(recorded.proof)
            if !replay.closedByTheNode() { outcome.replaysAccepted += 1 }
        }
        // A member that sends a frame which does not decode is cut off.
        for frame in authenticatedGarbage {
            guard let member = FuzzSocket(port: ports.raft) else { continue }
            outcome.connected += 1
            guard member.handshake(as: ports.member, to: ports.target, key: key) != nil else { continue }
            member.send(frame)
            if !member.closedByTheNode() { outcome.garbageAfterAuthenticationKept += 1 }
        }
        return outcome
    }
}

enum HTTPFuzz {
    static let request = Array(
        "PUT /kv/fuzz-target HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef".utf8)

    /// A valid request cut anywhere.
    static func truncated(_ random: inout FuzzRandom) -> [UInt8] {
        Array(request.prefix(random.range(1...(request.count - 1))))
    }

    /// Up to about a megabyte of headers.
    static func hugeHeaders(_ random: inout FuzzRandom) -> [UInt8] {
        var text = "GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for index in 0..<random.range(1...64) {
            text += "X-Fuzz-\(index): " + String(repeating: "a", count: random.range(1...16_384)) + "\r\n"
        }
        return Array((text + "\r\n").utf8)
    }

    static func hugeRequestLine(_ random: inout FuzzRandom) -> [UInt8] {
        Array(("GET /" + String(repeating: "k", count: random.range(8_192...1_048_576)) + " HTTP/1.1\r\n\r\n").utf8)
    }

    static func invalidChunked(_ random: inout FuzzRandom) -> [UInt8] {
        let head = "PUT /kv/fuzz-chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        let bodies = [
            "zz\r\nabc\r\n0\r\n\r\n", "fffffffffffffffffffff\r\nabc\r\n", "5\r\nab\r\n0\r\n\r\n", "-1\r\nabc\r\n",
            "3\r\nabcdef\r\n0\r\n\r\n", "3;ext=\(String(repeating: "e", count: 70_000))\r\nabc\r\n",
            "3\r\nabc", "0\r\nTrailer: " + String(repeating: "t", count: 100_000) + "\r\n\r\n",
        ]
        var bytes = Array((head + bodies[random.below(bodies.count)]).utf8)
        if random.below(4) == 0 { bytes += random.bytes(random.range(1...512)) }
        return bytes
    }
}

enum PeerFuzz {
    /// A frame whose length is right for what follows, the rest random.
    static func garbageFrame(_ random: inout FuzzRandom) -> [UInt8] {
        let body = random.bytes(random.range(1...65_536))
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(UInt32(body.count))
        return bytes + body
    }

    /// A frame header claiming up to 4 GiB, then a little.
    static func hugeClaimedLength(_ random: inout FuzzRandom) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(UInt32(truncatingIfNeeded: random.next()) | 0x0100_0000)
        return bytes + random.bytes(random.range(0...64))
    }

    /// A well-formed hello, cut short.
    static func truncatedHello(_ random: inout FuzzRandom) -> [UInt8] {
        var body: [UInt8] = []
        body.appendLittleEndian(UInt64(2))
        body.appendLittleEndian(UInt64(1))
        body += random.bytes(PeerHandshake.nonceBytes)
        let hello = PeerHandshake.message(type: PeerHandshake.helloType, body: body)
        return Array(hello.prefix(random.range(1...(hello.count - 1))))
    }

    /// A correctly sized frame whose body does not decode (drawn again until it does not).
    static func undecodableFrame(_ random: inout FuzzRandom) -> [UInt8] {
        while true {
            var body = random.bytes(random.range(1...4096))
            if random.below(2) == 0 { body[0] = PeerFrame.version }
            if (try? PeerFrame.decodeBody(body[...])) != nil { continue }
            var bytes: [UInt8] = []
            bytes.appendLittleEndian(UInt32(body.count))
            return bytes + body
        }
    }
}

/// A blocking loopback TCP connection that never raises SIGPIPE.
final class FuzzSocket {
    private let descriptor: Int32

    init?(port: Int) {
        guard let descriptor = LoopbackSocket.connect(port: port, receiveTimeoutSeconds: 1) else { return nil }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// As much of `bytes` as the node takes before it hangs up.
    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    func shutdownWrite() { shutdown(descriptor, Int32(SHUT_WR)) }

    /// Reads until the node closes or goes quiet for the receive timeout.
    func drainUntilClosed() {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while chunk.withUnsafeMutableBytes({ recv(descriptor, $0.baseAddress, $0.count, 0) }) > 0 {}
    }

    func read(_ count: Int) -> [UInt8]? {
        LoopbackSocket.read(count, from: descriptor)
    }

    /// True once the node closed the connection (end of stream or reset) within a few receive
    /// timeouts; false if it kept it open and quiet.
    func closedByTheNode() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<3 {
            let got = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if got == 0 { return true }
            if got < 0 {
                if errno == ECONNRESET { return true }
                continue
            }
        }
        return false
    }

    /// The dialer's side of the handshake with the cluster key, as member `dialer` towards `target`.
    /// Returns the hello and proof sent, for a replay; nil if the node did not answer with a challenge.
    func handshake(as dialer: NodeID, to target: NodeID, key: ClusterKey) -> (hello: [UInt8], proof: [UInt8])? {
        let nonce = PeerHandshake.freshNonce()
        var body: [UInt8] = []
        body.appendLittleEndian(dialer)
        body.appendLittleEndian(target)
        let hello = PeerHandshake.message(type: PeerHandshake.helloType, body: body + nonce)
        send(hello)
        guard let challenge = read(4 + 2 + PeerHandshake.challengeBodyBytes) else { return nil }
        let transcript = PeerHandshake.Transcript(
            listenerNonce: Array(challenge[6..<(6 + PeerHandshake.nonceBytes)]), dialerNonce: nonce, dialer: dialer,
            target: target)
        let proof = PeerHandshake.message(
            type: PeerHandshake.proofType, body: PeerHandshakeKey(key).proof(PeerHandshake.dialerLabel, transcript))
        send(proof)
        return (hello, proof)
    }
}
