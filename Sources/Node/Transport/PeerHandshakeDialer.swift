import Raft

/// The dialing side: hello out, challenge in (checked), proof out.
struct PeerHandshakeDialer {
    let localID: NodeID
    let target: NodeID
    private let key: PeerHandshakeKey
    private let nonce: [UInt8]
    private var buffer: [UInt8] = []
    private(set) var isAuthenticated = false

    init(localID: NodeID, target: NodeID, key: PeerHandshakeKey, nonce: [UInt8] = PeerHandshake.freshNonce()) {
        precondition(nonce.count == PeerHandshake.nonceBytes)
        self.localID = localID
        self.target = target
        self.key = key
        self.nonce = nonce
    }

    /// The first message, sent as soon as the connection is up.
    var hello: [UInt8] {
        var body: [UInt8] = []
        body.appendLittleEndian(localID)
        body.appendLittleEndian(target)
        return PeerHandshake.message(type: PeerHandshake.helloType, body: body + nonce)
    }

    /// Feeds what the listener sent; returns the proof to send once its challenge checks out.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws(PeerHandshakeError) -> [UInt8]? {
        guard !isAuthenticated else { return nil }
        buffer.append(contentsOf: bytes)
        guard
            let body = try PeerHandshake.take(
                PeerHandshake.challengeType, bodyBytes: PeerHandshake.challengeBodyBytes, from: &buffer)
        else { return nil }
        let transcript = PeerHandshake.Transcript(
            listenerNonce: Array(body[..<PeerHandshake.nonceBytes]), dialerNonce: nonce, dialer: localID,
            target: target)
        guard key.isValid(Array(body[PeerHandshake.nonceBytes...]), PeerHandshake.listenerLabel, transcript) else {
            throw .badProof
        }
        isAuthenticated = true
        buffer = []
        return PeerHandshake.message(
            type: PeerHandshake.proofType, body: key.proof(PeerHandshake.dialerLabel, transcript))
    }
}
