import NIOCore
import NIOPosix
import NIOSSL

/// Where a node's peer-port certificates live: its own certificate (chain) and key, and the
/// cluster CA every peer's certificate must be signed by.
public struct PeerTLSFiles: Sendable, Hashable {
    public var certificateChain: String
    public var privateKey: String
    public var clusterCA: String

    public init(certificateChain: String, privateKey: String, clusterCA: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.clusterCA = clusterCA
    }
}

/// Mutual TLS on the Raft peer port, underneath the cluster-key handshake (which stays): both ends
/// present a certificate and accept only one signed by the cluster CA. Only that CA is trusted (not
/// the system's roots), so "signed by the cluster CA" is what admits a peer; which node it is, is
/// still proved by the handshake, so certificates need not name nodes and host names are not
/// checked (peers are dialled by address, often an IP the certificate would have to list).
///
/// TLS adds what the handshake alone lacks: frames are encrypted and integrity-protected, so an
/// on-path attacker can neither read nor inject into an established peer stream.
public struct PeerTLS: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext

    /// Reads and parses the files: blocking file I/O, so call it off the event loops and off the
    /// concurrency pool (`load(_:)` does).
    public init(files: PeerTLSFiles) throws {
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain).map {
            NIOSSLCertificateSource.certificate($0)
        }
        let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(file: files.privateKey, format: .pem))
        let roots = NIOSSLTrustRoots.certificates(try NIOSSLCertificate.fromPEMFile(files.clusterCA))
        var server = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain, privateKey: key, trustRoots: roots)
        server.minimumTLSVersion = .tlsv12
        server.certificateVerification = .noHostnameVerification
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = chain
        client.privateKey = key
        client.trustRoots = roots
        client.minimumTLSVersion = .tlsv12
        client.certificateVerification = .noHostnameVerification
        // Closing a TLS connection waits for the peer's close_notify, 5 s by default: a stopped or
        // paused peer would hold up this node's shutdown that long per connection.
        server.shutdownTimeout = .seconds(1)
        client.shutdownTimeout = .seconds(1)
        self.server = try NIOSSLContext(configuration: server)
        self.client = try NIOSSLContext(configuration: client)
    }

    /// `init(files:)` on NIO's blocking-I/O thread pool.
    public static func load(_ files: PeerTLSFiles) async throws -> PeerTLS {
        try await NIOThreadPool.singleton.runIfActive { try PeerTLS(files: files) }
    }
}

/// Sits right behind the TLS handler of an accepted peer connection: a TLS handshake that fails
/// (plain bytes, no client certificate, one from another CA) is counted as a `.tls` rejection and
/// the connection closed, before anything reaches the cluster-key handshake. The first decrypted
/// bytes show the TLS handshake is done; from then on this handler steps aside.
final class PeerTLSRejectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let reject: @Sendable (PeerRejection, SocketAddress?) -> Void
    private var done = false

    init(reject: @escaping @Sendable (PeerRejection, SocketAddress?) -> Void) {
        self.reject = reject
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        guard !done else { return }
        done = true
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !done else {
            context.fireErrorCaught(error)
            return
        }
        done = true
        reject(.tls, context.channel.remoteAddress)
        context.close(promise: nil)
    }
}
