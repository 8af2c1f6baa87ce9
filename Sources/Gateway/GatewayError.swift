import Foundation
import HTTPTypes
import Hummingbird

/// An error answer in the shape DESIGN.md fixes: `{"error":{"code":"…","message":"…"}}`.
struct GatewayError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    var response: Response {
        let body = ["error": ["code": code, "message": message]]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(body)) ?? Data()
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ message: String) -> GatewayError {
        .init(status: .badRequest, code: "bad_request", message: message)
    }
}
