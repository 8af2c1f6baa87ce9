import Raft
import TestSupport

@testable import Node

#if canImport(Glibc)
    import Glibc
#endif

/// Someone speaking to a Raft port over a raw TCP socket with exactly the bytes a test chooses: a
/// stranger without the key, one guessing at it, or a member claiming to be another. Blocking:
/// call it through `offThePool`, since the node it talks to lives in this process.
final class RawPeer: Sendable {
    private let descriptor: Int32

    init?(port: Int) {
        guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Ends the connection from this side (the descriptor stays valid until deinit).
    func shutdown() { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { LoopbackSocket.send(bytes, on: descriptor) }

    /// Exactly `count` bytes, or nil if the connection closed (or went quiet) first.
    func read(_ count: Int) -> [UInt8]? {
        LoopbackSocket.read(count, from: descriptor)
    }

    /// True once the node has closed the connection (end of stream or reset) within the socket's
    /// receive timeout; whatever it sent before is skipped.
    func closedByTheNode() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if got == 0 { return true }
            if got < 0 { return errno == ECONNRESET }
        }
    }

    /// Runs the dialer's side of the handshake as `dialer` towards `target`, its proof computed
    /// with `key` whether or not that is the cluster's (the listener's proof is not checked: a
    /// stranger does not care). False if the node hung up before its challenge.
    func handshake(as dialer: NodeID, to target: NodeID, key: ClusterKey) -> Bool {
        let nonce = PeerHandshake.freshNonce()
        var hello: [UInt8] = []
        hello.appendLittleEndian(dialer)
        hello.appendLittleEndian(target)
        guard send(PeerHandshake.message(type: PeerHandshake.helloType, body: hello + nonce)),
            let challenge = read(4 + 2 + PeerHandshake.challengeBodyBytes)
        else { return false }
        let transcript = PeerHandshake.Transcript(
            listenerNonce: Array(challenge[6..<(6 + PeerHandshake.nonceBytes)]), dialerNonce: nonce, dialer: dialer,
            target: target)
        let proof = PeerHandshakeKey(key).proof(PeerHandshake.dialerLabel, transcript)
        return send(PeerHandshake.message(type: PeerHandshake.proofType, body: proof))
    }
}
