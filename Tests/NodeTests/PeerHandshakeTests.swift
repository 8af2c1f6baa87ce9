import Raft
import Testing

@testable import Node

/// The handshake's two state machines against each other and against hostile input, without
/// sockets: nonces are passed in, so every case is exact.
@Suite("Peer handshake")
struct PeerHandshakeTests {
    static let key = PeerHandshakeKey(.test)
    static let otherKey = PeerHandshakeKey(.other)

    func nonce(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: PeerHandshake.nonceBytes) }

    /// Runs a whole handshake: the listener's output after the proof (and `trailing` bytes).
    func run(
        dialer: inout PeerHandshakeDialer, listener: inout PeerHandshakeListener, trailing: [UInt8] = []
    ) throws -> PeerHandshakeListener.Output {
        let challenge = try #require(try listener.feed(dialer.hello).reply)
        let proof = try #require(try dialer.feed(challenge))
        return try listener.feed(proof + trailing)
    }

    @Test func membersWithTheSameKeyAuthenticateEachOther() throws {
        var dialer = PeerHandshakeDialer(localID: 2, target: 1, key: Self.key, nonce: nonce(1))
        var listener = PeerHandshakeListener(localID: 1, key: Self.key, nonce: nonce(2))
        let frame = PeerFrame.encode(Message(from: 2, to: 1, term: 3, payload: .timeoutNow))
        let output = try run(dialer: &dialer, listener: &listener, trailing: frame)
        #expect(output.authenticated == 2)
        #expect(output.remainder == frame, "what followed the proof is handed on untouched")
        #expect(dialer.isAuthenticated)
        #expect(listener.state == .authenticated(2))
    }

    @Test func messagesSplitAtEveryByteStillAuthenticate() throws {
        var dialer = PeerHandshakeDialer(localID: 2, target: 1, key: Self.key)
        var listener = PeerHandshakeListener(localID: 1, key: Self.key)
        var challenge: [UInt8] = []
        for byte in dialer.hello { challenge += try listener.feed([byte]).reply ?? [] }
        var proof: [UInt8] = []
        for byte in challenge { proof += try dialer.feed([byte]) ?? [] }
        var authenticated: NodeID?
        for byte in proof { authenticated = try listener.feed([byte]).authenticated ?? authenticated }
        #expect(authenticated == 2)
    }

    @Test func aDialerWithAnotherKeyIsRefused() throws {
        // A stranger computes a proof with the key it has; the listener refuses it.
        var stranger = PeerHandshakeDialer(localID: 2, target: 1, key: Self.otherKey, nonce: nonce(1))
        var listener = PeerHandshakeListener(localID: 1, key: Self.key, nonce: nonce(2))
        let challenge = try #require(try listener.feed(stranger.hello).reply)
        #expect(throws: PeerHandshakeError.badProof) { try stranger.feed(challenge) }
        let transcript = PeerHandshake.Transcript(
            listenerNonce: nonce(2), dialerNonce: nonce(1), dialer: 2, target: 1)
        let guessed = Self.otherKey.proof(PeerHandshake.dialerLabel, transcript)
        #expect(throws: PeerHandshakeError.badProof) {
            try listener.feed(PeerHandshake.message(type: PeerHandshake.proofType, body: guessed))
        }
    }

    @Test func aListenerWithAnotherKeyGetsNothingFromTheDialer() throws {
        var dialer = PeerHandshakeDialer(localID: 2, target: 1, key: Self.key)
        var impostor = PeerHandshakeListener(localID: 1, key: Self.otherKey)
        let challenge = try #require(try impostor.feed(dialer.hello).reply)
        #expect(throws: PeerHandshakeError.badProof) { try dialer.feed(challenge) }
        #expect(!dialer.isAuthenticated)
    }

    @Test func aProofIsGoodForOneConnectionOnly() throws {
        var dialer = PeerHandshakeDialer(localID: 2, target: 1, key: Self.key, nonce: nonce(1))
        var first = PeerHandshakeListener(localID: 1, key: Self.key, nonce: nonce(2))
        let challenge = try #require(try first.feed(dialer.hello).reply)
        let proof = try #require(try dialer.feed(challenge))
        // Someone who recorded the hello and the proof plays them to a new connection.
        var second = PeerHandshakeListener(localID: 1, key: Self.key, nonce: nonce(3))
        _ = try second.feed(dialer.hello)
        #expect(throws: PeerHandshakeError.badProof) { try second.feed(proof) }
    }

    @Test func theListenersProofCannotBeReflectedAsTheDialers() throws {
        // A stranger opens two connections and answers the second's challenge with the first's
        // listener proof over the same nonces: the labels differ, so it fails.
        var listener = PeerHandshakeListener(localID: 1, key: Self.key, nonce: nonce(2))
        let stranger = PeerHandshakeDialer(localID: 2, target: 1, key: Self.otherKey, nonce: nonce(1))
        let challenge = try #require(try listener.feed(stranger.hello).reply)
        let listenerProof = Array(challenge[(6 + PeerHandshake.nonceBytes)...])
        #expect(throws: PeerHandshakeError.badProof) {
            try listener.feed(PeerHandshake.message(type: PeerHandshake.proofType, body: listenerProof))
        }
    }

    @Test func aHelloForAnotherNodeOrFromAnImpossibleIdIsRefused() {
        let forThree = PeerHandshakeDialer(localID: 2, target: 3, key: Self.key)
        var listener = PeerHandshakeListener(localID: 1, key: Self.key)
        #expect(throws: PeerHandshakeError.wrongTarget(3)) { try listener.feed(forThree.hello) }
        for dialer: NodeID in [0, 1] {
            var listener = PeerHandshakeListener(localID: 1, key: Self.key)
            let hello = PeerHandshakeDialer(localID: dialer, target: 1, key: Self.key).hello
            #expect(throws: PeerHandshakeError.invalidDialer(dialer)) { try listener.feed(hello) }
        }
    }

    @Test func aPeerOfTheOldProtocolIsToldApartFromGarbage() {
        // A version 1 node dials straight in with frames: refused by version, not as noise.
        var frame = PeerFrame.encode(Message(from: 2, to: 1, term: 1, payload: .timeoutNow))
        frame[4] = 1
        var listener = PeerHandshakeListener(localID: 1, key: Self.key)
        #expect(throws: PeerHandshakeError.unsupportedVersion(1)) { try listener.feed(frame) }
        // A current frame sent without the handshake is not a hello: refused at its length,
        // without waiting for the body it claims.
        var eager = PeerHandshakeListener(localID: 1, key: Self.key)
        let header = Array(PeerFrame.encode(Message(from: 2, to: 1, term: 1, payload: .timeoutNow)).prefix(5))
        #expect(throws: PeerHandshakeError.self) { try eager.feed(header) }
    }

    @Test func randomBytesNeverAuthenticateNorCrash() {
        var random = SeededRandom(seed: 15)
        let valid = PeerHandshakeDialer(localID: 2, target: 1, key: Self.key).hello
        var refused = 0
        for round in 0..<3000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<random.next(below: 120)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = valid + (0..<random.next(below: 60)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                bytes[random.next(below: bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            }
            var listener = PeerHandshakeListener(localID: 1, key: Self.key)
            do {
                #expect(try listener.feed(bytes).authenticated == nil)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 1000)
    }
}
