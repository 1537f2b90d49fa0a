/**
 * AirlockError codes as AWS JSON-protocol errors (`{"__type": "...#Name", "message"}`),
 * the shape the AWS SDKs and the aws CLI parse for DynamoDB, SSM and other JSON services.
 * Both AWS plugins map errors here so a client sees the same error for the same failure.
 */
import { AirlockError, type ErrorCode, isAirlockError } from '../errors.ts';

/**
 * An AirlockError that names the exact AWS error type to answer with, where the code alone
 * is too coarse (a missing Authorization header vs. a malformed one, bad JSON).
 */
export class AwsWireError extends AirlockError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly awsType: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export interface AwsJsonError {
  status: number;
  /** Short type name without the service prefix, e.g. `AccessDeniedException`. */
  type: string;
  message: string;
}

const BY_CODE: Readonly<Record<ErrorCode, { status: number; type: string }>> = {
  GRANT_UNKNOWN: { status: 400, type: 'UnrecognizedClientException' },
  BAD_CREDENTIAL: { status: 400, type: 'UnrecognizedClientException' },
  GRANT_PENDING: { status: 400, type: 'AccessDeniedException' },
  GRANT_EXPIRED: { status: 400, type: 'ExpiredTokenException' },
  GRANT_REVOKED: { status: 400, type: 'UnrecognizedClientException' },
  GRANT_DENIED: { status: 400, type: 'AccessDeniedException' },
  WRONG_RESOURCE: { status: 400, type: 'AccessDeniedException' },
  OUT_OF_SCOPE: { status: 400, type: 'AccessDeniedException' },
  UNRESOLVABLE: { status: 400, type: 'AccessDeniedException' },
  SIGNATURE_MISMATCH: { status: 400, type: 'InvalidSignatureException' },
  REQUEST_EXPIRED: { status: 400, type: 'InvalidSignatureException' },
  BAD_REQUEST: { status: 400, type: 'ValidationException' },
  TOO_LARGE: { status: 413, type: 'RequestEntityTooLarge' },
  RATE_LIMITED: { status: 400, type: 'ThrottlingException' },
  AUDIT_UNAVAILABLE: { status: 503, type: 'ServiceUnavailable' },
  UPSTREAM_FAILED: { status: 502, type: 'InternalServerError' },
  INTERNAL: { status: 500, type: 'InternalServerError' },
  GRANT_NOT_FOUND: { status: 400, type: 'UnrecognizedClientException' },
  GRANT_STATE: { status: 400, type: 'AccessDeniedException' },
  FORBIDDEN: { status: 400, type: 'AccessDeniedException' },
  BAD_IDENTITY: { status: 400, type: 'UnrecognizedClientException' },
  /** What AWS answers a caller over its request rate; SDKs back off and retry. */
  SESSION_LIMIT: { status: 400, type: 'ThrottlingException' },
  STORE_UNAVAILABLE: { status: 503, type: 'ServiceUnavailable' },
};

/** Map any thrown value to the AWS error a client sees. Unknown errors never leak details. */
export function toAwsJsonError(error: unknown): AwsJsonError {
  if (error instanceof AwsWireError) {
    return { status: BY_CODE[error.code].status, type: error.awsType, message: error.message };
  }
  if (isAirlockError(error)) {
    const mapped = BY_CODE[error.code];
    return { status: mapped.status, type: mapped.type, message: error.message };
  }
  return { status: 500, type: 'InternalServerError', message: 'airlock internal error' };
}

/** The JSON body of an AWS JSON-protocol error; `typePrefix` like `com.amazonaws.dynamodb.v20120810#`. */
export function awsJsonErrorBody(error: AwsJsonError, typePrefix: string): string {
  return JSON.stringify({ __type: `${typePrefix}${error.type}`, message: error.message });
}
