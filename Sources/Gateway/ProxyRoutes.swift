import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Workers

/// The worker proxy's route (DESIGN.md "Proxy"): `ANY /w/{service}/{path…}` goes to a worker of
/// that service with `{path…}` and the query. Request and response bodies stream; only an
/// idempotent request's body is read first (up to the body limit), so that it can be sent again
/// to another worker. Registered on the `/w` group that `makeGatewayRouter` creates.
struct ProxyRoutes: Sendable {
    let proxy: WorkerProxy
    let limits: GatewayLimits
    /// `X-Forwarded-Proto`: how clients reach this listener (`https` when it serves TLS itself).
    var clientScheme = "http"
    /// Services served without a tenant key; for every other one the gateway consumed the tenant's
    /// credentials, which a worker never sees (one tenant's key would otherwise reach every worker).
    var publicServices: Set<String> = []

    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options]
    /// RFC 9110 §9.2.2: repeating these has the effect of sending them once.
    static let idempotent: Set<HTTPRequest.Method> = [.get, .head, .put, .delete, .options]

    func register(on group: RouterGroup<BasicRequestContext>) {
        for method in Self.methods {
            group.on(":service", method: method) { request, context in await self.forward(request, context) }
            group.on(":service/**", method: method) { request, context in await self.forward(request, context) }
        }
    }

    func forward(_ request: Request, _ context: BasicRequestContext) async -> Response {
        do {
            return try await proxied(request, context)
        } catch let error as GatewayError {
            return error.response
        } catch {
            return GatewayError(status: .badGateway, code: "proxy_error", message: "\(error)").response
        }
    }

    private func proxied(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard let service = context.parameters.get("service"), WorkerNames.isValidName(service) else {
            throw GatewayError.badRequest("the service must be 1–64 of letters, digits, '.', '_' and '-'")
        }
        let prefix = "/w/\(service)"
        var target = String(request.uri.path.dropFirst(prefix.count))
        if target.isEmpty || !target.hasPrefix("/") { target = "/" + target }
        if let query = request.uri.query, !query.isEmpty { target += "?\(query)" }

        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > limits.maxBodyBytes { throw tooLarge() }
        let retryable = Self.idempotent.contains(request.method)
        let body: HTTPClientRequest.Body?
        if retryable {
            let bytes = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
            body = bytes.isEmpty ? nil : .bytes(ByteBuffer(bytes: bytes))
        } else if declared == 0 {
            body = nil
        } else {
            let counted = LimitedBody(base: request.body, limit: limits.maxBodyBytes)
            body = .stream(counted, length: declared.map { .known(Int64($0)) } ?? .unknown)
        }

        var fields: [(name: String, value: String)] = request.headers.map { ($0.name.rawName, $0.value) }
        let client = request.headers[PeerAddressHeader.name]
        fields = ProxyHeaders.upstream(
            fields, clientAddress: client, proto: clientScheme,
            internalNames: publicServices.contains(service)
                ? [PeerAddressHeader.name.canonicalName]
                : [PeerAddressHeader.name.canonicalName, "x-api-key", "authorization"])
        let answer = await proxy.forward(
            ProxyRequest(
                service: service, method: HTTPMethod(rawValue: request.method.rawValue), target: target,
                headers: HTTPHeaders(fields.map { ($0.name, $0.value) }), body: body, retryable: retryable))
        switch answer {
        case .failure(let failure):
            if failure.status == 413 { throw tooLarge() }
            var headers: HTTPFields = [:]
            if let seconds = failure.retryAfterSeconds { headers[.retryAfter] = "\(seconds)" }
            throw GatewayError(
                status: HTTPResponse.Status(code: failure.status), code: failure.code, message: failure.message,
                headers: headers)
        case .response(let response, let worker, let release):
            var headers = HTTPFields()
            var contentLength: Int?
            for (name, value) in ProxyHeaders.downstream(response.headers.map { ($0.name, $0.value) }) {
                if name.lowercased() == "content-length" {
                    contentLength = Int(value)
                    continue
                }
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            headers[HTTPField.Name("X-Raftgate-Worker")!] = worker
            let upstream = response.body
            let isHead = request.method == .head
            let responseBody = ResponseBody(contentLength: isHead ? nil : contentLength) { writer in
                defer { release() }
                for try await chunk in upstream { try await writer.write(chunk) }
                try await writer.finish(nil)
            }
            if isHead, let contentLength { headers[.contentLength] = "\(contentLength)" }
            return Response(
                status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers, body: responseBody)
        }
    }

    private func tooLarge() -> GatewayError {
        GatewayError(
            status: .contentTooLarge, code: "too_large", message: "the body exceeds \(limits.maxBodyBytes) bytes")
    }
}

/// A request body passed on as it arrives, ending the upload with an error past `limit` bytes
/// (a chunked body has no length to check up front).
struct LimitedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let base: RequestBody
    let limit: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let limit: Int
        var seen = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            seen += chunk.readableBytes
            if seen > limit { throw RequestBodyTooLarge() }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), limit: limit) }
}
