// Errors a worker surfaces to its callers and handlers (spec section 11).
import { ErrorCode } from "../gen/v1/agentworker_pb.js";

/** Returns the enum name of an error code, e.g. "ERROR_CODE_UNKNOWN_TARGET". */
export function errorCodeName(code: ErrorCode): string {
  const name = ErrorCode[code];
  return name === undefined ? `ERROR_CODE_${code}` : `ERROR_CODE_${name}`;
}

/**
 * Reads a received error code (AWP-ERR-003, AWP-VER-002): a value this worker does not
 * know, or an error string without a code (a legacy peer), counts as HANDLER_FAILED.
 */
export function normalizeErrorCode(code: number, error: string): ErrorCode {
  if (code === ErrorCode.UNSPECIFIED) {
    return error === "" ? ErrorCode.UNSPECIFIED : ErrorCode.HANDLER_FAILED;
  }
  return ErrorCode[code] === undefined ? ErrorCode.HANDLER_FAILED : (code as ErrorCode);
}

/** An RPC that ended with an error response, or failed locally; `code` tells which. */
export class RpcError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RpcError";
    this.code = code;
  }
}

/** Thrown by a handler (or the decoder) when a payload's type is not handled. */
export class UnsupportedMessageError extends RpcError {
  constructor(message: string) {
    super(ErrorCode.UNSUPPORTED_MESSAGE, message);
    this.name = "UnsupportedMessageError";
  }
}

/** Returns the text of any thrown value, never empty (AWP-RPC-023): else its type name. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return error.message || error.name || error.constructor.name || "Error";
  }
  const text = String(error);
  return text === "" ? `thrown ${typeof error} with no message` : text;
}
