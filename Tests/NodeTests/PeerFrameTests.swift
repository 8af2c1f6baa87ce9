import Raft
import Testing

@testable import Node

@Suite("Peer frames: round trips and hostile input")
struct PeerFrameTests {
    static let configuration = ClusterConfiguration(voters: [1, 2, 3], learners: [9])
    static let samples: [Message.Payload] = [
        .voteRequest(VoteRequest(preVote: true, lastLogIndex: 10, lastLogTerm: 3, leadershipTransfer: false)),
        .voteResponse(VoteResponse(preVote: false, granted: true)),
        .appendEntries(
            AppendEntries(
                prevLogIndex: 4, prevLogTerm: 2,
                entries: [
                    LogEntry(index: 5, term: 2, kind: .command, data: Array("hello".utf8)),
                    LogEntry(index: 6, term: 3, kind: .noop),
                    LogEntry(
                        index: 7, term: 3, kind: .configurationChange, data: ConfigurationChange.addLearner(9).encoded),
                ], leaderCommit: 5)),
        .appendEntries(AppendEntries(prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0)),
        .appendResponse(AppendResponse(success: false, index: 9, conflictTerm: 2, conflictIndex: 4)),
        .appendResponse(AppendResponse(success: true, index: 9)),
        .heartbeat(Heartbeat(commit: 5, sequence: 77, sentAt: 1234)),
        .heartbeatResponse(HeartbeatResponse(sequence: 77, sentAt: 1234)),
        .installSnapshot(
            InstallSnapshot(
                metadata: SnapshotMetadata(index: 100, term: 4, configuration: configuration), offset: 4096,
                data: [1, 2, 3], done: true)),
        .snapshotResponse(SnapshotResponse(snapshotIndex: 100, receivedBytes: 4099)),
        .timeoutNow,
        .readIndexRequest(ReadIndexRequest(requestID: 5, mode: .lease)),
        .readIndexResponse(ReadIndexResponse(requestID: 5, index: 88)),
        .readIndexResponse(ReadIndexResponse(requestID: 6, index: nil)),
        .removed(configurationIndex: 42),
    ]

    var messages: [Message] {
        Self.samples.enumerated().map { Message(from: 1, to: 2, term: UInt64($0.offset + 1), payload: $0.element) }
    }

    @Test func everyMessageTypeRoundTrips() throws {
        var decoder = PeerFrameDecoder()
        let stream = messages.flatMap(PeerFrame.encode)
        #expect(try decoder.feed(stream) == messages.map(PeerEnvelope.raft))
        #expect(decoder.bufferedBytes == 0)
    }

    @Test func framesSplitAtEveryByteReassemble() throws {
        var decoder = PeerFrameDecoder()
        var received: [PeerEnvelope] = []
        for byte in messages.flatMap(PeerFrame.encode) { received += try decoder.feed([byte]) }
        #expect(received == messages.map(PeerEnvelope.raft))
    }

    @Test func forwardedWritesAndResultsRoundTrip() throws {
        let envelopes: [PeerEnvelope] = [
            .forwardedWrite(ForwardedWrite(requestID: 7, from: 2, to: 1, command: [1, 2, 3])),
            .forwardedResult(
                ForwardedResult(
                    requestID: 7, from: 1, to: 2, outcome: .applied(.applied(revision: 4, found: true), index: 9))),
            .forwardedResult(
                ForwardedResult(
                    requestID: 8, from: 1, to: 2, outcome: .applied(.conditionFailed(current: 3), index: 10))),
            .forwardedResult(ForwardedResult(requestID: 9, from: 1, to: 2, outcome: .notLeader(leader: 3))),
            .forwardedResult(ForwardedResult(requestID: 10, from: 1, to: 2, outcome: .notLeader(leader: nil))),
            .forwardedResult(ForwardedResult(requestID: 11, from: 1, to: 2, outcome: .unknown("leader lost"))),
            .forwardedResult(ForwardedResult(requestID: 12, from: 1, to: 2, outcome: .notApplied("overwritten"))),
        ]
        var decoder = PeerFrameDecoder()
        #expect(try decoder.feed(envelopes.flatMap { PeerFrame.encode($0) }) == envelopes)
    }

    @Test func hugeClaimedLengthIsRefusedBeforeAnyBody() {
        var decoder = PeerFrameDecoder()
        #expect(throws: PeerFrameError.tooLarge(Int(UInt32.max))) { try decoder.feed([0xFF, 0xFF, 0xFF, 0xFF]) }
        var zero = PeerFrameDecoder()
        #expect(throws: PeerFrameError.tooLarge(0)) { try zero.feed([0, 0, 0, 0]) }
    }

    @Test func lyingEntryCountIsRefused() {
        var body: [UInt8] = [PeerFrame.version]
        for value: UInt64 in [1, 2, 1] { body.appendLittleEndian(value) }
        body.append(3)
        for value: UInt64 in [0, 0, 0] { body.appendLittleEndian(value) }
        body.appendLittleEndian(UInt32.max)  // claims four billion entries in a tiny frame
        #expect(throws: PeerFrameError.self) { try PeerFrame.decodeBody(body[...]) }
    }

    @Test func randomAndMutatedFramesNeverCrash() {
        var random = SeededRandom(seed: 2024)
        let valid = messages.map(PeerFrame.encode)
        var errors = 0
        for round in 0..<5000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = (0..<random.next(below: 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = valid[random.next(below: valid.count)]
                for _ in 0..<(1 + random.next(below: 4)) {
                    bytes[random.next(below: bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            var decoder = PeerFrameDecoder()
            do {
                _ = try decoder.feed(bytes)
            } catch {
                errors += 1
            }
        }
        #expect(errors > 1000, "most garbage is refused")
    }
}
