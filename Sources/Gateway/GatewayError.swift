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
        let data = Self.body(code: code, message: message)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The JSON error body, also for answers written below Hummingbird (`ConnectionGuardHandler`).
    static func body(code: String, message: String) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(["error": ["code": code, "message": message]])) ?? Data())
    }

    static func badRequest(_ message: String) -> GatewayError {
        .init(status: .badRequest, code: "bad_request", message: message)
    }
}
