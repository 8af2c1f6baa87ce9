import Foundation
import Testing

/// SWIM over real UDP between three `raftgate serve` processes on 127.0.0.1.
@Suite("SWIM between processes", .serialized)
struct MembershipProcessTests {
    /// Node `observer`'s SWIM view of `member`: status and incarnation.
    static func view(_ cluster: ProcessCluster, observer: Int, member: Int) async -> (status: String, incarnation: Int)?
    {
        let answer = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(observer))/cluster")
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let members = object["swimMembers"] as? [[String: Any]],
            let record = members.first(where: { $0["id"] as? Int == member }),
            let status = record["status"] as? String, let incarnation = record["incarnation"] as? Int
        else { return nil }
        return (status, incarnation)
    }

    @Test func aKilledNodeIsDeclaredDeadAndComesBackWithAHigherIncarnation() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        for id in 1...3 { try cluster.start(id) }
        let everyoneAlive = await eventually {
            for observer in 1...3 {
                for member in 1...3
                where await Self.view(cluster, observer: observer, member: member)?.status != "alive" {
                    return false
                }
            }
            return true
        }
        #expect(everyoneAlive, "all three see all three alive")
        let before = try #require(await Self.view(cluster, observer: 1, member: 3))
        cluster.kill(3)
        let declaredDead = await eventually {
            for observer in [1, 2] where await Self.view(cluster, observer: observer, member: 3)?.status != "dead" {
                return false
            }
            return true
        }
        #expect(declaredDead, "both survivors mark n3 dead")
        try cluster.start(3)
        let back = await eventually {
            for observer in [1, 2] {
                guard let view = await Self.view(cluster, observer: observer, member: 3), view.status == "alive",
                    view.incarnation > before.incarnation
                else { return false }
            }
            return true
        }
        #expect(back, "n3 is alive again everywhere, with a higher incarnation")
    }

    /// Garbage and forged datagrams on the SWIM port are dropped and counted; the node keeps going.
    @Test func garbageOnTheSwimPortIsDroppedAndCounted() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        for id in 1...3 { try cluster.start(id) }
        #expect(await cluster.leader() != nil)
        let socketDescriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(socketDescriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(cluster.swim(1)).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let datagrams: [[UInt8]] = [
            [], [0], Array(repeating: 0xFF, count: 40), (0..<1400).map { UInt8(truncatingIfNeeded: $0 &* 31) },
            Array(repeating: 0, count: 32) + [1, 0, 0, 0],  // a forged tag in front of a plausible message
        ]
        for datagram in datagrams {
            _ = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(
                            socketDescriptor, bytes.baseAddress, bytes.count, 0, $0,
                            socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        }
        let counted = await eventually(within: 10) {
            let metrics = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(1))/metrics").body
            let line = metrics.split(separator: "\n").first {
                $0.hasPrefix("raftgate_swim_dropped_unauthenticated_total ")
            }
            return line.flatMap { Double($0.split(separator: " ").last!) }.map { $0 >= 4 } ?? false
        }
        #expect(counted, "the empty datagram may never be delivered; the other four are counted")
        let metrics = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(1))/metrics").body
        for name in [
            #"raftgate_swim_members{state="alive"} 3"#, "raftgate_swim_local_health_multiplier",
            "raftgate_swim_probes_total", "raftgate_swim_suspicions_total", "raftgate_swim_refutations_total",
            "raftgate_swim_false_suspicion_refutations_total",
        ] {
            #expect(metrics.contains(name), "\(name) in /metrics")
        }
        #expect(await Self.view(cluster, observer: 1, member: 2)?.status == "alive")
        #expect(await cluster.write(port: cluster.http(1), key: "still", value: "fine"))
    }
}
