import Raft

/// The accepting side: hello in, challenge out, proof in, then the dialer's id.
struct PeerHandshakeListener {
    enum State: Hashable {
        case awaitingHello
        case awaitingProof(PeerHandshake.Transcript)
        case authenticated(NodeID)
    }

    struct Output: Hashable {
        /// To send to the dialer.
        var reply: [UInt8]?
        /// Set once the dialer proved it holds the key: frames from now on come from it alone.
        var authenticated: NodeID?
        /// Bytes that arrived after the proof: the first frames.
        var remainder: [UInt8] = []
    }

    let localID: NodeID
    private let key: PeerHandshakeKey
    private let nonce: [UInt8]
    private(set) var state = State.awaitingHello
    private var buffer: [UInt8] = []

    /// `nonce` is fresh per connection; tests pass their own.
    init(localID: NodeID, key: PeerHandshakeKey, nonce: [UInt8] = PeerHandshake.freshNonce()) {
        precondition(nonce.count == PeerHandshake.nonceBytes)
        self.localID = localID
        self.key = key
        self.nonce = nonce
    }

    /// Feeds what the socket delivered. After an error the connection must be closed.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws(PeerHandshakeError) -> Output {
        if case .authenticated = state { preconditionFailure("feed after the handshake") }
        buffer.append(contentsOf: bytes)
        var output = Output()
        if state == .awaitingHello {
            guard
                let body = try PeerHandshake.take(
                    PeerHandshake.helloType, bodyBytes: PeerHandshake.helloBodyBytes, from: &buffer)
            else { return output }
            var reader = StoreReader(body[...])
            let dialer = (try? reader.uint64()) ?? 0
            let target = (try? reader.uint64()) ?? 0
            guard target == localID else { throw .wrongTarget(target) }
            guard dialer != 0, dialer != localID else { throw .invalidDialer(dialer) }
            let transcript = PeerHandshake.Transcript(
                listenerNonce: nonce, dialerNonce: Array(body[16...]), dialer: dialer, target: target)
            output.reply = PeerHandshake.message(
                type: PeerHandshake.challengeType, body: nonce + key.proof(PeerHandshake.listenerLabel, transcript))
            state = .awaitingProof(transcript)
        }
        guard case .awaitingProof(let transcript) = state,
            let proof = try PeerHandshake.take(
                PeerHandshake.proofType, bodyBytes: PeerHandshake.proofBodyBytes, from: &buffer)
        else { return output }
        guard key.isValid(proof, PeerHandshake.dialerLabel, transcript) else { throw .badProof }
        state = .authenticated(transcript.dialer)
        output.authenticated = transcript.dialer
        output.remainder = buffer
        buffer = []
        return output
    }
}
