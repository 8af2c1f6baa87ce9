import Foundation
import Testing

@testable import raftgate

/// A node that joined restarts with `--join` and learns its peers from `GET /members`.
@Suite("Join: member listing")
struct JoinListingTests {
    @Test func aListingGivesEveryOtherMembersRaftAddress() throws {
        let body = #"""
            {"leader":1,"term":3,"commitIndex":40,"base":{"voters":[1,2,3],"learners":[]},"swim":["127.0.0.1:7001"],
             "members":[{"id":1,"role":"voter","raft":"127.0.0.1:9001","match":40,"lag":0},
                        {"id":2,"role":"voter","raft":"127.0.0.2:9002"},
                        {"id":3,"role":"voter"},
                        {"id":5,"role":"voter","raft":"0.0.0.0:9005"},
                        {"id":4,"role":"learner","raft":"127.0.0.4:9004"}]}
            """#
        let listing = try JSONDecoder().decode(Join.Listing.self, from: Data(body.utf8))
        let peers = listing.peers(excluding: 4)
        #expect(peers.keys.sorted() == [1, 2], "not itself, not a member without a dialable address")
        #expect(peers[2] == Address("127.0.0.2:9002"))
        #expect(listing.swim == ["127.0.0.1:7001"])
    }
}
