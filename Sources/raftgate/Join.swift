import Foundation
import Logging
import Node

/// `serve --join <member>`: a node with an empty data directory asks the cluster to add it (as a
/// learner; the leader promotes it once caught up) and starts from what the answer says — the
/// base configuration every member's log starts from, and where the members are reachable.
struct Join: Sendable {
    /// What the new node starts from.
    struct Plan: Sendable, Decodable {
        struct Base: Sendable, Decodable {
            var voters: [UInt64]
            var learners: [UInt64]
        }
        var base: Base
        /// Raft addresses by node id (as text: JSON object keys).
        var peers: [String: String]
        /// SWIM addresses of the gateways (seeds).
        var swim: [String]
    }

    /// What `GET /members` says: where each member's Raft port is, and the gateways' SWIM seeds.
    struct Listing: Sendable, Decodable {
        struct Member: Sendable, Decodable {
            var id: UInt64
            var raft: String?
        }
        var members: [Member]
        var swim: [String]?

        /// Every other member's Raft address.
        func peers(excluding id: UInt64) -> [UInt64: Address] {
            var peers: [UInt64: Address] = [:]
            for member in members where member.id != id {
                guard let text = member.raft, let address = Address(text),
                    !MemberRecord.isUnspecified(host: address.host)
                else { continue }
                peers[member.id] = address
            }
            return peers
        }
    }

    var client: AdminClient
    var logger: Logger

    /// True when `directory` holds no log and no finished snapshot yet (a brand-new node, or one
    /// killed before its first base snapshot was in place).
    static func isFresh(dataDirectory directory: String) -> Bool { !DataDirectory.holdsState(directory) }

    /// Where the members are now (read-only). A node that joined restarts from its own data, and
    /// until it has applied the member records its store names no peer: without these addresses
    /// its answers to the leader go nowhere and it stays a learner for good.
    func members() async throws -> Listing {
        let client = self.client
        let answer = try await offThePool { try client.send("GET", "/members") }
        guard answer.status == 200 else {
            throw AdminClient.Failure(description: "listing the members failed: \(AdminClient.message(answer))")
        }
        return try JSONDecoder().decode(Listing.self, from: Data(answer.body))
    }

    /// Asks to be added, retrying while the cluster has no leader (503) or cannot be reached.
    func run(id: UInt64, raft: Address, http: Address, attempts: Int = 60) async throws -> Plan {
        let body = Array(#"{"id":\#(id),"raft":"\#(raft)","http":"\#(http)","learner":true}"#.utf8)
        var lastProblem = ""
        for _ in 0..<attempts {
            do {
                let client = self.client
                let answer = try await offThePool { try client.send("POST", "/members", json: body) }
                switch answer.status {
                case 201:
                    return try JSONDecoder().decode(Plan.self, from: Data(answer.body))
                case 409 where String(decoding: answer.body, as: UTF8.self).contains("member_exists"):
                    // A member with an empty data directory lost what it acknowledged: letting it
                    // back in as it is could undo a committed entry. It must be removed first.
                    throw AdminClient.Failure(
                        description:
                            "n\(id) is already a voter (or a member at another raft address) but its data directory is empty; remove it first (raftgate member remove \(id)), then join again"
                    )
                case 503, 504:
                    lastProblem = AdminClient.message(answer)
                case 409 where String(decoding: answer.body, as: UTF8.self).contains("change_pending"):
                    // Another member is being added or promoted: one change at a time, so wait.
                    lastProblem = AdminClient.message(answer)
                default:
                    throw AdminClient.Failure(
                        description: "the cluster refused to add n\(id): \(AdminClient.message(answer))")
                }
            } catch let failure as PlainHTTPClient.Failure {
                lastProblem = failure.description
            }
            logger.info("waiting to join", metadata: ["problem": "\(lastProblem)"])
            try await Task.sleep(for: .seconds(1))
        }
        throw AdminClient.Failure(description: "could not join through \(client.server): \(lastProblem)")
    }
}
