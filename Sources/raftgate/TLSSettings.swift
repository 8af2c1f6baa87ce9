import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOPosix
import NIOSSL
import Node

/// The optional TLS of `raftgate serve`, resolved with the other settings (flag, then `RAFTGATE_*`
/// variable, then config file key):
///
/// - API and health listeners: `--tls-cert`/`--tls-key` (`tlsCert`, `tlsKey`) serve HTTPS on both;
///   `--tls-client-ca` (`tlsClientCa`) also requires a client certificate signed by that CA.
/// - Raft peer port: `--peer-tls-cert`, `--peer-tls-key`, `--peer-tls-ca` (`peerTlsCert`,
///   `peerTlsKey`, `peerTlsCa`) turn on mutual TLS; all three or none, the same CA on every node.
///
/// Without them everything is plain TCP, as before: TLS can be terminated at HAProxy or Caddy.
struct TLSSettings: Sendable, Hashable {
    var api: APIFiles?
    var peer: PeerTLSFiles?

    struct APIFiles: Sendable, Hashable {
        var certificateChain: String
        var privateKey: String
        /// When set, clients must present a certificate signed by this CA.
        var clientCA: String?
    }

    struct Flags: Sendable {
        var tlsCert: String?
        var tlsKey: String?
        var tlsClientCa: String?
        var peerTlsCert: String?
        var peerTlsKey: String?
        var peerTlsCa: String?
    }

    /// `text(flag, key)` is `ServeSettings`' layered lookup.
    static func resolve(_ flags: Flags, text: (String?, String) -> String?) throws -> TLSSettings {
        func file(_ flag: String?, _ key: String) throws -> String? {
            guard let path = text(flag, key), !path.isEmpty else { return nil }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ValidationError("\(key): \(path) is not a readable file")
            }
            return path
        }
        var settings = TLSSettings()
        let cert = try file(flags.tlsCert, "tlsCert")
        let key = try file(flags.tlsKey, "tlsKey")
        let clientCA = try file(flags.tlsClientCa, "tlsClientCa")
        switch (cert, key) {
        case (let cert?, let key?):
            settings.api = APIFiles(certificateChain: cert, privateKey: key, clientCA: clientCA)
        case (nil, nil):
            if clientCA != nil { throw ValidationError("tlsClientCa needs tlsCert and tlsKey") }
        default:
            throw ValidationError("tlsCert and tlsKey go together: set both or neither")
        }
        let peerCert = try file(flags.peerTlsCert, "peerTlsCert")
        let peerKey = try file(flags.peerTlsKey, "peerTlsKey")
        let peerCA = try file(flags.peerTlsCa, "peerTlsCa")
        switch (peerCert, peerKey, peerCA) {
        case (let cert?, let key?, let ca?):
            settings.peer = PeerTLSFiles(certificateChain: cert, privateKey: key, clusterCA: ca)
        case (nil, nil, nil):
            break
        default:
            throw ValidationError("peerTlsCert, peerTlsKey and peerTlsCa go together: set all three or none")
        }
        return settings
    }

    /// The files read and parsed, on NIO's blocking-I/O pool (not the concurrency pool).
    func load() async throws -> LoadedTLS {
        var peer: PeerTLS?
        if let files = self.peer { peer = try await PeerTLS.load(files) }
        guard let api else { return LoadedTLS(api: nil, peer: peer) }
        let configuration = try await NIOThreadPool.singleton.runIfActive { try api.configuration() }
        return LoadedTLS(api: configuration, peer: peer)
    }
}

extension TLSSettings.APIFiles {
    /// Certificates loaded here, not named by path, so that building the context does no file I/O.
    func configuration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateChain).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
            configuration.certificateVerification = .noHostnameVerification
            configuration.sendCANameList = true
        }
        // Fails now, at startup, on a key that does not match its certificate.
        _ = try NIOSSLContext(configuration: configuration)
        return configuration
    }
}

/// TLS ready to use: what `Serve` hands to Hummingbird and to the node.
struct LoadedTLS: Sendable {
    var api: TLSConfiguration?
    var peer: PeerTLS?

    /// `base`, wrapped in TLS when the API and health listeners have a certificate.
    func server(_ base: HTTPServerBuilder) throws -> HTTPServerBuilder {
        guard let api else { return base }
        return try .tls(base, tlsConfiguration: api)
    }
}

/// The TLS flags of `raftgate serve`.
struct TLSOptions: ParsableArguments {
    @Option(help: "PEM certificate (chain) for HTTPS on the API and health listeners (RAFTGATE_TLS_CERT).")
    var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert (RAFTGATE_TLS_KEY).")
    var tlsKey: String?
    @Option(help: "PEM CA: API and health clients must present a certificate it signed (RAFTGATE_TLS_CLIENT_CA).")
    var tlsClientCa: String?
    @Option(help: "PEM certificate for mutual TLS on the Raft peer port (RAFTGATE_PEER_TLS_CERT).")
    var peerTlsCert: String?
    @Option(help: "PEM private key of --peer-tls-cert (RAFTGATE_PEER_TLS_KEY).")
    var peerTlsKey: String?
    @Option(help: "PEM cluster CA: peers must present a certificate it signed (RAFTGATE_PEER_TLS_CA).")
    var peerTlsCa: String?

    var flags: TLSSettings.Flags {
        .init(
            tlsCert: tlsCert, tlsKey: tlsKey, tlsClientCa: tlsClientCa, peerTlsCert: peerTlsCert,
            peerTlsKey: peerTlsKey, peerTlsCa: peerTlsCa)
    }
}
