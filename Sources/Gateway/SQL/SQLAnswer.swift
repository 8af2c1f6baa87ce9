import HTTPTypes
import Hummingbird
import Patroni

/// The JSON `/sql` answers with:
///
///     {"columns":[{"name":"id","type":"int4"}],"rows":[[1]],"command":"SELECT 1","rowCount":1,
///      "route":"replica","member":"pg2","retried":false}
///
/// Rows are arrays in column order (names may repeat: `SELECT 1, 1`). Values keep their JSON kind
/// where it is exact: booleans, integers and floats as numbers (NaN and infinities as strings),
/// `json`/`jsonb` as embedded JSON, NULL as null; everything else — `numeric` too, to keep every
/// digit — as PostgreSQL's text.
enum SQLAnswer {
    static func success(_ result: StatementResult, target: SQLPlan.Target, retried: Bool) -> Response {
        var json = "{\"columns\":["
        for (index, column) in result.columns.enumerated() {
            if index > 0 { json += "," }
            json += "{\"name\":\(quoted(column.name)),\"type\":\(quoted(column.typeName))}"
        }
        json += "],\"rows\":["
        for (rowIndex, row) in result.rows.enumerated() {
            if rowIndex > 0 { json += "," }
            json += "["
            for (index, value) in row.enumerated() {
                if index > 0 { json += "," }
                json += encode(value, type: result.columns[index].typeName)
            }
            json += "]"
        }
        json += "],\"command\":\(quoted(result.command))"
        if let affected = result.rowsAffected { json += ",\"rowCount\":\(affected)" }
        json += ",\"route\":\(quoted(target.role == .primary ? "primary" : "replica"))"
        json += ",\"member\":\(quoted(target.endpoint.name)),\"retried\":\(retried)}"
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// A statement PostgreSQL refused: the error shape plus its SQLSTATE and details.
    static func statementError(_ error: StatementError) -> Response {
        var json = "{\"error\":{\"code\":\"sql_error\",\"message\":\(quoted(error.message))"
        if let sqlState = error.sqlState { json += ",\"sqlstate\":\(quoted(sqlState))" }
        if let detail = error.detail { json += ",\"detail\":\(quoted(detail))" }
        if let hint = error.hint { json += ",\"hint\":\(quoted(hint))" }
        if let position = error.position { json += ",\"position\":\(position)" }
        json += "}}"
        return Response(
            status: SQLPlan.status(sqlState: error.sqlState), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    static func encode(_ value: String?, type: String) -> String {
        guard let value else { return "null" }
        switch type {
        case "bool": return value == "t" ? "true" : "false"
        case "int2", "int4", "int8", "oid": return value
        case "float4", "float8":
            return ["NaN", "Infinity", "-Infinity"].contains(value) ? quoted(value) : value
        case "json", "jsonb": return value
        default: return quoted(value)
        }
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
